"""read / write / ls tools and workspace confinement, on real files in a temp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loopcraft.agent.tools.base import ToolContext, ToolError
from loopcraft.agent.tools.edit import EditTool
from loopcraft.agent.tools.fs import LsTool, ReadTool, WriteTool
from loopcraft.agent.tools.paths import PathEscapeError, resolve_in_workspace
from loopcraft.agent.tools.search import FindTool, GrepTool
from loopcraft.config import AgentConfig


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def ctx(ws: Path) -> ToolContext:
    return ToolContext(workspace=ws)


# --- confinement -----------------------------------------------------------------------------


def test_resolve_inside_workspace(ws: Path) -> None:
    assert resolve_in_workspace(ws, "a/b.txt") == ws.resolve() / "a" / "b.txt"
    assert resolve_in_workspace(ws, str(ws / "x.py")) == ws.resolve() / "x.py"
    assert resolve_in_workspace(ws, "a/../b") == ws.resolve() / "b"


def test_absolute_path_outside_refused(ws: Path) -> None:
    with pytest.raises(PathEscapeError, match="absolute path outside the workspace"):
        resolve_in_workspace(ws, "/etc/passwd")


def test_dotdot_escape_refused(ws: Path) -> None:
    with pytest.raises(PathEscapeError, match=r"uses `\.\.`"):
        resolve_in_workspace(ws, "sub/../../secret.txt")


def test_symlink_out_refused(ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret\n")
    os.symlink(outside, ws / "link")
    with pytest.raises(PathEscapeError, match="symlink"):
        resolve_in_workspace(ws, "link/secret.txt")


@pytest.mark.parametrize("tool", [ReadTool(), WriteTool(), EditTool(), LsTool(), GrepTool(), FindTool()])
async def test_every_file_tool_refuses_escape(tool, ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("top secret\n")
    args = {
        "path": "../secret.txt",
        "content": "x",
        "old_string": "top",
        "new_string": "pwned",
        "pattern": "top",
    }
    result = await tool.run(args, ctx)
    assert result.is_error
    assert "outside the workspace" in result.output
    assert (tmp_path / "secret.txt").read_text() == "top secret\n"


async def test_write_through_symlink_out_refused(ws: Path, tmp_path: Path, ctx: ToolContext) -> None:
    outside = tmp_path / "out"
    outside.mkdir()
    os.symlink(outside, ws / "escape")
    result = await WriteTool().run({"path": "escape/evil.txt", "content": "x"}, ctx)
    assert result.is_error and "symlink" in result.output
    assert not (outside / "evil.txt").exists()


def test_symlink_inside_allowed(ws: Path) -> None:
    (ws / "real").mkdir()
    os.symlink(ws / "real", ws / "alias")
    assert resolve_in_workspace(ws, "alias/f.txt") == ws.resolve() / "real" / "f.txt"


def test_empty_path_is_tool_error(ws: Path) -> None:
    with pytest.raises(ToolError):
        resolve_in_workspace(ws, "")


# --- read ------------------------------------------------------------------------------------


async def test_read_numbers_lines_like_cat_n(ws: Path, ctx: ToolContext) -> None:
    (ws / "a.py").write_text("one\ntwo\nthree\n")
    result = await ReadTool().run({"path": "a.py"}, ctx)
    assert not result.is_error
    assert result.output == "     1\tone\n     2\ttwo\n     3\tthree"


async def test_read_range_and_continuation_note(ws: Path, ctx: ToolContext) -> None:
    (ws / "long.txt").write_text("".join(f"line {i}\n" for i in range(1, 101)))
    result = await ReadTool().run({"path": "long.txt", "offset": 10, "limit": 5}, ctx)
    lines = result.output.splitlines()
    assert lines[0] == "    10\tline 10"
    assert lines[4] == "    14\tline 14"
    assert "showing lines 10-14 of 100" in result.output
    assert "offset=15" in result.output


async def test_read_long_file_truncated_by_output_budget(ws: Path) -> None:
    (ws / "big.txt").write_text("".join(f"{'x' * 90} {i}\n" for i in range(5000)))
    ctx = ToolContext(workspace=ws, config=AgentConfig(max_tool_output=5000))
    result = await ReadTool().run({"path": "big.txt"}, ctx)
    assert len(result.output) < 6000
    last = result.metadata["last"]
    assert last < 5000
    assert f"call read with offset={last + 1} to read on" in result.output


async def test_read_whole_file_has_no_note(ws: Path, ctx: ToolContext) -> None:
    (ws / "s.txt").write_text("a\nb\n")
    result = await ReadTool().run({"path": "s.txt"}, ctx)
    assert "showing" not in result.output


async def test_read_errors_are_actionable(ws: Path, ctx: ToolContext) -> None:
    (ws / "d").mkdir()
    (ws / "bin").write_bytes(b"\x00\x01\x02")
    (ws / "short.txt").write_text("a\n")
    tool = ReadTool()
    assert "file not found: nope.txt" in (await tool.run({"path": "nope.txt"}, ctx)).output
    assert "is a directory" in (await tool.run({"path": "d"}, ctx)).output
    assert "binary" in (await tool.run({"path": "bin"}, ctx)).output
    past = await tool.run({"path": "short.txt", "offset": 5}, ctx)
    assert past.is_error and "has 1 lines" in past.output
    bad = await tool.run({"path": "short.txt", "offset": "two"}, ctx)
    assert bad.is_error and "`offset` must be an integer" in bad.output
    missing = await tool.run({}, ctx)
    assert missing.is_error and "`path` is required" in missing.output


# --- write -----------------------------------------------------------------------------------


async def test_write_creates_parents_and_reports_diff(ws: Path, ctx: ToolContext) -> None:
    result = await WriteTool().run({"path": "deep/er/new.py", "content": "x = 1\n"}, ctx)
    assert not result.is_error
    assert (ws / "deep/er/new.py").read_text() == "x = 1\n"
    assert result.metadata["created"] is True
    assert "+x = 1" in result.metadata["diff"]
    again = await WriteTool().run({"path": "deep/er/new.py", "content": "x = 2\n"}, ctx)
    assert "overwrote" in again.output
    assert "-x = 1" in again.metadata["diff"] and "+x = 2" in again.metadata["diff"]


async def test_write_refuses_directory(ws: Path, ctx: ToolContext) -> None:
    (ws / "d").mkdir()
    result = await WriteTool().run({"path": "d", "content": "x"}, ctx)
    assert result.is_error and "directory" in result.output


# --- ls --------------------------------------------------------------------------------------


async def test_ls_lists_folders_first_with_slash(ws: Path, ctx: ToolContext) -> None:
    (ws / "b.txt").write_text("")
    (ws / "a").mkdir()
    (ws / "c.py").write_text("")
    result = await LsTool().run({}, ctx)
    assert result.output.splitlines() == ["a/", "b.txt", "c.py"]
    assert "is a file" in (await LsTool().run({"path": "b.txt"}, ctx)).output
    assert "empty" in (await LsTool().run({"path": "a"}, ctx)).output


async def test_unexpected_exceptions_become_error_results(ctx: ToolContext) -> None:
    class Broken(ReadTool):
        async def execute(self, args, ctx):
            raise RuntimeError("boom")

    result = await Broken().run({"path": "x"}, ctx)
    assert result.is_error and "RuntimeError: boom" in result.output
    assert "JSON object" in (await ReadTool().run(["not", "a", "dict"], ctx)).output  # type: ignore[arg-type]
