"""Run history: remove runs (``loopcraft rm``, ``loopcraft gc``) with their folders and worktrees,
and list runs filtered by workflow, status and age.

A run held by a live process (its lease is current and its owner alive) is never removed.
Removing a run deletes its journal rows, its run folder and its worktree folders; the git
branches of its worktrees stay (work on them is never thrown away).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass

from loopcraft.engine import worktrees
from loopcraft.engine.control import RunStateError
from loopcraft.engine.journal import RunRow
from loopcraft.engine.leases import held
from loopcraft.engine.names import short_id
from loopcraft.engine.service import Engine
from loopcraft.engine.stats import parse_age
from loopcraft.paths import state_dir

LIVE_STATES = frozenset({"pending", "running", "awaiting_input", "paused"})
NOT_COMPLETED = frozenset(
    {"failed", "blocked", "needs_human", "budget_exceeded", "cancelled", "killed", "crashed"}
)


class RunInUse(RunStateError):
    """The run is being run by a live process: it cannot be removed."""


@dataclass
class Removed:
    run_id: str
    folders: list[str]


def is_running(row: RunRow) -> bool:
    return row.status in LIVE_STATES and held(row)


async def remove_run(engine: Engine, row: RunRow) -> Removed:
    """Remove one run that no live process holds; raises :class:`RunInUse` otherwise."""
    fresh = await engine.journal.get_run(row.id) or row
    if is_running(fresh) or engine.runs_here(fresh.id):
        raise RunInUse(
            f"run {fresh.id} is running (owner {fresh.owner}); stop it first with `loopcraft kill {short_id(fresh.id)}`"
        )
    message = f"loopcraft: run {fresh.id} was removed; work left in its worktree"
    folders = [
        str(p)
        for p in await asyncio.to_thread(worktrees.discard_run_worktrees, engine.root, fresh.id, message)
    ]
    run_dir = state_dir(engine.root) / "runs" / fresh.id
    if run_dir.is_dir():
        await asyncio.to_thread(shutil.rmtree, run_dir)
        folders.append(str(run_dir))
    await engine.journal.delete_run(fresh.id)
    return Removed(fresh.id, folders)


async def remove_runs(engine: Engine, run_ids: list[str]) -> list[Removed]:
    """``loopcraft rm``: every run is checked first, so one running run removes none."""
    rows = [await engine.find_run(run_id, damaged_ok=True) for run_id in run_ids]
    busy = [r.id for r in rows if is_running(r)]
    if busy:
        raise RunInUse(
            f"run {busy[0]} is running; stop it first with `loopcraft kill {short_id(busy[0])}` (nothing removed)"
        )
    return [await remove_run(engine, row) for row in rows]


async def gc_candidates(engine: Engine, older_than: str, *, keep_failed: bool) -> list[RunRow]:
    """Runs created before ``older_than`` ago, not running, and (``keep_failed``) completed ones only."""
    cutoff = time.time() - parse_age(older_than, "--older-than")
    rows = await engine.journal.list_runs(limit=1_000_000, before=cutoff)
    chosen = []
    for row in rows:
        if is_running(row):
            continue
        status = engine.run_info(row).status
        if keep_failed and status in NOT_COMPLETED:
            continue
        chosen.append(row)
    return chosen


async def gc_runs(
    engine: Engine, older_than: str, *, keep_failed: bool, dry_run: bool = False
) -> list[Removed]:
    rows = await gc_candidates(engine, older_than, keep_failed=keep_failed)
    if dry_run:
        return [Removed(r.id, []) for r in rows]
    removed = []
    for row in rows:
        try:
            removed.append(await remove_run(engine, row))
        except RunInUse:
            continue  # it started again meanwhile
    return removed
