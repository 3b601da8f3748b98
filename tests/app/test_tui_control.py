"""Run control from the TUI against the real engine (scripted model, real SQLite journal):
``/workflow pause | resume [--message] | interrupt | kill``, typing while attached (steer
and Alt+Enter follow-up), and the prompts pane answering select and input gates. Every
test checks what the journal says, not just what the screen shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from loopcraft.engine.names import short_id
from loopcraft.tui.chat import UserMessage
from loopcraft.tui.panes.prompts import PromptCard
from tests.app.tui_support import add_workflow, chat_texts, make_app, scripted, wait_for

SLOW = """
from loopcraft import Context, workflow

@workflow(description="one slow streaming stage")
async def slow(ctx: Context) -> str:
    result = await ctx.task("writer", prompt="Write something long.", model="scripted/tui-ctl-slow")
    return result.text
"""

GATES = """
from loopcraft import Context, workflow

@workflow(description="a select gate and an input gate")
async def gates(ctx: Context) -> str:
    size = await ctx.ui.select("Which size?", ["small", "large"])
    name = await ctx.ui.input("Name it:")
    return f"{size}:{name}"
"""


def _said(app: Any, text: str) -> bool:
    return any(text in line for line in chat_texts(app))


def _slow_model(pace: float) -> None:
    long_turn = {"text": "word " * 200, "pace": pace}  # 250 chunks: 5 s of streaming at 0.02
    scripted("tui-ctl-slow", [long_turn, {"text": "second turn"}, {"text": "third turn"}], chunk_size=4)


async def _journal_status(app: Any, run_id: str) -> str:
    return (await app.workflows.eng.get_run(run_id)).status


async def _wait_status(pilot: Any, app: Any, run_id: str, *wanted: str, timeout: float = 15) -> None:
    seen: list[str] = []
    for _ in range(int(timeout / 0.05)):
        seen.append(await _journal_status(app, run_id))
        if seen[-1] in wanted:
            return
        await pilot.pause(0.05)
    raise AssertionError(f"run {run_id} never reached {wanted}; last statuses {seen[-3:]}")


async def _start(app: Any, pilot: Any, name: str) -> str:
    controller = await app.open_workflows()
    await pilot.press(*f"/workflow run {name}", "enter")
    run_id = await wait_for(pilot, lambda: controller.selected)
    await wait_for(
        pilot, lambda: any(n.status == "running" for n in controller.graphs[run_id].nodes.values())
    )
    return run_id


@asynccontextmanager
async def _slow_run(root: Path, pace: float = 0.02) -> AsyncIterator[tuple[Any, Any, str]]:
    """The app with the ``slow`` workflow started and its stage streaming: (app, pilot, run id)."""
    _slow_model(pace)
    add_workflow(root, "slow", SLOW)
    app = make_app(root, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        yield app, pilot, await _start(app, pilot, "slow")


async def _armed(pilot: Any, app: Any, card: PromptCard) -> None:
    """Wait until ``card`` takes keys: its answer widget has the focus and the grace period is over."""
    await wait_for(pilot, lambda: app.focused is not None and card in app.focused.ancestors_with_self)
    await wait_for(pilot, card._ready)


async def _user_messages(app: Any, run_id: str, stage: str) -> list[str]:
    entries = await app.workflows.eng.stage_transcript(run_id, stage)
    return [
        e["message"]["content"]
        for e in entries
        if e.get("type") == "message" and e["message"]["role"] == "user"
    ]


async def test_pause_then_resume_with_a_message(git_repo: Path) -> None:
    async with _slow_run(git_repo) as (app, pilot, run_id):
        assert app.workflows.runs_pane.table.get_row(run_id)[0].strip() == short_id(
            run_id
        )  # its short handle

        await pilot.press(*"/workflow pause", "enter")
        await _wait_status(pilot, app, run_id, "paused")
        assert _said(app, f"pausing run {short_id(run_id)}")
        await wait_for(pilot, lambda: app.workflows.runs_pane.runs[run_id].status == "paused")

        await pilot.press(*"/workflow resume --message 'add a title'", "enter")
        await _wait_status(pilot, app, run_id, "completed")
        assert _said(app, f"resuming run {short_id(run_id)}")
        assert "add a title" in await _user_messages(app, run_id, "writer")  # the message reached the stage
        assert (await app.workflows.eng.get_run(run_id)).output == "second turn"
        await app.run_command("/workflow resume")
        assert "already completed" in chat_texts(app)[-1]


async def test_interrupt_resume_and_kill(git_repo: Path) -> None:
    async with _slow_run(git_repo) as (app, pilot, run_id):

        def writer_status() -> str:  # the pane's live model (select() rebuilds it from the journal)
            return next(n.status for n in app.workflows.graphs[run_id].nodes.values() if n.name == "writer")

        await app.submit(f"/workflow interrupt {run_id[:15]}")  # what Enter does; a unique prefix is enough
        await wait_for(pilot, lambda: _said(app, f"interrupting run {short_id(run_id)}"))
        await wait_for(pilot, lambda: writer_status() == "paused", timeout=10)
        steps = (await app.workflows.eng.graph(run_id)).walk()
        assert [n.status for n in steps if n.name == "writer"] == ["paused"]  # the journal agrees

        await pilot.press(*"/workflow resume", "enter")
        await wait_for(pilot, lambda: writer_status() == "running", timeout=10)

        await pilot.press(*"/workflow kill", "enter")
        await _wait_status(pilot, app, run_id, "killed")
        await wait_for(pilot, lambda: _said(app, f"killed run {short_id(run_id)}"), timeout=10)
        await wait_for(pilot, lambda: app.workflows.runs_pane.runs[run_id].status == "killed")

        await app.run_command("/workflow pause")
        assert f"cannot pause run {run_id}" in chat_texts(app)[-1]  # the engine's own error, inline
        await app.run_command("/workflow resume")
        await wait_for(pilot, lambda: "killed runs cannot be resumed" in chat_texts(app)[-1])


async def test_typing_while_attached_steers_and_alt_enter_follows_up(git_repo: Path) -> None:
    # the steer must land while the first turn streams: 12.5 s leaves room on a loaded machine
    async with _slow_run(git_repo, pace=0.05) as (app, pilot, run_id):
        await pilot.press(*"/workflow attach", "enter")  # the selected run's live stage
        await wait_for(pilot, lambda: app.workflows.attached is not None)
        pane = app.workflows.transcript_pane
        await pilot.press(*"focus on tests", "enter")
        await wait_for(
            pilot, lambda: any(getattr(b, "text", "") == "(steer) focus on tests" for b in pane.view.blocks())
        )
        app.input.value = "then summarise"
        app.input.action_queue()
        await wait_for(
            pilot,
            lambda: any(getattr(b, "text", "") == "(follow-up) then summarise" for b in pane.view.blocks()),
        )
        assert not [
            b for b in app.chat_view.blocks() if isinstance(b, UserMessage)
        ]  # nothing went to the chat
        await _wait_status(pilot, app, run_id, "completed", timeout=40)

        users = await _user_messages(app, run_id, "writer")
        assert "focus on tests" in users and "then summarise" in users  # both reached the stage
        await wait_for(pilot, lambda: "second turn" in [getattr(b, "text", "") for b in pane.view.blocks()])


async def test_prompts_pane_answers_select_and_input_from_the_keyboard(git_repo: Path) -> None:
    add_workflow(git_repo, "gates", GATES)
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        await pilot.press(*"/workflow run gates", "enter")
        card = await wait_for(pilot, lambda: app.query(PromptCard) and app.query(PromptCard)[0])
        run_id = card.prompt.run_id
        assert card.prompt.kind == "select" and app.status.info.pending_prompts == 1
        await pilot.press("f4")
        await _armed(pilot, app, card)  # focused and past the grace period
        await pilot.press("down", "enter")
        card = await wait_for(
            pilot,
            lambda: (
                [c for c in app.query(PromptCard) if c.prompt.kind == "input"] and app.query(PromptCard)[0]
            ),
        )
        await pilot.press("f4")
        await _armed(pilot, app, card)
        await pilot.press(*"widget", "enter")
        await _wait_status(pilot, app, run_id, "completed")
        assert (await controller.eng.get_run(run_id)).output == "large:widget"
        assert not await controller.eng.prompts(run_id)
        await wait_for(pilot, lambda: app.status.info.pending_prompts == 0)
