"""Verbatim compaction: the model picks numbered lines of older history to drop, and
the kept text is rebuilt mechanically (never paraphrased) with ``(N lines filtered)``
markers. Messages are never removed in a verbatim pass, so a tool call always keeps its
result. A structured summary replaces the older history only when the verbatim pass fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from loopcraft.agent import prompts
from loopcraft.models.client import ModelClient
from loopcraft.models.reasoning import REASONING_KEYS
from loopcraft.models.types import CompletionRequest, Message, Usage

MAX_FAILURES = 3


def message_chars(message: Message) -> int:
    """Rough size of one message (content plus tool-call arguments)."""
    size = 16
    content = message.get("content")
    if isinstance(content, str):
        size += len(content)
    elif content is not None:
        size += len(json.dumps(content))
    for call in message.get("tool_calls") or ():
        size += len(call["function"]["name"]) + len(call["function"]["arguments"] or "") + 32
    for key in REASONING_KEYS:  # thinking blocks / reasoning items go back with the message
        if message.get(key):
            size += len(json.dumps(message[key]))
    return size


def estimate_tokens(messages: list[Message]) -> int:
    return sum(message_chars(m) for m in messages) // 4


def recent_start(history: list[Message], keep_recent_turns: int) -> int:
    """Index where the kept-whole recent turns begin (a turn starts at an assistant message)."""
    assistants = [i for i, m in enumerate(history) if m.get("role") == "assistant"]
    if len(assistants) <= keep_recent_turns:
        return 0
    return assistants[-keep_recent_turns]


@dataclass
class _Segment:
    """Numbered lines of one message part: its content (call=None) or one call's arguments."""

    message: int
    call: int | None
    lines: list[str]
    first: int  # number of the first line


def number_history(older: list[Message], numbered: bool = True) -> tuple[str, list[_Segment], int]:
    """Render ``older`` with every content and argument line numbered from 1 (or plain)."""
    out: list[str] = []
    segments: list[_Segment] = []
    number = 1

    def add(index: int, call: int | None, text: str) -> None:
        nonlocal number
        lines = text.split("\n")
        segments.append(_Segment(index, call, lines, number))
        for line in lines:
            out.append(f"{number:>6}| {line}" if numbered else line)
            number += 1

    for index, message in enumerate(older):
        role = message.get("role", "?")
        label = f"tool result ({message.get('tool_call_id', '')})" if role == "tool" else role
        out.append(f"=== message {index}: {label} ===")
        content = message.get("content")
        if isinstance(content, str) and content:
            add(index, None, content)
        elif content:
            out.append("        (non-text content, kept)")
        for call_index, call in enumerate(message.get("tool_calls") or ()):
            out.append(f"--- tool call {call['function']['name']} ({call['id']}) arguments:")
            add(index, call_index, call["function"]["arguments"] or "")
    return "\n".join(out), segments, number - 1


class CompactionFormatError(ValueError):
    """The model's answer is not the JSON we asked for."""


def _json_object(text: str) -> dict[str, Any]:
    text = text.strip()
    fenced = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.S)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CompactionFormatError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CompactionFormatError("not a JSON object")
    return value


def parse_drop(text: str, total_lines: int) -> list[tuple[int, int]]:
    """The ``{"drop": [[a, b], ...]}`` ranges, validated against ``1..total_lines``."""
    ranges = _json_object(text).get("drop")
    if not isinstance(ranges, list):
        raise CompactionFormatError('"drop" must be a list of [first, last] pairs')
    parsed: list[tuple[int, int]] = []
    for item in ranges:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in item)
        ):
            raise CompactionFormatError(f"bad range {item!r}: expected [first, last]")
        first, last = item
        if not 1 <= first <= last <= total_lines:
            raise CompactionFormatError(f"range {item!r} is outside lines 1..{total_lines}")
        parsed.append((first, last))
    return parsed


def _filtered(lines: list[str], first: int, dropped: bytearray) -> tuple[str, int]:
    kept: list[str] = []
    run = 0
    count = 0
    for offset, line in enumerate(lines):
        if dropped[first + offset]:
            run += 1
            continue
        if run:
            kept.append(f"({run} lines filtered)")
            count += run
            run = 0
        kept.append(line)
    if run:
        kept.append(f"({run} lines filtered)")
        count += run
    return "\n".join(kept), count


