"""A run that ends while a gate waits (review-10 F6): the gate reads cancelled (killed after a
kill) in the app's graph and in ``show``, its time stops, and ``show --stage`` says the run ended
before it was answered; a parallel branch given as a plain coroutine that ran stages is not
shown as a skipped branch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopcraft.engine.graph import display_status
from loopcraft.tui.panes.prompts import PromptCard
from tests.app.tui_support import make_app, wait_for

DOOMED = """
from loopcraft import Context, workflow

@workflow(description="a gate beside a branch that fails")
async def doomed(ctx: Context) -> str:
    async def slow_fail() -> None:
        await ctx.task("slow", "say ok")
        raise RuntimeError("boom")

    await ctx.parallel(ctx.ui.confirm("Gate in a doomed run?"), slow_fail())
    return "never"
"""

GATE = """
from loopcraft import Context, workflow

@workflow(description="one confirm gate")
async def gate(ctx: Context) -> str:
    ok = await ctx.ui.confirm("Apply the plan?")
    return "applied" if ok else "skipped"
"""


def _write(root: Path, name: str, text: str) -> None:
    folder = root / ".loopcraft" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(text)


def _labels(app: Any) -> list[str]:
    pane = app.workflows.graph_pane
    return [str(node.label) for node in pane._tree_nodes.values()]


async def test_a_failed_runs_waiting_gate_reads_cancelled_everywhere(git_repo: Path, capsys: Any) -> None:
    from loopcraft.headless import show_run

    _write(git_repo, "doomed", DOOMED)
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        run_id = await controller.run("doomed", {})
        await wait_for(pilot, lambda: controller.runs_pane.runs[run_id].status == "failed", 20)
        model = controller.graphs[run_id]
        gate = next(n for n in model.nodes.values() if n.kind == "prompt")
        await wait_for(pilot, lambda: gate.status == "cancelled")
        frozen = gate.live_elapsed()
        await pilot.pause(1.2)
        assert gate.live_elapsed() == frozen  # its timer stopped
        await wait_for(pilot, lambda: any("confirm cancelled" in label for label in _labels(app)))
        assert not any("skipped" in label for label in _labels(app)), _labels(app)
        assert not app.query(PromptCard)
        await controller.select(run_id)  # reloaded from the journal: the same
        gate = next(n for n in controller.graphs[run_id].nodes.values() if n.kind == "prompt")
        assert gate.status == "cancelled" and gate.started is None
        assert not any(n.status == "skipped" for n in controller.graphs[run_id].nodes.values())
        _, graph = await controller.eng.live_view(run_id)
        assert [n.status for n in graph.walk() if n.kind == "prompt"] == ["cancelled"]
        assert not [n for n in graph.walk() if n.status == "skipped"]
    capsys.readouterr()
    assert await show_run(git_repo, app.config, run_id, stage="confirm", as_json=False) == 0
    out = capsys.readouterr().out
    assert "the run ended, cancelled, before it was answered" in out and "── cancelled" in out, out
    assert await show_run(git_repo, app.config, run_id, stage=None, as_json=False) == 0
    out = capsys.readouterr().out
    assert "awaiting_input" not in out and "skipped" not in out, out


async def test_a_killed_runs_gate_reads_killed_in_the_graph(git_repo: Path) -> None:
    _write(git_repo, "gate", GATE)
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        run_id = await controller.run("gate", {})
        await wait_for(pilot, lambda: app.query(PromptCard))
        await controller.kill(run_id)
        gate = next(n for n in controller.graphs[run_id].nodes.values() if n.kind == "prompt")
        await wait_for(pilot, lambda: display_status(gate.status, gate.info) == "killed")
        _, graph = await controller.eng.live_view(run_id)
        assert [display_status(n.status, n.info) for n in graph.walk() if n.kind == "prompt"] == ["killed"]
