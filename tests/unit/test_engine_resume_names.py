"""After a resume, every stage the new execution runs is named (a StageAdded event) before its
first status, so progress lines, the app's graph and its prompts pane show stage names, not step
keys such as ``root/0:parallel/1:task:br-1``: a stage in flight when its process stopped, parallel
branches stopped by a run budget, and a human gate the run stopped at."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from loopcraft import Context, workflow
from loopcraft.engine.events import EngineEvent, StageAdded, StageStatus
from loopcraft.engine.service import Engine
from loopcraft.headless import ProgressPrinter
from tests.control_fakes import SteppedRunner, open_control_engine, wait_for


@workflow(name="plan-gate-fan")
async def plan_gate_fan(ctx: Context) -> list[str]:
    await ctx.task("plan", prompt="p")
    await ctx.ui.confirm("Build it?")
    results = await ctx.parallel(*[ctx.spec(f"br-{i}", prompt="work") for i in range(3)])
    return [r.text for r in results]


def _record(engine: Engine) -> list[EngineEvent]:
    events: list[EngineEvent] = []
    engine.bus.subscribe(events.append)
    return events


def _assert_named(events: list[EngineEvent], expected: set[str]) -> None:
    """Each stage status came after its name; the progress lines say names, never step keys."""
    named: dict[str, str] = {}
    for event in events:
        if isinstance(event, StageAdded):
            named[event.key] = event.name
        elif isinstance(event, StageStatus):
            assert event.key in named, f"status {event.status!r} of unnamed stage {event.key}"
    out = io.StringIO()
    printer = ProgressPrinter(out)
    for event in events:
        printer(event)
    stage_lines = [line for line in out.getvalue().splitlines() if line.startswith("  ")]
    assert stage_lines and not [line for line in stage_lines if "root/" in line], out.getvalue()
    assert expected <= set(named.values())


async def test_stages_resumed_after_a_gate_a_budget_and_a_stopped_process_keep_their_names(
    git_repo: Path,
) -> None:
    engine = await open_control_engine(git_repo, SteppedRunner(default_steps=10))
    engine.stop_at_gates = True
    engine.register(plan_gate_fan)
    info = await engine.run("plan-gate-fan", {}, budget={"tokens": 1500})
    assert info.status == "needs_human", info.error

    await engine.answer(info.id, None, "y")
    events = _record(engine)  # the gate, resumed
    info = await engine.resume(info.id)
    assert info.status == "budget_exceeded", info.error  # 3 x 10 x 110 tokens > 1,500
    _assert_named(events, {"confirm", "br-0", "br-1", "br-2"})

    runner = SteppedRunner(default_steps=10, pace=0.05)
    engine.runner = runner
    resuming = asyncio.ensure_future(engine.resume(info.id, budget={"tokens": 100_000}))
    await wait_for(lambda: len(runner.model_calls) >= 3)
    await engine.close()  # the process stops mid-stage: its steps stay running, the lease is given up
    await asyncio.gather(resuming, return_exceptions=True)
    steps = await _statuses(git_repo, info.id)
    assert [steps[f"br-{i}"] for i in range(3)] == ["running"] * 3  # in flight when the process stopped

    engine = await open_control_engine(git_repo, SteppedRunner(default_steps=2))
    engine.register(plan_gate_fan)
    events = _record(engine)
    info = await engine.resume(info.id)
    assert info.status == "completed", info.error
    _assert_named(events, {"br-0", "br-1", "br-2"})
    await engine.close()


async def _statuses(root: Path, run_id: str) -> dict[str, str]:
    engine = await open_control_engine(root)
    try:
        return {r.name: r.status for r in await engine.journal.load_steps(run_id)}
    finally:
        await engine.close()
