"""The offline demo is a real demo (issue 10, item 3): on the built-in demo model — its own
script from the package, with its pace, nothing registered or faked — the chat agent is asked
in plain words to run the demo workflow and does it through its ``workflow`` tool, waits for the
gate and says so; an exhausted script (in the chat and in a steered stage) says the offline model
has no more answers and how to configure a real one."""

from __future__ import annotations

import time
from pathlib import Path

from loopcraft.models.scripted import EXHAUSTED_MARK, load_script, register_script, unregister_script
from loopcraft.paths import PACKAGE_DIR
from loopcraft.tui.chat import AssistantMessage, PermissionPrompt, ToolBlock
from tests.app.tui_support import make_app, wait_for

SENTENCE = "run the demo workflow and tell me when it needs me"


async def _allow(pilot, app) -> None:
    prompt = await wait_for(pilot, lambda: app.query(PermissionPrompt) and app.query(PermissionPrompt)[0])
    await wait_for(pilot, lambda: app.focused is prompt)
    prompt.shown_at = time.monotonic() - 1  # past its grace period
    await pilot.press("a")
    await wait_for(pilot, lambda: prompt.answer == "allow_once")


def _answers(app) -> list[str]:
    return [b.text for b in app.chat_view.blocks() if isinstance(b, AssistantMessage)]


async def test_asking_the_demo_model_to_run_the_demo_reaches_the_gate(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        await pilot.press(*SENTENCE, "enter")
        await _allow(pilot, app)  # the workflow tool starts a run: the chat asks first
        await app.chat.wait()
        await wait_for(pilot, lambda: controller.prompts_pane.pending, timeout=60)
        result = await app.chat.wait()
        assert result is not None and result.status == "completed"
        tool = next(b for b in app.chat_view.blocks() if isinstance(b, ToolBlock))
        assert tool.tool_name == "workflow" and tool.status == "ok"
        run_id = controller.selected
        assert run_id is not None and (await controller.eng.get_run(run_id)).workflow == "demo"
        assert (await controller.eng.get_run(run_id)).status == "awaiting_input"
        pending = list(controller.prompts_pane.pending.values())
        assert pending[0].run_id == run_id and "Apply the demo plan" in pending[0].question
        await pilot.pause(0.3)
        assert "waiting for you at its approval gate" in _answers(app)[-1]
        # the tool's result (which the model read) named the gate it is waiting on
        tool_output = str(tool._output.render())
        assert "is waiting for the user" in tool_output and "Apply the demo plan" in tool_output


async def test_an_exhausted_chat_script_says_how_to_configure_a_real_model(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"hello", "enter")
        await wait_for(pilot, lambda: app.chat.agent is not None)
        await app.chat.wait()
        await pilot.press(*"and what now?", "enter")
        await wait_for(pilot, lambda: app.chat.running)
        await app.chat.wait()
        await pilot.pause(0.3)
        last = _answers(app)[-1]
        assert EXHAUSTED_MARK in last and "(script exhausted)" not in last
        assert "--model anthropic/claude-sonnet-4-5" in last and "config.toml" in last


SLOW_STAGE = """
from loopcraft import Context, workflow

@workflow(description="one stage on the demo model")
async def one(ctx: Context) -> str:
    result = await ctx.task("writer", prompt="Say something.", model="scripted/demo")
    return result.text
"""


async def test_a_steered_demo_stage_past_its_script_says_so_clearly(git_repo: Path) -> None:
    demo = load_script(PACKAGE_DIR / "models" / "scripts" / "demo.yaml")
    register_script("demo", demo.model_copy(update={"pace": 0.05, "chunk_size": 2}))  # ~5 s of text
    try:
        folder = git_repo / ".loopcraft" / "workflows"
        folder.mkdir(parents=True)
        (folder / "one.py").write_text(SLOW_STAGE)
        app = make_app(git_repo, "scripted/demo")
        async with app.run_test(size=(160, 45)) as pilot:
            controller = await app.open_workflows()
            await pilot.press(*"/workflow run one", "enter")
            run_id = await wait_for(pilot, lambda: controller.selected)
            await wait_for(
                pilot, lambda: any(n.status == "running" for n in controller.graphs[run_id].nodes.values())
            )
            await pilot.press(*"/workflow attach", "enter")
            await wait_for(pilot, lambda: controller.attached is not None)
            await pilot.press(*"say more please", "enter")
            run = await controller.eng.wait(run_id)
            assert run.status == "completed"
            assert EXHAUSTED_MARK in str(run.output) and "--model anthropic/claude-sonnet-4-5" in str(
                run.output
            )
    finally:
        unregister_script("demo")


async def test_refusing_the_workflow_tool_gets_a_reply_that_says_no_run_started(git_repo: Path) -> None:
    """Review-10 F4: Esc on the permission card, and the demo model still said the run waited
    (press F4); the refusal read ``rejected workflow workflow``."""
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        await pilot.press(*SENTENCE, "enter")
        prompt = await wait_for(pilot, lambda: app.query(PermissionPrompt) and app.query(PermissionPrompt)[0])
        await wait_for(pilot, lambda: app.focused is prompt)
        prompt.shown_at = time.monotonic() - 1
        await pilot.press("escape")
        await wait_for(pilot, lambda: prompt.answer == "reject")
        await app.chat.wait()
        await pilot.pause(0.3)
        last = _answers(app)[-1]
        assert "refused, so no run started" in last and "press a" in last, last
        assert "waiting for you" not in last and "F4" not in last
        assert not controller.runs_pane.runs
        tool = next(b for b in app.chat_view.blocks() if isinstance(b, ToolBlock))
        assert "workflow workflow" not in str(tool._output.render())
