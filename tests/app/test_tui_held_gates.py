"""A gate of a ``needs_human`` run (stopped at the gate, no process executing it) shows since
when it waits, not a clock counting up in the app; answered and resumed, its clock goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopcraft.config import load_config
from loopcraft.engine.service import Engine
from tests.app.tui_support import add_workflow, make_app, wait_for

GATE = """
from loopcraft import Context, workflow

@workflow(description="one confirm gate")
async def gate(ctx: Context) -> str:
    ok = await ctx.ui.confirm("Apply the plan?")
    return "applied" if ok else "skipped"
"""


def _labels(app: Any) -> list[str]:
    return [str(node.label) for node in app.workflows.graph_pane._tree_nodes.values()]


async def test_a_needs_human_runs_gate_does_not_tick(git_repo: Path) -> None:
    add_workflow(git_repo, "gate", GATE)
    async with await Engine.open(git_repo, load_config(git_repo)) as headless:  # e.g. `loopcraft run` in CI
        headless.stop_at_gates = True
        info = await headless.run("gate", {})
    assert info.status == "needs_human", info.error
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        await controller.select(info.id)
        gate = next(n for n in controller.graphs[info.id].nodes.values() if n.kind == "prompt")
        assert gate.status == "awaiting_input" and gate.held
        frozen = gate.live_elapsed()
        await wait_for(pilot, lambda: any("since" in label for label in _labels(app)))
        shown = _labels(app)
        await pilot.pause(1.3)
        assert gate.live_elapsed() == frozen and _labels(app) == shown  # no clock counting up
        controller.graphs[info.id].hold(False)  # executed again (resumed): the clock goes on
        assert not gate.held and gate.live_elapsed() >= frozen and gate.started is not None
