"""grep / find tools and the registry, on a real tree in a temp dir."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from loopcraft.agent.tools import search
from loopcraft.agent.tools.base import ToolContext
from loopcraft.agent.tools.registry import default_tools, get_tools
from loopcraft.agent.tools.search import FindTool, GrepTool, glob_matches
from loopcraft.config import AgentConfig
from loopcraft.errors import LoopcraftError


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    files = {
        "src/app/main.py": "def main():\n    return helper()\n",
        "src/app/util.py": "def helper():\n    return 42\n# TODO: tidy\n",
        "src/app/data.json": '{"helper": true}\n',
        "tests/test_main.py": "from app.main import main\n\ndef test_main():\n    assert main() == 42\n",
        "README.md": "Use helper() wisely.\n",
        ".venv/lib/site.py": "def helper(): pass\n",
        ".loopcraft/runs/r1/artifacts/x.md": "helper\n",
        "node_modules/x/index.js": "helper()\n",
        "src/app/__pycache__/main.cpython-311.pyc": "helper\n",
        "build/out.py": "def helper(): pass\n",
        "logs/run.log": "helper\n",
        ".gitignore": "build/\n*.log\n",
    }
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "src/app/blob.bin").write_bytes(b"helper\x00\x01")
    return tmp_path


@pytest.fixture
def ctx(ws: Path) -> ToolContext:
    return ToolContext(workspace=ws)


@pytest.fixture(autouse=True)
def _pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exercise the pure-Python search (ripgrep is tested separately when installed)."""
    monkeypatch.setattr(search.shutil, "which", lambda name: None)


def test_glob_semantics() -> None:
    assert glob_matches("*.py", "src/app/main.py")
    assert glob_matches("src/**/*.py", "src/app/main.py")
    assert glob_matches("**/*.py", "top.py")
    assert not glob_matches("src/*.py", "src/app/main.py")
    assert glob_matches("tests/test_?ain.py", "tests/test_main.py")
    assert glob_matches("*.[jt]s", "a/b.ts") and not glob_matches("*.[!jt]s", "a/b.ts")


async def test_grep_finds_lines_skipping_ignored(ctx: ToolContext) -> None:
    result = await GrepTool().run({"pattern": r"def helper\("}, ctx)
    assert not result.is_error
    assert result.output.splitlines() == ["src/app/util.py:1: def helper():"]


async def test_grep_skips_binary_and_gitignored(ctx: ToolContext) -> None:
    result = await GrepTool().run({"pattern": "helper"}, ctx)
    out = result.output
    assert "src/app/main.py:2:" in out and "README.md:1:" in out and "data.json" in out
    for skipped in (".venv", ".loopcraft", "node_modules", "__pycache__", "build/", "run.log", "blob.bin"):
        assert skipped not in out


async def test_grep_glob_path_and_case(ctx: ToolContext) -> None:
    only_py = await GrepTool().run({"pattern": "helper", "glob": "*.py"}, ctx)
    assert "README.md" not in only_py.output and "data.json" not in only_py.output
    in_tests = await GrepTool().run({"pattern": "main", "path": "tests"}, ctx)
    assert all(line.startswith("tests/") for line in in_tests.output.splitlines())
    upper = await GrepTool().run({"pattern": "USE HELPER", "ignore_case": True}, ctx)
    assert upper.output.startswith("README.md:1:")
    assert "no matches" in (await GrepTool().run({"pattern": "USE HELPER"}, ctx)).output


async def test_grep_caps_results_with_note(ws: Path, ctx: ToolContext) -> None:
    (ws / "many.txt").write_text("hit\n" * 50)
    result = await GrepTool().run({"pattern": "hit", "glob": "many.txt", "max_results": 10}, ctx)
    assert len([ln for ln in result.output.splitlines() if ln.startswith("many.txt:")]) == 10
    assert "showing the first 10 matches of 50" in result.output
    assert result.metadata["count"] == 50


async def test_grep_bad_regex_is_error(ctx: ToolContext) -> None:
    result = await GrepTool().run({"pattern": "(unclosed"}, ctx)
    assert result.is_error and "invalid regular expression" in result.output


async def test_find_by_glob(ctx: ToolContext) -> None:
    result = await FindTool().run({"pattern": "*.py"}, ctx)
    assert result.output.splitlines() == ["src/app/main.py", "src/app/util.py", "tests/test_main.py"]
    nested = await FindTool().run({"pattern": "src/**/*.json"}, ctx)
    assert nested.output == "src/app/data.json"
    assert "no files match" in (await FindTool().run({"pattern": "*.rs"}, ctx)).output
    capped = await FindTool().run({"pattern": "*", "max_results": 2}, ctx)
    assert "showing the first 2 files" in capped.output


async def test_find_missing_folder(ctx: ToolContext) -> None:
    result = await FindTool().run({"pattern": "*", "path": "nope"}, ctx)
    assert result.is_error and "path not found" in result.output


@pytest.mark.skipif(shutil.which("rg") is None, reason="ripgrep not installed")
async def test_grep_with_ripgrep_same_format(ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    result = await GrepTool().run({"pattern": r"def helper\("}, ctx)
    assert result.output.splitlines() == ["src/app/util.py:1: def helper():"]


def test_registry_defaults_and_selection() -> None:
    names = [t.name for t in default_tools()]
    assert names == ["read", "write", "edit", "bash", "grep", "find", "ls"]
    assert all(t.parameters["type"] == "object" for t in default_tools())
    assert [t.name for t in get_tools(["grep", "read"])] == ["grep", "read"]
    assert [t.name for t in get_tools(None, exclude=["bash", "write"])] == [
        "read",
        "edit",
        "grep",
        "find",
        "ls",
    ]
    read_only = {t.name for t in default_tools() if t.read_only}
    assert read_only == {"read", "grep", "find", "ls"}


def test_registry_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(LoopcraftError) as info:
        get_tools(["read", "sh"])
    assert "unknown tool `sh`" in str(info.value)
    assert "valid tools: bash, edit, find, grep, ls, read, write" in str(info.value)
    with pytest.raises(LoopcraftError):
        get_tools(None, exclude=["nope"])


async def test_grep_output_bounded_by_max_tool_output(ws: Path) -> None:
    (ws / "wide.txt").write_text(("hit " + "x" * 250 + "\n") * 500)
    ctx = ToolContext(workspace=ws, config=AgentConfig(max_tool_output=2000))
    result = await GrepTool().run({"pattern": "hit", "glob": "wide.txt", "max_results": 1000}, ctx)
    assert len(result.output) < 2300
    assert "of 500; narrow the pattern" in result.output


def test_journal_files_are_refused(tmp_path: Path) -> None:
    from loopcraft.agent.tools.base import ToolError
    from loopcraft.agent.tools.paths import resolve_in_workspace

    for name in ("loopcraft.db", "loopcraft.db-wal"):
        with pytest.raises(ToolError, match="journal"):
            resolve_in_workspace(tmp_path, f".loopcraft/{name}")
    assert resolve_in_workspace(tmp_path, ".loopcraft/runs/r/x.md").name == "x.md"
