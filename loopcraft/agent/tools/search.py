"""Search tools: ``grep`` (regex over file contents; ripgrep when on PATH, else pure Python) and
``find`` (glob over file paths). Both search the same files, :func:`walk_files`: what git's own
ignore rules leave visible, less .git, .venv, node_modules, __pycache__ and the like
(:mod:`loopcraft.agent.ignore`); both cap their results."""

from __future__ import annotations

import asyncio
import functools
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loopcraft.agent.ignore import visible_files
from loopcraft.agent.tools.base import ToolContext, ToolError, ToolResult
from loopcraft.agent.tools.common import (
    BuiltinTool,
    opt_bool,
    opt_int,
    opt_str,
    req_str,
    schema,
    within_budget,
)
from loopcraft.agent.tools.paths import display, resolve_in_workspace

DEFAULT_MAX_RESULTS = 200
MAX_RESULTS = 2000
MAX_MATCH_CHARS = 300
MAX_GREP_FILE_BYTES = 5_000_000
RG_ARGV_CHARS = 100_000


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex for a path glob: ``*`` and ``?`` stay within one folder, ``**`` crosses folders."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := pattern.find("]", i + 1)) > i + 1:
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def glob_matches(pattern: str, rel: str) -> bool:
    """Whether the workspace-relative path ``rel`` matches ``pattern`` (no ``/``: the name alone)."""
    if "/" not in pattern.rstrip("/"):
        return glob_regex(pattern).match(rel.rsplit("/", 1)[-1]) is not None
    return glob_regex(pattern.lstrip("/")).match(rel) is not None


def walk_files(root: Path, start: Path) -> Iterator[tuple[Path, str]]:
    """(path, workspace-relative posix path) of every file under ``start`` that git's ignore
    rules and :data:`ALWAYS_SKIPPED` leave visible (see :mod:`loopcraft.agent.ignore`)."""
    for rel in visible_files(root, start):
        yield root / rel, rel


def _search_start(ctx: ToolContext, args: dict[str, Any]) -> tuple[Path, Path]:
    root = ctx.workspace.resolve()
    start = resolve_in_workspace(ctx.workspace, opt_str(args, "path", ".") or ".")
    if not start.exists():
        raise ToolError(f"path not found: {display(root, start)}")
    return root, start


