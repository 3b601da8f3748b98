"""Gates follow their run (issue 10, item 1): a killed run's prompts leave the pane, the status
bar count and the engine's pending list; an answer goes to the selected run's prompt, never a
guessed one when several runs wait; every answer is confirmed in the chat."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from loopcraft.engine.names import short_id
from loopcraft.tui.panes.prompts import PromptCard
from loopcraft.tui.workflows import FOLLOW_S
from tests.app.tui_support import add_workflow, chat_texts, gated_run, make_app, run_to_gate, wait_for

GATE = """
from loopcraft import Context, workflow

@workflow(description="one confirm gate")
async def gate(ctx: Context) -> str:
    ok = await ctx.ui.confirm("Apply the plan?")
    return "applied" if ok else "skipped"
"""


def _said(app: Any, text: str) -> bool:
    return any(text in line for line in chat_texts(app))


async def _two_gated_runs(app: Any, pilot: Any) -> tuple[Any, str, str]:
    controller, first = await gated_run(app, pilot, "gate", GATE)
    second = await run_to_gate(pilot, controller, "gate", cards=2)
    return controller, first, second


async def test_a_killed_runs_prompt_leaves_everywhere(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller, first, second = await _two_gated_runs(app, pilot)
        await wait_for(pilot, lambda: app.status.info.pending_prompts == 2)  # counted after the cards
        await pilot.press(*f"/workflow kill {first}", "enter")
        await wait_for(pilot, lambda: len(app.query(PromptCard)) == 1)
        assert [c.prompt.run_id for c in app.query(PromptCard)] == [second]
        await wait_for(pilot, lambda: app.status.info.pending_prompts == 1)
        assert [p.run_id for p in await controller.eng.prompts()] == [second]


async def test_answer_goes_to_the_selected_run_and_is_confirmed(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller, first, second = await _two_gated_runs(app, pilot)
        await controller.select(first)
        await pilot.press(*"/workflow answer yes", "enter")
        await wait_for(
            pilot, lambda: _said(app, f"answered 'Apply the plan?' → yes · run gate {short_id(first)}")
        )
        await wait_for(pilot, lambda: [c.prompt.run_id for c in app.query(PromptCard)] == [second])
        run = await controller.eng.wait(first)
        assert run.output == "applied"
        await pilot.press(*"/workflow answer no", "enter")  # the only pending one now
        await wait_for(pilot, lambda: _said(app, f"→ no · run gate {short_id(second)}"))
        assert (await controller.eng.wait(second)).output == "skipped"


async def test_several_runs_waiting_and_none_chosen_asks_which(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller, first, second = await _two_gated_runs(app, pilot)
        controller.selected = None
        await pilot.press(*"/workflow answer yes", "enter")
        await wait_for(pilot, lambda: _said(app, "prompts are pending in several runs"))
        line = next(t for t in chat_texts(app) if "several runs" in t)
        rows = line.splitlines()
        assert "F2" in rows[0] and "/workflow answer --prompt ID" in rows[0]
        assert len(rows) == 3 and first not in line  # one short line per prompt, no full run ids
        for run_id, row in zip((first, second), rows[1:], strict=True):
            assert f"run {short_id(run_id)} · prompt " in row and row.endswith("Apply the plan?")
        assert len(await controller.eng.prompts()) == 2  # nothing was answered
        app.screen.set_focus(None)
        for _ in range(3):  # F4 lists them once, not on every press
            await pilot.press("f4")
            await pilot.pause(0.1)
        await wait_for(pilot, lambda: sum("several runs" in t for t in chat_texts(app)) == 2)
        await pilot.pause(0.3)
        assert sum("several runs" in t for t in chat_texts(app)) == 2


async def test_a_run_killed_by_another_process_leaves_the_app(git_repo: Path) -> None:
    """Review-10 item 1: a run killed from the CLI (another engine on the same journal) while the
    app shows it leaves its prompt card and the status bar count, and reads ``killed``."""
    from loopcraft.engine.service import Engine

    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        add_workflow(app.root, "gate", GATE)
        other = await Engine.open(app.root, app.config)  # the CLI's engine: another owner
        try:
            run_id = await other.start("gate", {})
            for _ in range(200):
                if await other.prompts(run_id):
                    break
                await pilot.pause(0.05)
            controller = await app.open_workflows()
            await wait_for(pilot, lambda: len(app.query(PromptCard)) == 1)
            assert app.status.info.pending_prompts == 1
            killed = await other.kill(run_id)
            assert killed.status == "killed"
            await wait_for(pilot, lambda: not app.query(PromptCard))
            await wait_for(pilot, lambda: app.status.info.pending_prompts == 0)
            await wait_for(pilot, lambda: controller.runs_pane.runs[run_id].status == "killed")
        finally:
            await other.close()


async def test_quitting_at_a_gate_leaves_the_run_waiting_not_crashed(git_repo: Path) -> None:
    """Review-10 defect D: the app quit while its run waited at a gate; the run read ``crashed``.
    It now reads needs_human with what to do, and resumes after an answer."""
    from loopcraft.engine.service import Engine

    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        _, run_id = await gated_run(app, pilot, "gate", GATE)
    async with await Engine.open(git_repo, app.config) as engine:
        run = next(r for r in await engine.runs() if r.id == run_id)
        assert run.status == "needs_human", run.status
        assert run.error is not None and "loopcraft answer" in run.error
        await engine.answer(run_id, None, True)
        await engine.resume(run_id)
        assert (await engine.wait(run_id)).output == "applied"


async def test_a_runs_end_is_announced_once(git_repo: Path) -> None:
    """Review-10 item 6: the chat says when a run ends, with its handle, status and reason."""
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller, first, second = await _two_gated_runs(app, pilot)
        await controller.answer(True, next(iter(controller.prompts_pane.pending)))
        await wait_for(pilot, lambda: _said(app, f"run gate {short_id(first)} completed"))
        await pilot.press(*f"/workflow kill {second}", "enter")
        await wait_for(pilot, lambda: _said(app, f"run gate {short_id(second)} killed: killed by the user"))
        await pilot.pause(FOLLOW_S * 1.5)  # the journal re-read must not say it again
        said = [t for t in chat_texts(app) if t.startswith("run gate ")]
        ends = [t for t in said if "needs input" not in t]
        assert len(ends) == 2, said
        # issue 16: each run's gate is announced once too (the lifecycle notices share the once rule)
        assert sorted(t for t in said if "needs input" in t) == sorted(
            f"run gate {short_id(r)} needs input: F4 answers it" for r in (first, second)
        )


async def test_outside_git_the_chat_says_what_will_not_work(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    app = make_app(folder, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: _said(app, "is not a git repository"))
        assert sum("is not a git repository" in t for t in chat_texts(app)) == 1
        assert _said(app, "worktrees") and _said(app, "merges")


async def test_quitting_at_a_gate_keeps_what_the_run_spent(git_repo: Path) -> None:
    """Review-10 leftover: a run left needs_human by quitting the app at its gate read 0 tokens in
    ``show``; its row now carries what its finished stages spent."""
    from loopcraft.engine.service import Engine

    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        run_id = await run_to_gate(pilot, controller, "demo", timeout=30)
    async with await Engine.open(git_repo, app.config) as engine:
        info, _ = await engine.live_view(run_id)
        assert info.status == "needs_human", info.status
        assert info.usage.total_tokens > 0


async def test_f4_with_several_runs_waiting_arms_no_card(git_repo: Path) -> None:
    """Review-10 F1: F4 said "pick one", then ``y`` answered the first card. Now F4 focuses the
    pane with no card armed; y / n answer nothing until a card is picked (Tab)."""
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller, _first, _second = await _two_gated_runs(app, pilot)
        await pilot.pause(0.6)  # past the cards' grace time
        await pilot.press("f4")
        await wait_for(pilot, lambda: _said(app, "prompts are pending in several runs"))
        assert not isinstance(app.focused, PromptCard)
        await pilot.press("y")
        await wait_for(pilot, lambda: _said(app, "nothing answered: pick a prompt first"))
        await pilot.pause(0.3)
        assert len(await controller.eng.prompts()) == 2
        assert not _said(app, "answered 'Apply the plan?'")
        await pilot.press("tab")
        assert isinstance(app.focused, PromptCard)
        picked = app.focused.prompt.run_id
        await pilot.press("y")
        await wait_for(pilot, lambda: _said(app, f"→ yes · run gate {short_id(picked)}"))


async def test_the_followed_newest_run_is_not_a_choice(git_repo: Path) -> None:
    """Review-10 F2: the graph follows the newest run; a bare answer went to it without asking.
    Only an explicit pick (the runs pane's Enter, attach, status RUN) counts."""
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller, first, second = await _two_gated_runs(app, pilot)
        assert controller.selected == second and controller.picked is None
        await pilot.press(*"/workflow answer yes", "enter")
        await wait_for(pilot, lambda: _said(app, "prompts are pending in several runs"))
        assert len(await controller.eng.prompts()) == 2
        await pilot.press(*f"/workflow status {short_id(first)}", "enter")
        await wait_for(pilot, lambda: controller.picked == first)
        await pilot.press(*"/workflow answer yes", "enter")
        await wait_for(pilot, lambda: _said(app, f"→ yes · run gate {short_id(first)}"))


async def test_a_crashed_runs_only_prompt_is_not_answered_unasked(git_repo: Path) -> None:
    """Review-10 F2 case B: the only pending prompt was in a crashed run; a bare answer took it."""
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller, first, second = await _two_gated_runs(app, pilot)
        await controller.answer(
            True, next(p for p in controller.prompts_pane.pending.values() if p.run_id == second).prompt_id
        )
        controller._follow.stop()  # the journal says awaiting_input: keep the crashed row shown
        controller.runs_pane.update_run(
            dataclasses.replace(controller.runs_pane.runs[first], status="crashed")
        )
        await pilot.press(*"/workflow answer yes", "enter")
        await wait_for(pilot, lambda: _said(app, "pick one"))
        assert len(await controller.eng.prompts(first)) == 1


async def test_a_second_answer_reads_like_the_clis(git_repo: Path) -> None:
    """Review-10 F11: the app said ``no pending prompt 'ID'`` where the CLI says why."""
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller, _first, _second = await _two_gated_runs(app, pilot)
        prompt_id = next(iter(controller.prompts_pane.pending))
        await controller.answer(True, prompt_id)
        await pilot.press(*f"/workflow answer --prompt {prompt_id} yes", "enter")
        await wait_for(
            pilot, lambda: _said(app, f"prompt {prompt_id} is not pending: it was already answered")
        )


async def test_answering_an_orphaned_run_says_how_to_continue(git_repo: Path) -> None:
    """Review-10 F7: a needs_human run (its app closed at the gate) answered in the app stayed
    stuck with no hint; the confirmation names ``/workflow resume HANDLE``."""
    from loopcraft.engine.service import Engine

    first = make_app(git_repo, "scripted/demo")
    async with first.run_test(size=(160, 45)) as pilot:
        _, run_id = await gated_run(first, pilot, "gate", GATE)
    async with await Engine.open(git_repo, first.config) as engine:
        assert (await engine.get_run(run_id)).status == "needs_human"
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        await app.open_workflows()
        await wait_for(pilot, lambda: len(app.query(PromptCard)) == 1)
        await pilot.press(*"/workflow answer yes", "enter")
        await wait_for(pilot, lambda: _said(app, f"continue it with /workflow resume {short_id(run_id)}"))


async def test_answering_a_run_with_nothing_pending_says_so(git_repo: Path) -> None:
    """Review-10 F11: ``loopcraft answer RUN yes`` with nothing pending said ``has 0 pending
    prompts; name one by id``; naming one cannot help."""
    import pytest

    from loopcraft.engine.service import Engine
    from loopcraft.errors import NotFoundError

    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        _, run_id = await gated_run(app, pilot, "gate", GATE)
    async with await Engine.open(git_repo, app.config) as engine:
        await engine.answer(run_id, None, True)
        with pytest.raises(NotFoundError) as raised:
            await engine.answer(run_id, None, True)
        assert "has no pending prompt: nothing to answer" in str(raised.value)
        assert "name one by id" not in str(raised.value)
