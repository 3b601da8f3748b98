"""The ``edit`` tool: exact, unique old-to-new replacements in one file, applied all or none.

Each edit is tried, in order, on the text the previous edits produced:

1. exact: ``old_string`` must occur exactly once (or ``replace_all``);
2. already applied: ``old_string`` is absent (or only present inside ``new_string``) but
   ``new_string`` is present, so it is reported and not repeated;
3. whitespace-tolerant: the lines of ``old_string`` match a unique run of the file's lines when
   leading and trailing whitespace is ignored; ``new_string`` is re-indented to the file's
   indentation at that spot;
4. otherwise the edit fails with the closest lines of the file (difflib) and their numbers.

If any edit fails, the file is not touched. The result carries a unified diff in
``metadata["diff"]``.
"""

from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from loopcraft.agent.tools.base import ToolContext, ToolError, ToolResult
from loopcraft.agent.tools.common import BuiltinTool, opt_bool, req_str, schema
from loopcraft.agent.tools.fs import diff_stats, number_lines, read_text, unified_diff, write_text_atomic
from loopcraft.agent.tools.paths import display, resolve_in_workspace

MAX_LISTED_MATCHES = 10
MIN_SIMILARITY = 0.4
# A new_string shorter than this (stripped) is too common to prove an edit was already applied;
# wrongly claiming "already applied" is worse than asking the model to look again.
MIN_APPLIED_CHARS = 8


@dataclass
class EditSpec:
    old: str
    new: str
    replace_all: bool = False


@dataclass
class Outcome:
    status: Literal["applied", "already_applied"]
    line: int  # 1-based line where the change (or the already-present text) starts
    how: Literal["exact", "whitespace-tolerant"] = "exact"
    count: int = 1


class EditFailed(ToolError):
    """One edit of a call could not be applied; nothing was written."""


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _occurrences(text: str, needle: str) -> list[int]:
    found, start = [], text.find(needle)
    while start != -1:
        found.append(start)
        start = text.find(needle, start + len(needle))
    return found


def _block(text: str) -> list[str]:
    """``text`` as lines, without the empty piece a final newline leaves."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" and len(lines) > 1 else lines


def _tolerant_matches(lines: list[str], block: list[str]) -> list[int]:
    """Starts of runs of ``lines`` equal to ``block`` ignoring leading/trailing whitespace."""
    want = [line.strip() for line in block]
    if not any(want):
        return []
    have = [line.strip() for line in lines]
    n = len(want)
    return [i for i in range(len(have) - n + 1) if have[i] == want[0] and have[i : i + n] == want]


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _reindent(new: list[str], old: list[str], found: list[str]) -> list[str]:
    """``new`` shifted from ``old``'s indentation to the indentation ``found`` has in the file."""
    pairs = [(o, f) for o, f in zip(old, found, strict=True) if o.strip()]
    old_base, file_base = _indent(pairs[0][0]), _indent(pairs[0][1])
    if old_base == file_base:
        return new
    out = []
    for line in new:
        ind = _indent(line)
        if not line.strip():
            out.append("")
        elif ind.startswith(old_base):
            out.append(file_base + line[len(old_base) :])
        else:  # less indented than the old block's first line: dedent from the file's base
            cut = len(old_base) - len(ind)
            out.append(file_base[: max(0, len(file_base) - cut)] + line.lstrip())
    return out


def closest_lines(lines: list[str], block: list[str]) -> tuple[int, int, float] | None:
    """(first, last, similarity) of the window of ``lines`` most like ``block``, 1-based."""
    n = max(1, len(block))
    target = "\n".join(line.strip() for line in block)
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(target)
    best: tuple[int, int, float] | None = None
    best_ratio = MIN_SIMILARITY
    for i in range(max(1, len(lines) - n + 1)):
        matcher.set_seq1("\n".join(line.strip() for line in lines[i : i + n]))
        if matcher.real_quick_ratio() < best_ratio or matcher.quick_ratio() < best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio or best is None:
            best_ratio, best = ratio, (i + 1, min(len(lines), i + n), ratio)
    return best