def apply_drop(
    older: list[Message], segments: list[_Segment], total_lines: int, ranges: list[tuple[int, int]]
) -> tuple[list[Message], int]:
    """Rebuild ``older`` keeping every line not in ``ranges`` verbatim; returns (messages, dropped)."""
    dropped = bytearray(total_lines + 2)
    for first, last in ranges:
        dropped[first : last + 1] = b"\x01" * (last - first + 1)
    rebuilt = [dict(m) for m in older]
    for message in rebuilt:
        if message.get("tool_calls"):
            message["tool_calls"] = [
                {**call, "function": dict(call["function"])} for call in message["tool_calls"]
            ]
    total_dropped = 0
    for seg in segments:
        text, count = _filtered(seg.lines, seg.first, dropped)
        if not count:
            continue
        total_dropped += count
        message = rebuilt[seg.message]
        if seg.call is None:
            message["content"] = text
        else:
            message["tool_calls"][seg.call]["function"]["arguments"] = json.dumps(
                {"filtered_arguments": text}
            )
    return rebuilt, total_dropped


def summary_message(data: dict[str, Any]) -> Message:
    """The structured summary rendered as the one user message that replaces older history."""
    parts = ["[loopcraft] Earlier conversation, compacted into a summary:"]
    if data.get("goal"):
        parts.append(f"Goal: {data['goal']}")
    for key, title in (("done", "Done"), ("state", "State"), ("files", "Files"), ("next", "Next")):
        items = data.get(key) or []
        if isinstance(items, str):
            items = [items]
        if items:
            parts.append(f"{title}:\n" + "\n".join(f"- {item}" for item in items))
    if len(parts) == 1:
        raise CompactionFormatError("the summary is empty")
    return {"role": "user", "content": "\n".join(parts)}


@dataclass
class CompactionOutcome:
    ok: bool
    method: str = ""  # "verbatim" or "summary"
    prefix_len: int = 0  # how many leading history messages ``replacement`` stands for
    replacement: list[Message] = field(default_factory=list)
    dropped_lines: int = 0
    usage: Usage = field(default_factory=Usage)
    error: str = ""


class Compactor:
    """Runs compaction side calls for one agent and counts consecutive failures."""

    def __init__(self, client: ModelClient, *, stage: str, keep_recent_turns: int) -> None:
        self.client = client
        self.stage = stage
        self.keep_recent_turns = keep_recent_turns
        self.failures = 0

    @property
    def gave_up(self) -> bool:
        return self.failures >= MAX_FAILURES

    def can_compact(self, history: list[Message]) -> bool:
        return recent_start(history, self.keep_recent_turns) > 0

    async def compact(
        self, history: list[Message], model: str, fallback_models: list[str]
    ) -> CompactionOutcome:
        """Try verbatim, then summary; ``history`` excludes the system prompt."""
        split = recent_start(history, self.keep_recent_turns)
        if split == 0:
            return CompactionOutcome(ok=False, error="nothing old enough to compact")
        older = history[:split]
        usage = Usage()
        numbered, segments, total = number_history(older)
        try:
            text, usage = await self._side_call(
                "compaction", prompts.COMPACTION_SYSTEM, numbered, model, fallback_models, usage
            )
            ranges = parse_drop(text, total)
            rebuilt, dropped = apply_drop(older, segments, total, ranges)
            if not dropped:
                raise CompactionFormatError("no lines dropped")
            self.failures = 0
            return CompactionOutcome(True, "verbatim", split, rebuilt, dropped, usage)
        except Exception as exc:  # any failure (call, JSON, ranges) -> the summary fallback
            verbatim_error = str(exc)
        plain = number_history(older, numbered=False)[0]
        try:
            text, usage = await self._side_call(
                "summary", prompts.SUMMARY_SYSTEM, plain, model, fallback_models, usage
            )
            message = summary_message(_json_object(text))
            self.failures = 0
            return CompactionOutcome(True, "summary", split, [message], 0, usage)
        except Exception as exc:
            self.failures += 1
            return CompactionOutcome(False, usage=usage, error=f"verbatim: {verbatim_error}; summary: {exc}")

    async def _side_call(
        self, kind: str, system: str, body: str, model: str, fallback_models: list[str], usage: Usage
    ) -> tuple[str, Usage]:
        request = CompletionRequest(
            model=model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": body}],
            fallback_models=list(fallback_models),
            stage=f"{kind}:{self.stage}",  # its own scripted stage: "compaction:<stage>" / "summary:<stage>"
            response_format={"type": "json_object"},
        )
        result = await self.client.complete(request)
        return result.text, usage + result.usage
