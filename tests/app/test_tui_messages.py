"""Small app messages from review 10: an unknown workflow hints ``/workflow reload`` (F13);
attaching to a finished stage does not promise steering (F16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopcraft.engine.names import short_id
from tests.app.tui_support import add_workflow, chat_texts, make_app, wait_for

ONE_TASK = """
from loopcraft import Context, workflow

@workflow(description="one task")
async def one(ctx: Context) -> str:
    await ctx.task("prepare", "say ok")
    return "done"
"""


def _said(app: Any, text: str) -> bool:
    return any(text in line for line in chat_texts(app))


async def test_an_unknown_workflow_hints_reload(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        await app.open_workflows()
        await pilot.press(*"/workflow run par_test", "enter")
        await wait_for(pilot, lambda: _said(app, "unknown workflow 'par_test'"))
        assert _said(app, "a workflow file added since? /workflow reload re-reads them")


async def test_attaching_to_a_finished_stage_does_not_promise_steering(git_repo: Path) -> None:
    add_workflow(git_repo, "one", ONE_TASK)
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        run_id = await controller.run("one", {})
        await controller.eng.wait(run_id)
        await wait_for(pilot, lambda: controller.runs_pane.runs[run_id].status == "completed")
        await pilot.press(*f"/workflow attach {short_id(run_id)} prepare", "enter")
        await wait_for(pilot, lambda: _said(app, "attached to one › prepare"))
        line = next(t for t in chat_texts(app) if "attached to" in t)
        assert "typing steers it" not in line and "completed" in line, line
