"""A killed run leaves no worktree folders behind: killed while its worktree stage is running (by the
owning process) or after its process died (``loopcraft kill`` in another process), the run's folders
are removed and `git worktree list` forgets them; the branches stay with the partial work committed.
Other runs' worktrees are left alone."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from loopcraft import Context, workflow
from loopcraft.config import Config
from loopcraft.engine.service import Engine
from loopcraft.engine.worktrees import safe_name, worktree_for
from tests.cli_process import spawn_loopcraft
from tests.engine_helpers import crashed_run
from tests.integration.test_agent_support import scripted_model, tool_call


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@workflow(name="wt-slow")
async def wt_slow(ctx: Context) -> str:
    result = await ctx.task("fix", prompt="edit", worktree=True)
    return result.text


@workflow(name="wt-kept")
async def wt_kept(ctx: Context) -> str:
    result = await ctx.task("keep", prompt="edit", worktree=True, keep_worktree=True)
    return result.text


def write_then_talk(pace: float) -> list[dict[str, Any]]:
    """Write a.txt, then a long (paced) answer: the stage is mid-turn for a while after the write."""
    return [
        {"tool_calls": [tool_call("write", path="a.txt", content="partial\n")]},
        {"text": "done " + "." * 2000, "pace": pace},
    ]


def assert_discarded(repo: Path, run_id: str) -> None:
    tree = worktree_for(repo, run_id, "fix")
    assert not tree.path.exists(), "the killed run's worktree folder is still there"
    assert str(tree.path) not in git(repo, "worktree", "list", "--porcelain")
    assert git(repo, "show", f"{tree.branch}:a.txt") == "partial\n"  # the branch kept the partial work
    assert not (repo / "a.txt").exists()  # nothing reached the main tree


@pytest.fixture
def repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(git_repo)
    return git_repo


async def test_killing_a_running_run_removes_its_worktrees(repo: Path) -> None:
    model = scripted_model(stages={"fix": write_then_talk(0.05), "keep": [{"text": "kept"}]})
    engine = await Engine.open(repo, Config(model=model))
    engine.register(wt_slow, wt_kept)
    try:
        kept = await engine.run("wt-kept", {})
        assert kept.status == "completed", kept.error
        run_id = await engine.start("wt-slow", {})
        written = worktree_for(repo, run_id, "fix").path / "a.txt"
        for _ in range(400):
            if written.exists():
                break
            await asyncio.sleep(0.025)
        assert written.exists(), "the stage never wrote in its worktree"
        info = await engine.kill(run_id)
    finally:
        await engine.close()
    assert info.status == "killed"
    assert_discarded(repo, run_id)
    assert worktree_for(repo, kept.id, "keep").path.is_dir(), "another run's kept worktree was removed"


async def test_loopcraft_kill_of_a_dead_run_removes_its_worktrees(repo: Path) -> None:
    model = scripted_model(stages={"fix": write_then_talk(0.0)})
    engine, run_id = await crashed_run(repo, Config(model=model), wt_slow, crash_on_call=2)
    await engine.close()
    assert (worktree_for(repo, run_id, "fix").path / "a.txt").exists()

    proc = spawn_loopcraft(repo, dict(os.environ), "kill", run_id)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert_discarded(repo, run_id)
    branch = f"loopcraft/{safe_name(run_id)}/fix"
    assert branch in git(repo, "branch", "--list", branch)
