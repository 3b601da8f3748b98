"""The engine hands each stage a typed ``lease_check`` (TaskRequest): it passes while this
execution owns the run and raises LeaseLost once the journal names another owner."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from loopcraft import Context, workflow
from loopcraft.engine.journal import Journal
from loopcraft.engine.leases import LeaseLost
from loopcraft.engine.tasks import TaskOutcome, TaskRequest
from tests.control_fakes import SteppedRunner, SteppedSession, open_control_engine

OTHER = "otherhost:4242:beef00"


@workflow(name="one")
async def one(ctx: Context) -> str:
    return (await ctx.task("work", prompt="w")).text


@dataclass
class CheckingRunner(SteppedRunner):
    """Its stage awaits the request's lease check, lets another owner take the run, awaits it again."""

    journal: Journal | None = None
    seen: list[str] = field(default_factory=list)

    async def open(self, request: TaskRequest) -> SteppedSession:
        session = await super().open(request)
        check = request.lease_check
        assert check is not None
        journal = self.journal
        assert journal is not None

        async def run(prompt: str | None) -> TaskOutcome:
            await check()
            self.seen.append("owned")
            await journal.update_run(request.run_id, owner=OTHER)
            with pytest.raises(LeaseLost, match="lost its lease"):
                await check()
            self.seen.append("lost")
            return TaskOutcome("done", usage=session._outcome("completed", "").usage)

        session.run = run  # type: ignore[method-assign]
        return session


async def test_a_stage_request_carries_the_runs_lease_check(git_repo: Path) -> None:
    runner = CheckingRunner(default_steps=1)
    engine = await open_control_engine(git_repo, runner)
    runner.journal = engine.journal
    engine.register(one)
    info = await engine.run("one", {})
    assert runner.seen == ["owned", "lost"]
    assert info.status != "completed"  # the run was taken over: this process recorded nothing more
    await engine.close()
