"""Pilot tests of the workflow panes on the real engine and the demo workflow (scripted
model, real SQLite journal, real git repo): run, graph, prompts answered from the
keyboard, attach/detach, status, control commands, and the agent's workflow tool."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loopcraft.agent.tools.base import ToolContext
from loopcraft.engine.names import short_id
from loopcraft.tui.chat import Notice
from loopcraft.tui.panes.graph import GraphPane
from loopcraft.tui.panes.prompts import PromptCard
from tests.app.tui_support import DEMO_STAGES, chat_texts, make_app, wait_for

pytestmark = pytest.mark.usefixtures("fast_demo_model")  # tests/app/conftest.py


async def _start_demo(app, pilot) -> str:
    controller = await app.open_workflows()
    await pilot.press(*"/workflow run demo topic=docs", "enter")
    await wait_for(pilot, lambda: controller.selected)
    return controller.selected


async def test_demo_runs_shows_graph_and_waits_for_the_gate(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        run_id = await _start_demo(app, pilot)
        controller = app.workflows
        card = await wait_for(pilot, lambda: app.query(PromptCard) and app.query(PromptCard)[0])
        assert card.prompt.kind == "confirm" and "Apply the demo plan for docs?" in card.prompt.question
        assert app.status.info.pending_prompts == 1
        assert app.query_one("#side").has_class("visible")
        graph = controller.graphs[run_id]
        names = {n.name: n for n in graph.nodes.values()}
        assert set(DEMO_STAGES) <= set(names)
        assert graph.parent_of(names["synthesis"].key) == names["demo-review"].key
        assert {names["review-correctness"].key, names["review-maintainability"].key} <= graph.parallel_keys()
        assert names["scout"].status == "completed" and names["scout"].model == "scripted/demo"
        run = controller.runs_pane.runs[run_id]
        assert run.status == "awaiting_input"
        # answer from the keyboard: F4 focuses the prompt; 'y' inside the grace period is ignored
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.focused is card)
        card.shown_at = time.monotonic()  # as if it just appeared: a slow machine must not age it
        await pilot.press("y")
        await pilot.pause(0.1)
        assert app.status.info.pending_prompts == 1
        await pilot.pause(0.5)
        await pilot.press("y")
        await wait_for(pilot, lambda: controller.runs_pane.runs[run_id].status == "completed", timeout=20)
        assert app.status.info.pending_prompts == 0 and not app.query(PromptCard)
        tree = app.query_one(GraphPane).tree_widget
        labels = [str(node.label) for node in tree.root.children]
        assert any("scout" in label for label in labels)


async def test_attach_streams_transcript_and_detach_returns(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        run_id = await _start_demo(app, pilot)
        await wait_for(pilot, lambda: app.query(PromptCard))
        handle = run_id.rsplit("-", 1)[1]  # the run's short handle, as the runs pane shows it
        await pilot.press(*f"/workflow attach {handle} scout", "enter")
        pane = app.workflows.transcript_pane
        await wait_for(pilot, lambda: pane.has_class("visible"))
        texts = [getattr(w, "text", str(getattr(w, "title", ""))) for w in pane.view.blocks()]
        assert texts[0] == "Map the relevant context for docs."
        assert any("ls ." in t for t in texts) and any("Context map (demo)" in t for t in texts)
        assert app.input.has_class("attached")
        # typing while attached steers the stage (here it waits at the gate: the engine says so)
        await pilot.press(*"look at tests too", "enter")
        await pilot.pause(0.1)
        await pilot.press(*"/workflow detach", "enter")
        await wait_for(pilot, lambda: not pane.has_class("visible"))
        assert not app.input.has_class("attached")
        await app.run_command(f"/workflow attach {run_id} nosuchstage")
        assert "no single stage 'nosuchstage'" in chat_texts(app)[-1]
        await app.run_command("/workflow answer no")
        await wait_for(pilot, lambda: app.workflows.runs_pane.runs[run_id].status == "blocked", timeout=20)


async def test_status_list_reload_and_errors(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        await app.open_workflows()
        await app.run_command("/workflow status")
        assert chat_texts(app)[-1].startswith("no runs yet")
        await app.run_command("/workflow list")
        assert "demo: The offline demo" in chat_texts(app)[-1] and "[topic?]" in chat_texts(app)[-1]
        broken = git_repo / ".loopcraft" / "workflows"
        broken.mkdir(parents=True)
        (broken / "bad.py").write_text("this is not python (\n")
        await app.run_command("/workflow reload")
        assert "1 broken" in chat_texts(app)[-1]
        await app.run_command("/workflow run nosuch")
        assert "unknown workflow 'nosuch'" in chat_texts(app)[-1]
        await app.run_command("/workflow run demo bogus=1")
        assert chat_texts(app)[-1] and "bogus" in chat_texts(app)[-1]
        await app.run_command("/workflow pause")
        assert "no run selected" in chat_texts(app)[-1]
        await app.run_command("/workflow answer")
        assert chat_texts(app)[-1] == "no pending prompt"
        await app.run_command("/workflow status nosuchrun")
        assert "nosuchrun" in chat_texts(app)[-1]
        run_id = await _start_demo(app, pilot)
        await wait_for(pilot, lambda: app.query(PromptCard))
        await app.run_command(f"/workflow status {run_id[:10]}")
        assert "awaiting_input" in chat_texts(app)[-1] and "stages:" in chat_texts(app)[-1]
        await app.run_command("/workflow answer")  # bare: focuses the card and says the keys answer it
        assert (
            chat_texts(app)[-1].startswith("answering 'Apply the demo plan")
            and "y / n" in chat_texts(app)[-1]
        )
        await app.run_command("/workflow answer maybe")
        assert "answer yes or no" in chat_texts(app)[-1]
        for command, said in (
            ("pause", "pausing run"),
            ("interrupt", "interrupting run"),
            ("kill", "killed run"),
        ):
            await app.run_command(f"/workflow {command}")
            last = [b for b in app.chat_view.blocks() if isinstance(b, Notice)][-1]
            assert last.text.startswith(f"{said} {short_id(run_id)}"), last.text
        assert (await app.workflows.eng.get_run(run_id)).status == "killed"


async def test_agent_workflow_tool_runs_and_answers(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        tool = controller.agent_tool()
        assert "workflow" in [t.name for t in app.chat._tools()]
        ctx = ToolContext(workspace=git_repo)
        listed = await tool.run({"action": "list"}, ctx)
        assert "demo" in listed.output and not listed.is_error
        started = await tool.run({"action": "run", "name": "demo", "inputs": {"topic": "api"}}, ctx)
        assert started.output.startswith("started workflow demo as run ")
        await wait_for(pilot, lambda: app.query(PromptCard), timeout=20)
        status = await tool.run({"action": "status"}, ctx)
        assert "awaiting_input" in status.output
        bad = await tool.run({"action": "answer"}, ctx)
        assert bad.is_error and "needs 'answer'" in bad.output
        answered = await tool.run({"action": "answer", "answer": "yes"}, ctx)
        assert not answered.is_error, answered.output
        run_id = controller.selected
        await wait_for(pilot, lambda: controller.runs_pane.runs[run_id].status == "completed", timeout=20)
        unknown = await tool.run({"action": "fly"}, ctx)
        assert unknown.is_error
