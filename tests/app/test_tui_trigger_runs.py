"""The runs pane marks a run a trigger started with the trigger's name (``⏰ nightly``), read
from the trigger inbox; a run started by hand has no mark."""

from __future__ import annotations

from pathlib import Path

from loopcraft.engine.service import new_run_id
from loopcraft.triggers.inbox import Inbox
from loopcraft.tui.panes.runs import TRIGGER_MARK
from tests.app.tui_support import add_workflow, make_app, wait_for

GATE = """
from loopcraft import Context, workflow

@workflow(description="one confirm gate")
async def gate(ctx: Context) -> str:
    ok = await ctx.ui.confirm("Apply the plan?")
    return "applied" if ok else "skipped"
"""


async def test_a_triggered_run_shows_its_trigger_in_the_runs_pane(git_repo: Path) -> None:
    add_workflow(git_repo, "gate", GATE)
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        by_hand = await controller.run("gate", {})
        inbox = Inbox(controller.eng.journal.path)  # what `loopcraft serve` records, then starts
        event_id, _ = inbox.record("schedule.nightly", {}, source="cron")
        triggered = new_run_id()
        assert inbox.reserve(event_id, "nightly", "gate", triggered)
        inbox.close()
        await controller.eng.start("gate", {}, run_id=triggered)
        pane = controller.runs_pane

        def name_cell(run_id: str) -> str:
            return str(pane.table.get_row(run_id)[1]) if run_id in pane.table.rows else ""

        await wait_for(pilot, lambda: f"{TRIGGER_MARK} nightly" in name_cell(triggered))
        assert name_cell(triggered).startswith("gate ")
        assert name_cell(by_hand).strip() == "gate"
        for run_id in (by_hand, triggered):
            await controller.eng.kill(run_id)
