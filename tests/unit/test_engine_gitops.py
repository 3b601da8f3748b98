"""The public git helpers loops commit with (real repositories in temp dirs), the ledger's notes,
and ``as_verdict`` turning a failed or malformed reviewer into a rejection."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from loopcraft import (
    Ledger,
    Verdict,
    as_verdict,
    close_worktree,
    commit_all,
    git_diff,
    open_worktree,
    snapshot,
)
from loopcraft.engine.tasks import StageFailure
from tests.conftest import make_git_repo


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def test_commit_all_commits_once_and_leaves_loopcraft_files_out(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "r")
    (repo / ".loopcraft" / "runs" / "x").mkdir(parents=True)
    (repo / ".loopcraft" / "runs" / "x" / "log").write_text("run state")
    (repo / "a.txt").write_text("a\n")
    first = commit_all(repo, "add a")
    assert first.changed and git(repo, "rev-parse", "HEAD").strip() == first.commit
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["a.txt"]
    again = commit_all(repo, "nothing new")
    assert not again.changed and (again.commit, again.tree) == (first.commit, first.tree)


def test_commit_all_works_where_loopcraft_is_git_ignored(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "r")
    (repo / ".gitignore").write_text(".loopcraft/\n")
    (repo / ".loopcraft" / "runs").mkdir(parents=True)
    (repo / ".loopcraft" / "runs" / "f").write_text("x")
    assert commit_all(repo, "ignore").changed
    assert ".loopcraft" not in git(repo, "ls-files")


def test_snapshot_sees_untracked_changes_without_touching_the_index(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "r")
    before = snapshot(repo)
    assert before == git(repo, "rev-parse", "HEAD^{tree}").strip()
    (repo / "new.txt").write_text("new\n")
    after = snapshot(repo)
    assert after != before
    assert git(repo, "status", "--porcelain").strip() == "?? new.txt"  # nothing staged
    assert "+new" in git_diff(repo, "HEAD", after) and "+new" in git_diff(repo, "HEAD")


def test_open_worktree_is_reused_with_the_same_base_and_closing_keeps_the_branch(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "r")
    wt = open_worktree(repo, "run1", "goal")
    assert Path(wt.path).is_dir() and wt.branch == "loopcraft/run1/goal"
    (Path(wt.path) / "f.txt").write_text("f\n")
    done = commit_all(wt.path, "work")
    assert open_worktree(repo, "run1", "goal") == wt  # a resumed loop gets the same worktree
    assert "+f" in git_diff(wt.path, wt.base, done.commit)
    close_worktree(repo, wt.path)
    assert not Path(wt.path).exists() and git(repo, "rev-parse", wt.branch).strip() == done.commit


def test_a_ledger_note_is_published_once_per_event(tmp_path: Path) -> None:
    notes: list[tuple[str, str, str]] = []
    ledger = Ledger(tmp_path / "ledger.json", on_note=lambda *n: notes.append(n))
    assert ledger.record("t1:decision", "decision", {"status": "continue"}, note="turn 1: continue")
    assert not Ledger(tmp_path / "ledger.json", on_note=lambda *n: notes.append(n)).record(
        "t1:decision", "decision", {}, note="turn 1: continue"
    )
    ledger.record("t1:check", "check", {})  # no note: nothing published
    assert notes == [("t1:decision", "decision", "turn 1: continue")]
    assert Ledger(tmp_path / "ledger.json").events[0]["note"] == "turn 1: continue"


async def _value(value: Any) -> Any:
    if isinstance(value, BaseException):
        raise value
    return value


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (
            StageFailure("stage 'r' gave no valid structured output"),
            "reviewer failed: stage 'r' gave no valid",
        ),
        ({"approve": "perhaps"}, "malformed verdict"),
        (None, "missing verdict"),
    ],
)
def test_as_verdict_turns_failures_into_rejections(raw: Any, error: str) -> None:
    verdict = asyncio.run(as_verdict(_value(raw)))
    assert verdict.approve is False and verdict.reviewer_error and error in verdict.reviewer_error


def test_as_verdict_passes_a_good_verdict_and_raises_run_ending_errors() -> None:
    good = asyncio.run(as_verdict(_value({"approve": True, "findings": []})))
    assert good == Verdict(approve=True)
    with pytest.raises(StageFailure):
        asyncio.run(as_verdict(_value(StageFailure("over budget", run_status="budget_exceeded"))))
