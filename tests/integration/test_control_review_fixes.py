"""Run-control edge cases: a stage that cannot be removed or steered does not stop the others."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from loopcraft.config import Config
from loopcraft.engine.control import RunControl
from loopcraft.engine.journal import Journal, StepRow
from loopcraft.engine.worktrees import discard_run_worktrees, ensure_worktree, run_worktrees, worktree_for
from loopcraft.errors import LoopcraftError


def test_a_locked_worktree_does_not_keep_the_others_of_a_killed_run(git_repo: Path) -> None:
    first, second = (ensure_worktree(worktree_for(git_repo, "r1", name)) for name in ("a", "b"))
    subprocess.run(["git", "worktree", "lock", str(first.path)], cwd=git_repo, check=True)
    removed = discard_run_worktrees(git_repo, "r1", "killed")
    assert removed == [second.path] and not second.path.exists()
    assert first.path.exists() and [wt.path for wt in run_worktrees(git_repo, "r1")] == [first.path]


async def test_only_agent_stages_wait_for_run_wide_steering(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "loopcraft.db")
    await journal.create_run("r1", "wf", {}, status="running")
    control = RunControl(SimpleNamespace(journal=journal, run_id="r1", config=Config()))  # type: ignore[arg-type]
    rows = [
        StepRow("r1", "root/0:parallel:fan", "0", "parallel", "fan", "budget_exceeded"),
        StepRow("r1", "root/0:parallel:fan/0:task:a", "0/0", "task", "a", "budget_exceeded"),
        StepRow("r1", "root/1:workflow:sub", "1", "workflow", "sub", "cancelled"),
        StepRow("r1", "root/2:stage:s/0:stage_prompt:s", "2/0", "stage_prompt", "s", "cancelled"),
    ]
    await control.start(rows)
    assert control.resumable == {"root/0:parallel:fan/0:task:a", "root/2:stage:s"}
    await journal.close()


class _Closed:
    started, corrections = True, 0

    def steer(self, text: str) -> None:
        raise LoopcraftError("session closed")

    follow_up = steer


class _Open(_Closed):
    def __init__(self) -> None:
        self.got: list[str] = []

    def steer(self, text: str) -> None:
        self.got.append(text)


async def test_a_closed_session_does_not_stop_a_run_wide_steer(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "loopcraft.db")
    await journal.create_run("r1", "wf", {}, status="running")
    control = RunControl(SimpleNamespace(journal=journal, run_id="r1", config=Config()))  # type: ignore[arg-type]
    live = _Open()
    closed: Any = _Closed()
    control.attach("a", closed)
    control.attach("b", live)  # type: ignore[arg-type]
    control._deliver("steer", None, "use pathlib")
    assert live.got == ["use pathlib"]
    await journal.close()
