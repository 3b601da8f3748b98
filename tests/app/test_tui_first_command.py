"""The first command is never refused (issue 10, item 2): a ``/workflow`` command typed before
the engine has opened waits for it, said as pending, then runs; the first screen shows the side
panes with a useful empty state."""

from __future__ import annotations

from pathlib import Path

from tests.app.screen_support import screen_text
from tests.app.tui_support import chat_texts, make_app, wait_for


async def test_a_workflow_command_before_the_engine_opens_waits_then_runs(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")  # background=False: the engine opens when we say
    async with app.run_test(size=(160, 45)) as pilot:
        assert app.query_one("#side").has_class("visible")
        assert "no runs yet — try /workflow run demo" in screen_text(app)
        await pilot.press(*"/workflow run demo", "enter")
        await wait_for(pilot, lambda: any("waiting for the workflow engine" in t for t in chat_texts(app)))
        assert app.workflows is None
        controller = await app.open_workflows()
        await wait_for(pilot, lambda: any("started demo as run" in t for t in chat_texts(app)))
        assert not any("not open" in t for t in chat_texts(app))
        run_id = await wait_for(pilot, lambda: controller.selected)
        await wait_for(pilot, lambda: controller.prompts_pane.pending)  # it reached the gate
        assert (await controller.eng.get_run(run_id)).status == "awaiting_input"
        assert "no runs yet" not in screen_text(app)


async def test_type_ahead_at_launch_lands_in_the_prompt_and_its_enter_sends(git_repo: Path) -> None:
    """Review-10 F3: keys typed before the first frame went to the chat view (the first focusable
    widget) and were lost, and their Enter, read in line mode as Ctrl+J, made a new line."""
    from loopcraft.tui.prompt_input import PromptInput

    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        assert isinstance(app.focused, PromptInput)  # focused from the first frame, not the chat
        await wait_for(pilot, lambda: app.first_paint_at is not None)
        app.first_paint_at = None  # as if the frame were not painted yet
        await pilot.press(*"/workflow run demo", "ctrl+j")
        await wait_for(pilot, lambda: any("waiting for the workflow engine" in t for t in chat_texts(app)))
        assert app.input.value == ""
        controller = await app.open_workflows()
        await wait_for(pilot, lambda: any("started demo as run" in t for t in chat_texts(app)))
        assert controller.selected is not None
        app.first_paint_at = 0.0  # long after the first frame: Ctrl+J is a new line again
        assert not app._typing_ahead()
        await pilot.press("a", "ctrl+j", "b")
        assert app.input.value == "a\nb"
