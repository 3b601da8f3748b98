"""``ctx.parallel`` on a real journal with a fake agent that counts how many branches run at once:
the concurrency limit (explicit, or ``engine.default_concurrency``) is reached and never passed;
``fail_fast=True`` cancels the branches in flight and starts no more, ``fail_fast=False`` lets every
branch finish before the first failure is raised; a recorded failure replays without re-running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from loopcraft import Context, workflow
from loopcraft.config import Config, EngineConfig
from loopcraft.engine.service import Engine
from loopcraft.engine.tasks import TaskOutcome, TaskRequest
from loopcraft.models.types import Usage
from tests.engine_fakes import open_engine


@dataclass
class CountingRunner:
    """Sessions that record how many run at once. A session holds until ``hold_until`` of them run
    together (or every branch has started), so the peak is reached without relying on timing; a
    session named in ``fail`` raises at once, one named in ``block`` waits until cancelled."""

    total: int
    hold_until: int = 1
    fail: set[str] = field(default_factory=set)
    block: set[str] = field(default_factory=set)
    live: int = 0
    peak: int = 0
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    async def open(self, request: TaskRequest) -> CountingSession:
        return CountingSession(self, request)


@dataclass
class CountingSession:
    runner: CountingRunner
    request: TaskRequest
    started: bool = False
    corrections: int = 0

    async def run(self, prompt: str | None) -> TaskOutcome:
        runner, name = self.runner, self.request.name
        runner.live += 1
        runner.peak = max(runner.peak, runner.live)
        runner.started.append(name)
        try:
            if name in runner.fail:
                raise RuntimeError(f"{name} broke")
            if name in runner.block:
                await asyncio.Event().wait()
            for _ in range(5000):  # at most ~5 s: a limit that is too strict must fail, not hang
                if runner.live >= runner.hold_until or len(runner.started) >= runner.total:
                    break
                await asyncio.sleep(0.001)
            # a little longer in flight, so a branch over the limit would be running by now (this only
            # helps a broken limit show; a correct one passes however slow the machine)
            await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            runner.cancelled.append(name)
            raise
        finally:
            runner.live -= 1
        runner.finished.append(name)
        return TaskOutcome(text=f"ok:{name}", usage=Usage(10, 5), model=self.request.model)

    def steer(self, text: str) -> None: ...
    def follow_up(self, text: str) -> None: ...
    def interrupt(self) -> None: ...
    def close(self) -> None: ...


BRANCHES = [f"b{i}" for i in range(6)]
OPTIONS: dict[str, Any] = {}


@workflow(name="fan")
async def fan(ctx: Context) -> list[str]:
    results = await ctx.parallel(*[ctx.spec(name, prompt="go") for name in BRANCHES], **OPTIONS)
    return [r.text for r in results]


@workflow(name="fan-awaitables")
async def fan_awaitables(ctx: Context) -> list[str]:
    results = await ctx.parallel(*[ctx.task(name, prompt="go") for name in BRANCHES], **OPTIONS)
    return [r.text for r in results]


ENGINES: list[Engine] = []


@pytest.fixture(autouse=True)
async def _options() -> AsyncIterator[None]:
    OPTIONS.clear()
    yield
    while ENGINES:  # closed even when an assertion failed (an open journal keeps the process alive)
        await ENGINES.pop().close()


async def _run(root: Path, runner: CountingRunner, name: str = "fan", config: Config | None = None) -> Any:
    engine = await open_engine(root, runner, config)
    ENGINES.append(engine)
    engine.register(fan, fan_awaitables)
    info = await engine.run(name, {})
    steps = {s.name or s.kind: s.status for s in await engine.journal.load_steps(info.id)}
    return engine, info, steps


@pytest.mark.parametrize("limit", [1, 2, 4])
@pytest.mark.parametrize("name", ["fan", "fan-awaitables"])
async def test_concurrency_limit_is_reached_and_never_passed(git_repo: Path, limit: int, name: str) -> None:
    OPTIONS["concurrency"] = limit
    runner = CountingRunner(total=len(BRANCHES), hold_until=limit)
    _, info, steps = await _run(git_repo, runner, name)
    assert info.status == "completed", info.error
    assert runner.peak == limit
    assert info.output == [f"ok:{b}" for b in BRANCHES]  # results in the order given
    assert sorted(runner.finished) == BRANCHES and all(steps[b] == "completed" for b in BRANCHES)


async def test_default_concurrency_comes_from_the_config(git_repo: Path) -> None:
    config = Config(model="scripted/test", engine=EngineConfig(default_concurrency=3))
    runner = CountingRunner(total=len(BRANCHES), hold_until=3)
    _, info, _ = await _run(git_repo, runner, config=config)
    assert info.status == "completed", info.error
    assert runner.peak == 3


async def test_fail_fast_one_at_a_time_starts_nothing_after_the_failure(git_repo: Path) -> None:
    OPTIONS["concurrency"] = 1
    runner = CountingRunner(total=len(BRANCHES), fail={"b0"})
    _, info, steps = await _run(git_repo, runner)
    assert info.status == "failed"
    assert "b0 broke" in (info.error or "")
    assert runner.started == ["b0"]  # no other branch reached the agent
    assert steps["b0"] == "failed" and not any(steps.get(b) == "completed" for b in BRANCHES)


async def test_fail_fast_cancels_the_branches_in_flight(git_repo: Path) -> None:
    OPTIONS["concurrency"] = len(BRANCHES)
    runner = CountingRunner(total=len(BRANCHES), fail={"b3"}, block=set(BRANCHES) - {"b3"})
    _, info, steps = await asyncio.wait_for(_run(git_repo, runner), 20)
    assert info.status == "failed"
    assert "b3 broke" in (info.error or "")
    assert sorted(runner.started) == BRANCHES  # all in flight when b3 failed
    assert sorted(runner.cancelled) == sorted(set(BRANCHES) - {"b3"})
    assert runner.finished == [] and runner.live == 0
    assert steps["b3"] == "failed"
    assert not any(steps[b] == "completed" for b in BRANCHES)


async def test_without_fail_fast_every_branch_finishes_then_the_failure_is_raised(git_repo: Path) -> None:
    OPTIONS.update(concurrency=2, fail_fast=False)
    runner = CountingRunner(total=len(BRANCHES), hold_until=2, fail={"b1"})
    engine, info, steps = await _run(git_repo, runner)
    assert info.status == "failed"
    assert "b1 broke" in (info.error or "")
    assert sorted(runner.started) == BRANCHES and runner.cancelled == []
    assert sorted(runner.finished) == sorted(set(BRANCHES) - {"b1"})
    assert runner.peak == 2
    assert {b: steps[b] for b in BRANCHES} == {b: "failed" if b == "b1" else "completed" for b in BRANCHES}

    # a resume replays the recorded branches (and the recorded failure) without running any of them
    again = await engine.resume(info.id)
    assert again.status == "failed" and "b1 broke" in (again.error or "")
    assert sorted(runner.started) == BRANCHES


async def test_fail_fast_replay_raises_the_recorded_failure_before_starting_siblings(git_repo: Path) -> None:
    OPTIONS["concurrency"] = 1
    runner = CountingRunner(total=len(BRANCHES), fail={"b0"})
    engine, info, _ = await _run(git_repo, runner)
    assert info.status == "failed"
    runner.fail.clear()  # the branch would pass now, but its failure is recorded
    again = await engine.resume(info.id)
    assert again.status == "failed" and "b0 broke" in (again.error or "")
    assert runner.started == ["b0"]


@pytest.mark.parametrize("limit", [1, len(BRANCHES)])
async def test_a_failed_fan_out_leaves_no_step_running(git_repo: Path, limit: int) -> None:
    OPTIONS["concurrency"] = limit
    runner = CountingRunner(total=len(BRANCHES), fail={"b0"}, block=set(BRANCHES) - {"b0"})
    _, info, steps = await asyncio.wait_for(_run(git_repo, runner), 20)
    assert info.status == "failed"
    assert [name for name, status in steps.items() if status == "running"] == []
