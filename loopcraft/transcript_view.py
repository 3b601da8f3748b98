"""A stage transcript (its JSONL entries) as people read it, for ``loopcraft show --stage``.

One block per entry: who spoke (``[user]``, ``[assistant]``), tool calls with their arguments
summarised, tool results trimmed to their first lines, steering mail, model changes,
compactions and the agent's status changes. Usage entries and the header are left out.
"""

from __future__ import annotations

import json
from typing import Any

ARG_CHARS = 60  # one argument's value, shown
CALL_CHARS = 200  # all of a call's arguments, shown
RESULT_LINES = 8
RESULT_CHARS = 800


def clip(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def summarise_args(arguments: Any) -> str:
    """A tool call's arguments as ``key=value, …`` (values clipped); JSON text is parsed first."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return clip(arguments, CALL_CHARS)
    if not isinstance(arguments, dict):
        return clip(json.dumps(arguments, default=str), CALL_CHARS)
    parts = []
    for key, value in arguments.items():
        shown = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
        parts.append(f"{key}={clip(shown, ARG_CHARS)}")
    return clip(", ".join(parts), CALL_CHARS)


def trim_result(output: str) -> list[str]:
    """A tool result's first lines (at most RESULT_LINES / RESULT_CHARS) and how much was left out."""
    lines = output.splitlines() or [""]
    shown: list[str] = []
    used = 0
    for line in lines[:RESULT_LINES]:
        if used + len(line) > RESULT_CHARS:
            shown.append(line[: max(0, RESULT_CHARS - used)] + "…")
            break
        shown.append(line)
        used += len(line)
    left = len(lines) - len(shown)
    return shown + ([f"… ({left} more line{'s' if left != 1 else ''})"] if left > 0 else [])


def _message(entry: dict[str, Any]) -> list[str]:
    msg = entry.get("message") or {}
    role = msg.get("role", "?")
    source = entry.get("source")
    label = f"{role} · {source}" if source and source not in ("prompt", "turn") else role
    content = msg.get("content") or ""
    if isinstance(content, list):  # content parts
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    lines = [f"[{label}] {line}" if i == 0 else f"    {line}" for i, line in enumerate(content.splitlines())]
    if not lines and not msg.get("tool_calls"):
        lines = [f"[{label}]"]
    for call in msg.get("tool_calls") or []:
        function = call.get("function") or {}
        lines.append(f"  → {function.get('name', '?')}({summarise_args(function.get('arguments'))})")
    return lines


def _tool_result(entry: dict[str, Any]) -> list[str]:
    mark = " ✗" if entry.get("is_error") else ""
    skipped = " (skipped)" if entry.get("skipped") else ""
    body = trim_result(str(entry.get("output", "")))
    return [f"  ← {entry.get('name', 'tool')}{mark}{skipped}: {body[0]}", *(f"      {b}" for b in body[1:])]


def entry_lines(entry: dict[str, Any]) -> list[str]:
    """The lines one transcript entry reads as (none for bookkeeping such as usage)."""
    kind = entry.get("type")
    if kind == "message":
        return _message(entry)
    if kind == "tool_result":
        return _tool_result(entry)
    if kind == "status":
        reason = entry.get("reason") or ""
        return [f"[status] {entry.get('status', '?')}" + (f": {reason}" if reason else "")]
    if kind == "mail":
        return [f"[{entry.get('kind', 'mail')}] {clip(str(entry.get('text', '')), CALL_CHARS)}"]
    if kind == "model_change":
        return [
            f"[model] {entry.get('model', '?')}" + (f" ({entry['reason']})" if entry.get("reason") else "")
        ]
    if kind == "compaction":
        return ["[compaction] earlier turns summarised"]
    if kind == "damaged":  # a line that is not UTF-8 or not a JSON object (``show`` counts them)
        return [f"[damaged line {entry.get('line', '?')}]"]
    return []  # header, usage, tool_call_start


def transcript_lines(entries: list[dict[str, Any]]) -> list[str]:
    """A whole transcript as readable lines (``(no transcript yet)`` when it is empty)."""
    lines = [line for entry in entries for line in entry_lines(entry)]
    return lines or ["(no transcript yet)"]
