"""``loopcraft.gitops`` on real git repositories: commits that are safe to make again after a crash
(``commit_all`` with a key, ``commit_onto``), loopcraft's own state never committed, branch and
worktree clean-up; and a task's bad ``permission_rules`` is one line naming the fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from loopcraft import gitops
from loopcraft.engine.agent_runner import stage_rules
from loopcraft.errors import LoopcraftError
from tests.conftest import one_line_error


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_commit_all_with_a_key_commits_once_and_skips_loopcraft_state(git_repo: Path) -> None:
    (git_repo / ".loopcraft" / "runs" / "r1").mkdir(parents=True)
    (git_repo / ".loopcraft" / "runs" / "r1" / "log.txt").write_text("state\n")
    (git_repo / ".loopcraft" / "loopcraft.db").write_text("db")
    (git_repo / "a.txt").write_text("a\n")
    first = gitops.commit_all(git_repo, "add a", key="run:root/1:tool:commit").commit
    assert first == git(git_repo, "rev-parse", "HEAD").strip()
    assert git(git_repo, "show", "--name-only", "--format=", "HEAD").split() == ["a.txt"]
    (git_repo / "b.txt").write_text("b\n")  # a re-run with the same key finds its commit
    assert gitops.commit_all(git_repo, "add a", key="run:root/1:tool:commit").commit == first
    assert gitops.commit_all(git_repo, "add b").commit != first
    assert not gitops.commit_all(git_repo, "nothing").changed


def test_commit_onto_squashes_a_branch_once_and_drop_removes_its_worktree(git_repo: Path) -> None:
    base = gitops.ensure_branch(git_repo, "loopcraft/improve/x")
    assert gitops.ensure_branch(git_repo, "loopcraft/improve/x") == base  # idempotent
    tree = git_repo.parent / "tree"
    git(git_repo, "worktree", "add", "-q", "-b", "exp", str(tree), "loopcraft/improve/x")
    (tree / "README.md").write_text("# better\n")
    gitops.commit_all(tree, "exp")
    assert gitops.changed_files(git_repo, base, "exp") == ["README.md"]
    tip = gitops.commit_onto(git_repo, "loopcraft/improve/x", "exp", "keep exp")
    assert gitops.commit_onto(git_repo, "loopcraft/improve/x", "exp", "keep exp") == tip  # not twice
    assert git(git_repo, "rev-list", "--count", f"{base}..loopcraft/improve/x").strip() == "1"
    assert git(git_repo, "show", "loopcraft/improve/x:README.md") == "# better\n"
    assert (git_repo / "README.md").read_text() == "# sample\n"  # no work tree was touched
    gitops.drop_worktree(git_repo, tree, "exp")
    assert not tree.exists() and git(git_repo, "branch", "--list", "exp") == ""
    assert gitops.delete_branch(git_repo, "exp") is False


def test_a_bad_permission_rule_is_one_line_naming_the_fix() -> None:
    assert [r.action for r in stage_rules([{"tool": "write", "pattern": "*", "action": "deny"}])] == ["deny"]
    message = one_line_error(LoopcraftError, lambda: stage_rules([{"tool": "write", "action": "forbid"}]))
    assert "bad permission rule" in message and "'allow'|'ask'|'deny'" in message


def test_head_of_an_unknown_ref_is_a_git_error(git_repo: Path) -> None:
    with pytest.raises(gitops.GitError, match="cannot resolve nope"):
        gitops.head(git_repo, "nope")