def _search_schema(pattern: str, path: str, **more: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a search tool: ``pattern`` (required), ``path``, ``more``, ``max_results``."""
    return schema(
        {
            "pattern": {"type": "string", "description": pattern},
            "path": {"type": "string", "description": path},
            **more,
            "max_results": {"type": "integer", "minimum": 1, "description": f"Default {DEFAULT_MAX_RESULTS}"},
        },
        ["pattern"],
    )


def _max_results(args: dict[str, Any]) -> int:
    return min(opt_int(args, "max_results", DEFAULT_MAX_RESULTS, minimum=1), MAX_RESULTS)


def _listing(lines: list[str], total: int, cap: int, what: str, ctx: ToolContext, none: str) -> ToolResult:
    """The first lines of ``total`` found, stopping at ``cap`` lines or the output budget, with a
    note when cut; ``none`` when nothing was found."""
    if not lines:
        return ToolResult(none, metadata={"count": 0})
    kept = within_budget(lines[:cap], ctx.config.max_tool_output, overhead=1)
    text = "\n".join(kept)
    if total > len(kept):
        text += f"\n\n[showing the first {len(kept)} {what} of {total}; narrow the pattern, path or glob]"
    return ToolResult(text, metadata={"count": total})


class FindTool(BuiltinTool):
    name = "find"
    description = (
        "Find files by glob pattern, e.g. `*.py` (matches names anywhere), `src/**/*.ts`, `tests/test_*.py`. "
        "Returns workspace-relative paths, sorted."
    )
    parameters = _search_schema("Glob pattern for file paths", "Folder to search in (default `.`)")
    read_only = True

    async def execute(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern = req_str(args, "pattern")
        cap = _max_results(args)
        root, start = _search_start(ctx, args)
        found = await asyncio.to_thread(
            lambda: [rel for _, rel in walk_files(root, start) if glob_matches(pattern, rel)]
        )
        return _listing(found, len(found), cap, "files", ctx, none=f"no files match `{pattern}`")


class GrepTool(BuiltinTool):
    name = "grep"
    description = (
        "Search file contents with a regular expression (Python/ripgrep syntax). Returns `path:line: text` "
        "for each matching line. Use `glob` to filter files (e.g. `*.py`) and `path` to narrow the folder."
    )
    parameters = _search_schema(
        "Regular expression to search for",
        "File or folder to search (default `.`)",
        glob={"type": "string", "description": "Only files whose path matches this glob"},
        ignore_case={"type": "boolean", "description": "Case-insensitive search (default false)"},
    )
    read_only = True

    async def execute(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        pattern = req_str(args, "pattern")
        file_glob = opt_str(args, "glob")
        ignore_case = opt_bool(args, "ignore_case")
        cap = _max_results(args)
        try:
            regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            raise ToolError(f"invalid regular expression `{pattern}`: {exc}") from None
        root, start = _search_start(ctx, args)
        rg = shutil.which("rg")
        if rg:
            files = await asyncio.to_thread(_grep_files, root, start, file_glob)
            hits, total = await _rg_search(rg, root, files, pattern, ignore_case, cap)
        else:
            hits, total = await asyncio.to_thread(_py_search, root, start, regex, file_glob, cap)
        return _listing(hits, total, cap, "matches", ctx, none=f"no matches for `{pattern}`")


def _hit(rel: str, number: int, line: str) -> str:
    line = line.rstrip("\r\n")
    if len(line) > MAX_MATCH_CHARS:
        line = line[:MAX_MATCH_CHARS] + "…"
    return f"{rel}:{number}: {line}"


def _py_search(
    root: Path, start: Path, regex: re.Pattern[str], file_glob: str | None, cap: int
) -> tuple[list[str], int]:
    hits: list[str] = []
    total = 0
    for path, rel in walk_files(root, start):
        if file_glob and not glob_matches(file_glob, rel):
            continue
        try:
            if path.stat().st_size > MAX_GREP_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"\0" in data[:8192]:
            continue
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            if regex.search(line):
                total += 1
                if len(hits) < cap:
                    hits.append(_hit(rel, number, line))
    return hits, total


def _grep_files(root: Path, start: Path, file_glob: str | None) -> list[str]:
    return [rel for _, rel in walk_files(root, start) if not file_glob or glob_matches(file_glob, rel)]


def _batches(files: list[str], limit: int = RG_ARGV_CHARS) -> Iterator[list[str]]:
    """``files`` in runs whose joined length stays under ``limit`` (the OS caps a command line)."""
    batch: list[str] = []
    size = 0
    for rel in files:
        if batch and size + len(rel) + 1 > limit:
            yield batch
            batch, size = [], 0
        batch.append(rel)
        size += len(rel) + 1
    if batch:
        yield batch


async def _rg_search(
    rg: str, root: Path, files: list[str], pattern: str, ignore_case: bool, cap: int
) -> tuple[list[str], int]:
    """ripgrep over exactly ``files`` (the list the Python search would read), so the two agree
    on what is searched; binary files and files over the size cap are skipped like there."""
    argv = [rg, "--line-number", "--no-heading", "--with-filename", "--null", "--color", "never"]
    argv += ["--sort", "path", f"--max-filesize={MAX_GREP_FILE_BYTES}"]
    if ignore_case:
        argv.append("--ignore-case")
    argv += ["--regexp", pattern, "--"]
    hits: list[str] = []
    total = 0
    for batch in _batches(files):
        proc = await asyncio.create_subprocess_exec(
            *argv, *batch, cwd=root, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode not in (0, 1):
            raise ToolError(f"grep failed: {err.decode(errors='replace').strip()}")
        for raw in out.decode("utf-8", errors="replace").splitlines():
            rel, _, rest = raw.partition("\0")
            number, _, line = rest.partition(":")
            if not number.isdigit():  # "binary file matches": not searched in Python either
                continue
            total += 1
            if len(hits) < cap:
                hits.append(_hit(rel.removeprefix("./"), int(number), line))
    return hits, total
