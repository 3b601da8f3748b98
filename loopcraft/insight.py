"""Headless output of the "see and improve your loops" commands: ``stats``, ``runs`` filters,
``rm``, ``gc``, ``fork``, ``diff``, ``replay`` and ``eval`` (the logic is in the engine modules)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import get_args

from loopcraft.config import Config
from loopcraft.engine.results import RunState
from loopcraft.engine.service import Engine
from loopcraft.engine.stats import journal_stats, parse_age, stats_lines
from loopcraft.errors import LoopcraftError
from loopcraft.headless import _dump, _elapsed, _money

RUN_STATES = get_args(RunState)


async def print_stats(
    root: Path, config: Config, workflow: str | None, *, since: str | None, as_json: bool
) -> None:
    age = parse_age(since) if since else None
    async with await Engine.open(root, config) as engine:
        entries = await journal_stats(engine.journal, workflow=workflow, since=age)
    if as_json:
        _dump(entries)
        return
    print("\n".join(stats_lines(entries)))


async def print_filtered_runs(
    root: Path,
    config: Config,
    *,
    as_json: bool,
    limit: int,
    workflow: str | None,
    status: str | None,
    since: str | None,
) -> None:
    """``loopcraft runs`` with filters (``crashed`` is a live run no process holds)."""
    if status is not None and status not in RUN_STATES:
        raise LoopcraftError(f"bad --status {status!r}: use one of {', '.join(RUN_STATES)}")
    cutoff = time.time() - parse_age(since) if since else None
    states = None
    if status is not None:
        states = ["pending", "running", "paused", "awaiting_input"] if status == "crashed" else [status]
    async with await Engine.open(root, config) as engine:
        rows = await engine.journal.list_runs(limit, workflow=workflow, statuses=states, since=cutoff)
        runs = [engine.run_info(r) for r in rows]
    if status is not None:
        runs = [r for r in runs if r.status == status]
    if as_json:
        _dump([r.to_dict() for r in runs])
        return
    if not runs:
        print("no runs match")
        return
    print(f"{'RUN':<22} {'WORKFLOW':<20} {'STATUS':<16} {'ELAPSED':>8} {'COST':>9}")
    for r in runs:
        print(f"{r.id:<22} {r.workflow:<20} {r.status:<16} {_elapsed(r.elapsed):>8} {_money(r.cost):>9}")


async def rm_runs(root: Path, config: Config, run_ids: list[str], *, as_json: bool) -> None:
    from loopcraft.engine.history import remove_runs

    async with await Engine.open(root, config) as engine:
        removed = await remove_runs(engine, run_ids)
    if as_json:
        _dump([{"run_id": r.run_id, "removed": r.folders} for r in removed])
        return
    for r in removed:
        print(f"removed {r.run_id}" + (f" ({len(r.folders)} folder(s))" if r.folders else ""))


async def gc(
    root: Path, config: Config, older_than: str, *, keep_failed: bool, dry_run: bool, as_json: bool
) -> None:
    from loopcraft.engine.history import gc_runs

    async with await Engine.open(root, config) as engine:
        removed = await gc_runs(engine, older_than, keep_failed=keep_failed, dry_run=dry_run)
    if as_json:
        _dump({"dry_run": dry_run, "runs": [r.run_id for r in removed]})
        return
    verb = "would remove" if dry_run else "removed"
    for r in removed:
        print(f"{verb} {r.run_id}")
    print(f"{verb} {len(removed)} run(s) older than {older_than}")


async def fork(
    root: Path,
    config: Config,
    run_id: str,
    stage: str,
    *,
    model: str | None,
    inputs: dict[str, str],
    as_json: bool,
    gates: str = "auto",
) -> int:
    """``loopcraft fork``: the new run, progress from the fork stage on, its summary; the exit code."""
    from loopcraft.engine.fork import fork_run
    from loopcraft.headless import ProgressPrinter, _finish, _gates

    async with await Engine.open(root, config) as engine:
        out = sys.stderr if as_json else sys.stdout
        engine.bus.subscribe(ProgressPrinter(out))
        _gates(engine, gates, out)
        new_id, reused = await fork_run(engine, run_id, stage, model=model, inputs=inputs)
        print(f"run {new_id} forked from {run_id} at {stage} ({reused} step(s) reused)", file=out, flush=True)
        return await _finish(engine, await engine.wait(new_id), as_json)


async def diff(root: Path, config: Config, run_a: str, run_b: str, *, as_json: bool) -> None:
    from loopcraft.engine.fork import diff_lines, diff_runs

    async with await Engine.open(root, config) as engine:
        result = await diff_runs(engine, run_a, run_b)
    if as_json:
        _dump(result)
        return
    print("\n".join(diff_lines(result)))


async def evaluate(
    root: Path,
    config: Config,
    workflow: str,
    cases_file: Path,
    *,
    repeat: int,
    concurrency: int,
    model: str | None,
    baseline: str | None,
    as_json: bool,
) -> int:
    """``loopcraft eval``: the report table (or JSON); exit 1 when a regression is flagged."""
    from loopcraft.engine.evals import evals_dir, read_cases, run_eval, table_lines

    cases = read_cases(cases_file)
    async with await Engine.open(root, config) as engine:
        report = await run_eval(
            engine, workflow, cases, repeat=repeat, concurrency=concurrency, model=model, baseline=baseline
        )
    if as_json:
        _dump(report)
    else:
        print(f"eval {report['id']}: {workflow}, {len(cases)} case(s) × {repeat}")
        print("\n".join(table_lines(report)))
        print(f"report: {evals_dir(root) / report['id'] / 'report.md'}")
        for flag in report["regressions"]:
            print(f"regression: {flag['case']}: {flag['reason']}", file=sys.stderr)
    return 1 if report["regressions"] else 0


async def replay(root: Path, config: Config, run_id: str, *, as_json: bool) -> int:
    """``loopcraft replay``: 0 when the replay matches the recording, 1 naming the divergent stage."""
    from loopcraft.engine.replay import divergence_dict, replay_run
    from loopcraft.headless import ProgressPrinter, summary_lines

    async with await Engine.open(root, config) as engine:
        if not as_json:
            engine.bus.subscribe(ProgressPrinter(sys.stdout))
        new_id, divergence = await replay_run(engine, run_id)
        info = await engine.get_run(new_id)
    if as_json:
        _dump({"source": run_id, "divergence": divergence_dict(divergence), **info.to_dict()})
    else:
        print("\n".join(summary_lines(info)))
        if divergence is None:
            print(f"replay of {run_id} matches the recording")
        else:
            print(
                f"replay of {run_id} diverged at stage {divergence.stage}: {divergence.reason}",
                file=sys.stderr,
            )
    return 0 if divergence is None else 1
