"""git's own ignore rules, seen the same by find, grep (Python and ripgrep) and ls, in a real
git repository and in a plain folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from loopcraft.agent.ignore import ignored_entries, visible_files
from loopcraft.agent.tools import search
from loopcraft.agent.tools.base import ToolContext
from loopcraft.agent.tools.fs import LsTool
from loopcraft.agent.tools.search import FindTool, GrepTool
from tests.conftest import make_git_repo

TREE = {
    ".gitignore": "*.log\n!keep.log\nbuild/\n",
    "app.py": "needle\n",
    "blob.bin": "needle\0\1\n",
    "debug.log": "needle\n",
    "keep.log": "needle\n",
    "build/out.txt": "needle\n",
    "sub/.gitignore": "secret.txt\n",
    "sub/secret.txt": "needle\n",
    "sub/open.txt": "needle\n",
    "sub/deep/secret.txt": "needle\n",
    "local/excluded.txt": "needle\n",
    "local/kept.txt": "needle\n",
    "node_modules/pkg/index.js": "needle\n",
}
VISIBLE_PLAIN = [".gitignore", "app.py", "blob.bin", "keep.log", "local/excluded.txt", "local/kept.txt", "sub/.gitignore", "sub/open.txt"]  # fmt: skip
VISIBLE_GIT = [p for p in VISIBLE_PLAIN if p != "local/excluded.txt"]  # .git/info/exclude


def _lay(root: Path) -> Path:
    for rel, text in TREE.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root.resolve()


@pytest.fixture(params=["git", "plain"])
def tree(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, list[str]]:
    if request.param == "plain":
        return _lay(tmp_path / "plain"), VISIBLE_PLAIN
    repo = make_git_repo(tmp_path / "repo")
    (repo / "README.md").unlink()
    (repo / ".git/info").mkdir(exist_ok=True)
    (repo / ".git/info/exclude").write_text("local/excluded.txt\n")
    return _lay(repo), VISIBLE_GIT


def _no_rg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search.shutil, "which", lambda name: None)


def test_visible_files_honour_negation_nested_and_exclude(tree: tuple[Path, list[str]]) -> None:
    root, visible = tree
    assert visible_files(root, root) == visible
    assert visible_files(root, root / "sub") == ["sub/.gitignore", "sub/open.txt"]
    assert visible_files(root, root / "sub/deep") == []  # sub/.gitignore reaches below sub/
    assert visible_files(root, root / "keep.log") == ["keep.log"]


async def test_find_and_python_grep_see_the_same_files(
    tree: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, visible = tree
    _no_rg(monkeypatch)
    ctx = ToolContext(workspace=root)
    found = await FindTool().run({"pattern": "*"}, ctx)
    assert found.output.splitlines() == visible
    grepped = await GrepTool().run({"pattern": "needle"}, ctx)
    assert [line.split(":")[0] for line in grepped.output.splitlines()] == [
        p for p in visible if not p.endswith((".gitignore", ".bin"))
    ]


@pytest.mark.skipif(shutil.which("rg") is None, reason="ripgrep not installed")
async def test_ripgrep_grep_agrees_with_python_grep(
    tree: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = tree
    ctx = ToolContext(workspace=root)
    with_rg = await GrepTool().run({"pattern": "needle"}, ctx)
    _no_rg(monkeypatch)
    without = await GrepTool().run({"pattern": "needle"}, ctx)
    assert with_rg.output == without.output and "debug.log" not in with_rg.output


async def test_ls_leaves_out_and_counts_ignored_entries(tree: tuple[Path, list[str]]) -> None:
    root, _ = tree
    assert ignored_entries(root, root) == {"debug.log", "build"}
    assert ignored_entries(root, root / "sub") == {"secret.txt"}
    result = await LsTool().run({"path": "."}, ToolContext(workspace=root))
    names = result.output.split("\n\n")[0].splitlines()
    assert "keep.log" in names and "sub/" in names and "debug.log" not in names and "build/" not in names
    assert "[2 git-ignored entries not shown]" in result.output


def test_a_tracked_file_stays_visible_although_a_pattern_matches_it(git_repo: Path) -> None:
    root = git_repo.resolve()
    (root / "tracked.log").write_text("x\n")
    make_git_repo(root)  # commits tracked.log
    (root / ".gitignore").write_text("*.log\n")
    assert "tracked.log" in visible_files(root, root)
    assert "tracked.log" not in ignored_entries(root, root)