def _not_found(text: str, spec: EditSpec, label: str, shown: str) -> EditFailed:
    lines = text.split("\n")
    near = closest_lines(lines, _block(spec.old))
    head = f"{label}: old_string was not found in {shown} (no exact or whitespace-tolerant match)."
    if near is None:
        return EditFailed(f"{head} Nothing similar is in the file; read it and copy old_string exactly.")
    first, last, ratio = near
    return EditFailed(
        f"{head} The closest lines are {first}-{last} ({ratio:.0%} similar):\n"
        f"{number_lines(lines[first - 1 : last], first)}\n"
        "Retry with old_string copied exactly from the file (without the line-number prefix)."
    )


def _inside_new(text: str, spec: EditSpec, spots: list[int]) -> bool:
    """Whether every occurrence of old_string is the copy inside an occurrence of new_string
    (new_string extends old_string and was already put in place)."""
    offset = spec.new.find(spec.old)
    return offset >= 0 and all(spot >= offset and text.startswith(spec.new, spot - offset) for spot in spots)


def apply_edit(
    text: str, spec: EditSpec, label: str = "edit", shown: str = "the file"
) -> tuple[str, Outcome]:
    """``text`` with one edit applied, and how; raises :class:`EditFailed` with feedback."""
    if not spec.old:
        raise EditFailed(f"{label}: old_string is empty; use write to create or replace a whole file")
    if spec.old == spec.new:
        raise EditFailed(f"{label}: old_string and new_string are identical; there is nothing to change")
    spots = _occurrences(text, spec.old)
    if spots and _inside_new(text, spec, spots):
        return text, Outcome("already_applied", _line_of(text, spots[0] - spec.new.find(spec.old)))
    if len(spots) == 1 or (spots and spec.replace_all):
        replaced = text.replace(spec.old, spec.new, -1 if spec.replace_all else 1)
        return replaced, Outcome("applied", _line_of(text, spots[0]), "exact", len(spots))
    if spots:
        raise _ambiguous(label, shown, [_line_of(text, i) for i in spots])
    distinctive = len(spec.new.strip()) >= MIN_APPLIED_CHARS
    if distinctive and spec.new in text:
        return text, Outcome("already_applied", _line_of(text, text.index(spec.new)))
    lines = text.split("\n")
    old_block = _block(spec.old)
    starts = _tolerant_matches(lines, old_block)
    if len(starts) > 1 and not spec.replace_all:
        raise _ambiguous(label, shown, [s + 1 for s in starts], tolerant=True)
    if starts:
        new_block = _block(spec.new) if spec.new else []
        n = len(old_block)
        for start in reversed(starts):
            lines[start : start + n] = _reindent(new_block, old_block, lines[start : start + n])
        return "\n".join(lines), Outcome("applied", starts[0] + 1, "whitespace-tolerant", len(starts))
    new_starts = _tolerant_matches(lines, _block(spec.new)) if distinctive else []
    if new_starts:
        return text, Outcome("already_applied", new_starts[0] + 1, "whitespace-tolerant")
    raise _not_found(text, spec, label, shown)


def _ambiguous(label: str, shown: str, at: list[int], tolerant: bool = False) -> EditFailed:
    listed = ", ".join(str(n) for n in at[:MAX_LISTED_MATCHES]) + (
        ", …" if len(at) > MAX_LISTED_MATCHES else ""
    )
    kind = " (ignoring indentation)" if tolerant else ""
    return EditFailed(
        f"{label}: old_string matches {len(at)} places{kind} in {shown} (lines {listed}); include more "
        "surrounding lines so it matches exactly one, or set replace_all to change every one"
    )


def apply_edits(text: str, specs: list[EditSpec], shown: str = "the file") -> tuple[str, list[Outcome]]:
    """All edits applied in order to ``text``; any failure raises and nothing is returned."""
    outcomes = []
    for i, spec in enumerate(specs, start=1):
        label = f"edit {i} of {len(specs)}" if len(specs) > 1 else "edit"
        text, outcome = apply_edit(text, spec, label, shown)
        outcomes.append(outcome)
    return text, outcomes


