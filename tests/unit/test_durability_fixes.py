"""Durability fixes on real journals and session files: concurrent lease claims in one process,
a losing claim leaving other runs' writes alone, and the stale-lease transcript guard."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from loopcraft import Context, workflow
from loopcraft.engine.journal import Journal
from loopcraft.engine.leases import Lease, LeaseLost, RunBusy, new_owner_id
from loopcraft.engine.service import Engine
from tests.control_fakes import SteppedRunner, fast_config


async def _journal(tmp_path: Path) -> Journal:
    return await Journal.open(tmp_path / "journal.db")


async def test_two_runs_claimed_concurrently_in_one_process_both_succeed(tmp_path: Path) -> None:
    journal = await _journal(tmp_path)
    ids = [f"r{i}" for i in range(8)]
    for run_id in ids:
        await journal.create_run(run_id, "wf", {})
    leases = [Lease(journal, run_id, new_owner_id(), 30.0) for run_id in ids]
    await asyncio.gather(*(lease.claim() for lease in leases))
    for lease in leases:
        row = await journal.get_run(lease.run_id)
        assert row is not None and row.owner == lease.owner and row.status == "running"
    await journal.close()


async def test_a_losing_claim_does_not_roll_back_another_runs_write(tmp_path: Path) -> None:
    journal = await _journal(tmp_path)
    await journal.create_run("held", "wf", {})
    await journal.create_run("other", "wf", {})
    holder = Lease(journal, "held", new_owner_id(), 30.0)
    await holder.claim()
    loser = Lease(journal, "held", new_owner_id(), 30.0)
    results = await asyncio.gather(
        loser.claim(), journal.update_run("other", status="completed"), return_exceptions=True
    )
    assert isinstance(results[0], RunBusy)
    assert results[1] is None
    row = await journal.get_run("other")
    assert row is not None and row.status == "completed"
    await journal.close()


async def test_a_dead_owner_on_this_host_is_taken_over_once(tmp_path: Path) -> None:
    journal = await _journal(tmp_path)
    await journal.create_run("r", "wf", {})
    dead = f"{socket.gethostname()}:999999:dead00"  # pid 999999 does not exist
    await journal.update_run("r", owner=dead, lease_expires=time.time() + 60)
    one, two = Lease(journal, "r", new_owner_id(), 30.0), Lease(journal, "r", new_owner_id(), 30.0)
    results = await asyncio.gather(one.claim(), two.claim(), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["NoneType", "RunBusy"]
    row = await journal.get_run("r")
    winner = one if results[0] is None else two
    assert row is not None and row.owner == winner.owner
    await journal.close()


@workflow(name="loses-its-lease")
async def loses_its_lease(ctx: Context) -> str:
    raise LeaseLost(f"run {ctx.run_id}: this process lost its lease; another process owns the run")


async def test_a_lost_lease_is_not_recorded_as_a_failed_run(git_repo: Path) -> None:
    engine = await Engine.open(git_repo, fast_config(), runner=SteppedRunner())
    engine.register(loses_its_lease)
    info = await engine.run("loses-its-lease", {})
    row = await engine.journal.get_run(info.id)
    assert row is not None and row.status != "failed" and row.error is None
    await engine.close()


async def test_the_transcript_guard_raises_once_the_lease_expired(tmp_path: Path) -> None:
    journal = await _journal(tmp_path)
    await journal.create_run("r", "wf", {})
    lease = Lease(journal, "r", new_owner_id(), 30.0)
    await lease.claim()
    lease.check()  # fresh: fine
    lease.expires = time.time() - 1  # stalled past its lease
    with pytest.raises(LeaseLost):
        lease.check()
    await lease.ensure()  # still ours in the journal: renewed
    lease.check()
    await journal.close()
