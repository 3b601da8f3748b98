"""Leases on a real journal: atomic claims, fencing once a lease is lost, 50 races of two
resumers with exactly one winner each, and crashed runs (dead owner) shown and resumable."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from loopcraft import Context, workflow
from loopcraft.engine.journal import StepRow
from loopcraft.engine.leases import Lease, LeaseLost, RunBusy, new_owner_id
from loopcraft.engine.run_writer import RunWriter
from loopcraft.engine.service import Engine
from tests.control_fakes import SteppedRunner, fast_config

SIDE_EFFECTS: list[str] = []


RELEASE: dict[str, asyncio.Event] = {}


@workflow(name="tool-only")
async def tool_only(ctx: Context) -> str:
    async def effect() -> str:
        SIDE_EFFECTS.append(ctx.run_id)
        if ctx.run_id in RELEASE:  # a race: hold the run until the loser has been told
            await RELEASE[ctx.run_id].wait()
        return "done"

    return str(await ctx.tool("effect", effect))


async def _engine(root: Path) -> Engine:
    engine = await Engine.open(root, fast_config(), runner=SteppedRunner())
    engine.register(tool_only)
    return engine


DEAD_OWNER = "nohost-that-exists:999999:dead00"


async def _crashed_run(engine: Engine, run_id: str) -> None:
    await engine.journal.create_run(run_id, "tool-only", {}, status="running")
    await engine.journal.update_run(run_id, owner=DEAD_OWNER, lease_expires=time.time() - 1)


async def test_claim_is_exclusive_and_a_lost_lease_fences_writes(git_repo: Path) -> None:
    engine = await _engine(git_repo)
    await engine.journal.create_run("r1", "tool-only", {})
    first = Lease(engine.journal, "r1", new_owner_id(), 5.0)
    second = Lease(engine.journal, "r1", new_owner_id(), 5.0)
    await first.claim()
    with pytest.raises(RunBusy, match=f"being run by {first.owner}"):
        await second.claim()
    await engine.journal.update_run("r1", lease_expires=time.time() - 1)  # first's lease ran out
    first.expires = time.time() - 1
    await second.claim()
    assert not await first.renew()
    fenced = RunWriter(engine.journal, first, {})
    with pytest.raises(LeaseLost):
        await fenced.update_run("r1", status="completed")
    row = StepRow("r1", "root/0:tool:x", "root/0", "tool", "x", "completed", seq=1)
    await fenced.start_step(row)  # queued: the commit that would write it is fenced
    with pytest.raises(LeaseLost):
        await fenced.finish_step(row)
    await asyncio.sleep(0.05)  # the background flush is fenced too
    assert await engine.journal.load_steps("r1") == []
    assert (await engine.journal.get_run("r1")).owner == second.owner  # type: ignore[union-attr]
    assert await second.renew()
    await engine.close()


async def test_fifty_races_of_two_resumers_have_one_winner_each(git_repo: Path) -> None:
    SIDE_EFFECTS.clear()
    one, two = await _engine(git_repo), await _engine(git_repo)  # two connections
    for index in range(50):
        run_id = f"race-{index}"
        await _crashed_run(one, run_id)
        RELEASE[run_id] = asyncio.Event()
        racers = {asyncio.ensure_future(one.resume(run_id)), asyncio.ensure_future(two.resume(run_id))}
        done, pending = await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED, timeout=10)
        assert len(done) == 1 and len(pending) == 1
        loser = done.pop().exception()
        assert isinstance(loser, RunBusy) and "being run by" in str(loser)
        RELEASE[run_id].set()
        assert (await pending.pop()).status == "completed"
    assert sorted(SIDE_EFFECTS) == sorted(f"race-{i}" for i in range(50))  # each effect ran once
    await one.close()
    await two.close()


async def test_dead_owner_shows_crashed_and_resumes(git_repo: Path) -> None:
    engine = await _engine(git_repo)
    await _crashed_run(engine, "r2")
    assert (await engine.get_run("r2")).status == "crashed"
    info = await engine.resume("r2")
    assert info.status == "completed" and info.output == "done"
    await engine.close()


async def test_a_live_owner_wins_over_a_late_resumer(git_repo: Path) -> None:
    engine = await _engine(git_repo)
    await engine.journal.create_run("r3", "tool-only", {}, status="running")
    holder = Lease(engine.journal, "r3", new_owner_id(), 30.0)  # this (live) process owns it
    await holder.claim()
    other = await _engine(git_repo)
    with pytest.raises(RunBusy, match=holder.owner):
        await other.resume("r3")
    assert (await other.get_run("r3")).status == "running"
    await engine.close()
    await other.close()
