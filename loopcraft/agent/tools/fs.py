"""File tools: ``read`` (numbered line ranges), ``write`` (creates parents) and ``ls``; plus the
atomic-write and diff helpers that ``edit`` shares."""

from __future__ import annotations

import asyncio
import difflib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from loopcraft.agent.ignore import ignored_entries
from loopcraft.agent.tools.base import ToolContext, ToolError, ToolResult
from loopcraft.agent.tools.common import BuiltinTool, opt_int, opt_str, req_str, schema, within_budget
from loopcraft.agent.tools.paths import display, resolve_in_workspace
from loopcraft.paths import umask_default

DEFAULT_READ_LINES = 2000
MAX_LINE_CHARS = 2000
MAX_LS_ENTRIES = 1000


def read_text(path: Path, shown: str) -> str:
    """A text file's content (newlines as on disk); ToolError for missing, directory or binary."""
    if not path.exists():
        raise ToolError(f"file not found: {shown}")
    if path.is_dir():
        raise ToolError(f"{shown} is a directory; use ls to list it")
    require_regular(path, shown)
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        raise ToolError(f"{shown} is a binary file ({len(data)} bytes); it cannot be shown as text")
    return data.decode("utf-8", errors="replace")


def require_regular(path: Path, shown: str) -> None:
    """A ToolError unless ``path`` is a regular file: a FIFO, socket or device would block or leak."""
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise ToolError(
            f"{shown} is not a regular file (a FIFO, socket or device); file tools only use files"
        )


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` all at once (temp file + rename), keeping an existing file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, umask_default() if mode is None else mode)  # mkstemp's 0600 is not what a user expects
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def unified_diff(before: str, after: str, shown: str) -> str:
    """A unified diff of one file's change, with ``a/`` and ``b/`` names like git."""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{shown}", f"b/{shown}"
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def diff_stats(diff: str) -> tuple[int, int]:
    """(added, removed) line counts of a unified diff."""
    added = sum(1 for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in diff.splitlines() if line.startswith("-") and not line.startswith("---"))
    return added, removed


def number_lines(lines: list[str], first: int) -> str:
    """Lines formatted like ``cat -n``: right-aligned number, a tab, the text."""
    return "\n".join(f"{n:>6}\t{line}" for n, line in enumerate(lines, start=first))


class ReadTool(BuiltinTool):
    name = "read"
    description = (
        "Read a text file with line numbers (like `cat -n`). Use `offset` (1-based first line) and "
        f"`limit` (number of lines, default {DEFAULT_READ_LINES}) to read a range of a long file."
    )
    parameters = schema(
        {
            "path": {"type": "string", "description": "File path, relative to the workspace"},
            "offset": {"type": "integer", "minimum": 1, "description": "First line to show (1-based)"},
            "limit": {"type": "integer", "minimum": 1, "description": "How many lines to show"},
        },
        ["path"],
    )
    read_only = True

    async def execute(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raw = req_str(args, "path")
        offset = opt_int(args, "offset", 1, minimum=1)
        limit = opt_int(args, "limit", DEFAULT_READ_LINES, minimum=1)
        path = resolve_in_workspace(ctx.workspace, raw)
        shown = display(ctx.workspace, path)
        lines = (await asyncio.to_thread(read_text, path, shown)).splitlines()
        total = len(lines)
        if total == 0:
            return ToolResult(f"({shown} is empty)", metadata={"path": shown, "total_lines": 0})
        if offset > total:
            raise ToolError(f"offset {offset} is past the end of {shown}, which has {total} lines")
        wanted = (_cut(line) for line in lines[offset - 1 : offset - 1 + limit])
        shown_lines = within_budget(wanted, ctx.config.max_tool_output, overhead=8)  # number, tab, newline
        last = offset + len(shown_lines) - 1
        text = number_lines(shown_lines, offset)
        if last < total:
            text += (
                f"\n\n[showing lines {offset}-{last} of {total}; call read with offset={last + 1} to read on]"
            )
        return ToolResult(text, metadata={"path": shown, "total_lines": total, "first": offset, "last": last})


def _cut(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    return line[:MAX_LINE_CHARS] + f"… [line cut: {len(line)} characters]"


class WriteTool(BuiltinTool):
    name = "write"
    description = (
        "Write a whole file (creating parent folders), replacing any existing content. "
        "Prefer `edit` for changing part of an existing file."
    )
    parameters = schema(
        {
            "path": {"type": "string", "description": "File path, relative to the workspace"},
            "content": {"type": "string", "description": "The complete new content of the file"},
        },
        ["path", "content"],
    )
    read_only = False

    async def execute(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raw = req_str(args, "path")
        content = req_str(args, "content", allow_empty=True)
        path = resolve_in_workspace(ctx.workspace, raw)
        shown = display(ctx.workspace, path)
        if path.is_dir():
            raise ToolError(f"{shown} is a directory; give a file path")
        require_regular(path, shown)
        existed = path.exists()
        before = await asyncio.to_thread(read_text, path, shown) if existed else ""
        await asyncio.to_thread(write_text_atomic, path, content)
        diff = unified_diff(before, content, shown)
        verb = "overwrote" if existed else "created"
        lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
        return ToolResult(
            f"{verb} {shown} ({lines} lines)", metadata={"path": shown, "diff": diff, "created": not existed}
        )


class LsTool(BuiltinTool):
    name = "ls"
    description = (
        "List a folder's entries (folders end with `/`, symlinks show their target); "
        "entries git ignores are left out and counted."
    )
    parameters = schema(
        {"path": {"type": "string", "description": "Folder path, relative to the workspace (default `.`)"}},
        [],
    )
    read_only = True

    async def execute(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raw = opt_str(args, "path", ".") or "."
        path = resolve_in_workspace(ctx.workspace, raw)
        shown = display(ctx.workspace, path)
        if not path.exists():
            raise ToolError(f"folder not found: {shown}")
        if not path.is_dir():
            raise ToolError(f"{shown} is a file, not a folder; use read to see it")
        root = ctx.workspace.resolve()
        ignored = await asyncio.to_thread(ignored_entries, root, path.resolve())
        entries = sorted(
            (p for p in path.iterdir() if p.name not in ignored), key=lambda p: (not p.is_dir(), p.name)
        )
        rows = [_ls_row(entry) for entry in entries[:MAX_LS_ENTRIES]]
        hidden = f"[{len(ignored)} git-ignored entries not shown]" if ignored else ""
        meta = {"path": shown, "count": len(entries), "ignored": len(ignored)}
        if not rows:
            return ToolResult(f"({shown} is empty)" + (f" {hidden}" if hidden else ""), metadata=meta)
        text = "\n".join(rows)
        if len(entries) > MAX_LS_ENTRIES:
            text += f"\n\n[showing {MAX_LS_ENTRIES} of {len(entries)} entries; use find with a pattern]"
        if hidden:
            text += f"\n\n{hidden}"
        return ToolResult(text, metadata=meta)


def _ls_row(entry: Path) -> str:
    if entry.is_symlink():
        return f"{entry.name} -> {os.readlink(entry)}"
    return entry.name + "/" if entry.is_dir() else entry.name
