"""Search tools: ``grep`` (regex over file contents; ripgrep when on PATH, else pure Python) and
``find`` (glob over file paths). Both skip .git, .venv, node_modules, __pycache__ and, roughly,
what the workspace's top-level .gitignore lists, and cap their results."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

ALWAYS_SKIPPED = frozenset(
    {
        ".git",
        ".loopcraft",  # the journal: opening its SQLite files here would drop the owner's locks
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
    }
)
DEFAULT_MAX_RESULTS = 200
MAX_RESULTS = 2000
MAX_MATCH_CHARS = 300
MAX_GREP_FILE_BYTES = 5_000_000


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


@functools.lru_cache(maxsize=32)
def _gitignore(root: Path, mtime: float) -> tuple[str, ...]:
    del mtime  # part of the cache key only
    try:
        text = (root / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith(("#", "!")))


def ignore_patterns(root: Path) -> tuple[str, ...]:
    """The top-level .gitignore's patterns (negations and nested .gitignore files are not honoured)."""
    try:
        mtime = (root / ".gitignore").stat().st_mtime
    except OSError:
        return ()
    return _gitignore(root, mtime)


def _ignored(rel: str, is_dir: bool, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern.endswith("/"):
            if not is_dir:
                continue
            pattern = pattern.rstrip("/")
        if glob_matches(pattern, rel):
            return True
    return False


def walk_files(root: Path, start: Path) -> Iterator[tuple[Path, str]]:
    """(path, workspace-relative posix path) of every file under ``start`` that is not skipped."""
    patterns = ignore_patterns(root)
    if start.is_file():
        if _inside_regular(start, root):
            yield start, display(root, start)
        return
    for folder, dirs, files in os.walk(start):
        base = Path(folder)
        rel_base = display(root, base)
        prefix = "" if rel_base == "." else rel_base + "/"
        dirs[:] = sorted(
            d for d in dirs if d not in ALWAYS_SKIPPED and not _ignored(prefix + d, True, patterns)
        )
        for name in sorted(files):
            rel = prefix + name
            if not _ignored(rel, False, patterns) and _inside_regular(base / name, root):
                yield base / name, rel


def _inside_regular(path: Path, root: Path) -> bool:
    """A regular file whose real path stays inside ``root`` (symlinks out and FIFOs are skipped)."""
    try:
        real = path.resolve()
        return (real == root or root in real.parents) and stat.S_ISREG(real.stat().st_mode)
    except OSError:
        return False


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
            hits, total = await _rg_search(rg, root, start, pattern, file_glob, ignore_case, cap)
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


async def _rg_search(
    rg: str, root: Path, start: Path, pattern: str, file_glob: str | None, ignore_case: bool, cap: int
) -> tuple[list[str], int]:
    argv = [
        rg,
        "--line-number",
        "--no-heading",
        "--with-filename",
        "--color",
        "never",
        "--hidden",
        "--no-require-git",
    ]
    argv += [f"--glob=!{name}" for name in sorted(ALWAYS_SKIPPED)]
    if ignore_case:
        argv.append("--ignore-case")
    if file_glob:
        argv.append(f"--glob={file_glob}")
    argv += ["--regexp", pattern, "--", display(root, start)]
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=root, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode not in (0, 1):
        raise ToolError(f"grep failed: {err.decode(errors='replace').strip()}")
    hits: list[str] = []
    total = 0
    for raw in out.decode("utf-8", errors="replace").splitlines():
        rel, _, rest = raw.partition(":")
        number, _, line = rest.partition(":")
        total += 1
        if len(hits) < cap and number.isdigit():
            hits.append(_hit(rel.removeprefix("./"), int(number), line))
    return hits, total