def _specs(args: dict[str, Any]) -> list[EditSpec]:
    edits = args.get("edits")
    if edits is None:
        return [
            EditSpec(
                req_str(args, "old_string", allow_empty=True),
                req_str(args, "new_string", allow_empty=True),
                opt_bool(args, "replace_all"),
            )
        ]
    if "old_string" in args or "new_string" in args:
        raise ToolError("give either old_string/new_string or edits, not both")
    if not isinstance(edits, list) or not edits:
        raise ToolError("argument `edits` must be a non-empty list of {old_string, new_string} objects")
    specs = []
    for i, item in enumerate(edits, start=1):
        if not isinstance(item, dict):
            raise ToolError(f"edits[{i}] must be an object with old_string and new_string")
        try:
            specs.append(
                EditSpec(
                    req_str(item, "old_string", allow_empty=True),
                    req_str(item, "new_string", allow_empty=True),
                    opt_bool(item, "replace_all"),
                )
            )
        except ToolError as exc:
            raise ToolError(f"edits[{i}]: {exc}") from None
    return specs


def _summary(shown: str, outcomes: list[Outcome], diff: str) -> str:
    applied = [o for o in outcomes if o.status == "applied"]
    notes = []
    for i, o in enumerate(outcomes, start=1):
        label = f"edit {i}" if len(outcomes) > 1 else "the edit"
        if o.status == "already_applied":
            notes.append(f"{label} was already applied (new_string is at line {o.line}); not repeated")
        elif o.how == "whitespace-tolerant":
            notes.append(f"{label} matched at line {o.line} ignoring whitespace; re-indented to fit")
        elif o.count > 1:
            notes.append(f"{label} replaced {o.count} occurrences")
    if not applied:
        head = f"no change to {shown}: everything asked was already applied"
    else:
        added, removed = diff_stats(diff)
        head = f"edited {shown}: {len(applied)} edit(s) applied (+{added} -{removed} lines)"
    return "\n".join([head, *notes])


class EditTool(BuiltinTool):
    name = "edit"
    description = (
        "Replace exact text in a file. old_string must match exactly one place (copy it from `read`, "
        "without line numbers, with enough context to be unique) unless replace_all is true. "
        "Pass `edits` (a list of {old_string, new_string}) to make several changes in one file at once: "
        "they are applied in order, all or none."
    )
    _pair = {
        "old_string": {"type": "string", "description": "The exact text to replace"},
        "new_string": {"type": "string", "description": "The text to put in its place"},
        "replace_all": {"type": "boolean", "description": "Replace every occurrence (default false)"},
    }
    parameters = schema(
        {
            "path": {"type": "string", "description": "File path, relative to the workspace"},
            **_pair,
            "edits": {
                "type": "array",
                "description": "Several edits to apply in order, atomically",
                "items": {"type": "object", "properties": _pair, "required": ["old_string", "new_string"]},
            },
        },
        ["path"],
    )
    read_only = False

    async def execute(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path: Path = resolve_in_workspace(ctx.workspace, req_str(args, "path"))
        shown = display(ctx.workspace, path)
        specs = _specs(args)
        if not path.exists():
            raise ToolError(f"file not found: {shown}; use write to create a new file")
        original = await asyncio.to_thread(read_text, path, shown)
        crlf = "\r\n" in original
        if crlf:
            original = original.replace("\r\n", "\n")
            specs = [
                EditSpec(s.old.replace("\r\n", "\n"), s.new.replace("\r\n", "\n"), s.replace_all)
                for s in specs
            ]
        updated, outcomes = apply_edits(original, specs, shown)
        diff = unified_diff(original, updated, shown)
        if updated != original:
            await asyncio.to_thread(
                write_text_atomic, path, updated.replace("\n", "\r\n") if crlf else updated
            )
        meta = {"path": shown, "diff": diff, "outcomes": [o.status for o in outcomes]}
        return ToolResult(_summary(shown, outcomes, diff), metadata=meta)
