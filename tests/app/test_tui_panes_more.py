"""Pilot tests of the side panes from the keyboard, on the real engine (scripted model, real
SQLite journal, real git repo): the runs pane (list, select, open), moving through the stage
graph with the arrows, folding the nested workflow node, Enter on a stage attaching its
transcript, the bell and notification when a prompt arrives, and a long tool output in the
chat collapsing and expanding on screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Tree
from textual.widgets._collapsible import CollapsibleTitle

from loopcraft.engine.names import short_id
from loopcraft.tui.chat import ToolBlock
from loopcraft.tui.panes.prompts import PromptCard
from tests.app.screen_support import screen_text
from tests.app.tui_support import chat_texts, make_app, scripted, wait_for

pytestmark = pytest.mark.usefixtures("fast_demo_model")  # tests/app/conftest.py

SIZE = (160, 45)
FIRST_CALL_S = 30  # the first model call in a test process also imports litellm
QUICK = """
from loopcraft import Context, workflow

@workflow(description="one quick stage")
async def {name}(ctx: Context) -> str:
    result = await ctx.task("{name}-stage", prompt="Say hi.", model="scripted/tui-more-quick")
    return result.text
"""
GATE = """
from loopcraft import Context, workflow

@workflow(description="only a confirm gate")
async def gate(ctx: Context) -> bool:
    return await ctx.ui.confirm("Ship the release?")
"""


def _workflows(root: Path, *quick: str, gate: bool = False) -> None:
    """Repo workflows: one-stage ``quick`` ones (stage ``<name>-stage``) and a gate-only one."""
    folder = root / ".loopcraft" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    for name in quick:
        (folder / f"{name}.py").write_text(QUICK.format(name=name))
    if gate:
        (folder / "gate.py").write_text(GATE)
    scripted("tui-more-quick", [{"text": "hi"}])


async def _demo_at_gate(app: Any, pilot: Any) -> str:
    """Start the demo and wait until it waits at its gate, with the whole graph drawn."""
    controller = await app.open_workflows()
    await pilot.press(*"/workflow run demo topic=docs", "enter")
    await wait_for(pilot, lambda: app.query(PromptCard), timeout=FIRST_CALL_S)
    run_id: str = controller.selected
    tree = controller.graph_pane.tree_widget
    await wait_for(pilot, lambda: any("synthesis" in label for label in _names(tree)))
    return run_id


def _names(tree: Tree[str]) -> list[str]:
    """The labels of the tree's visible lines, top to bottom (the root first)."""
    nodes = [tree.get_node_at_line(line) for line in range(tree.last_line + 1)]
    return [str(node.label) for node in nodes if node is not None]


async def test_runs_pane_lists_runs_and_enter_opens_one(git_repo: Path) -> None:
    _workflows(git_repo, "alpha", "beta")
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        controller = await app.open_workflows()
        ids: dict[str, str] = {}
        for name in ("alpha", "beta"):
            ids[name] = await controller.run(name, {})
            await wait_for(
                pilot,
                lambda name=name: controller.runs_pane.runs[ids[name]].status == "completed",
                FIRST_CALL_S,
            )
        table = controller.runs_pane.table
        assert [table.get_row_at(i)[1].strip() for i in range(table.row_count)] == [
            "beta",
            "alpha",
        ]  # newest first
        assert controller.selected == ids["beta"]
        await wait_for(pilot, lambda: "beta-stage" in screen_text(app))

        await pilot.press("f2")
        assert isinstance(app.focused, DataTable) and table.cursor_row == 0
        await pilot.press("down")
        assert table.cursor_row == 1
        await pilot.press("enter")
        await wait_for(pilot, lambda: controller.selected == ids["alpha"])
        tree = controller.graph_pane.tree_widget
        await wait_for(pilot, lambda: app.focused is tree)  # opening a run moves to its graph
        assert any("alpha-stage" in label for label in _names(tree))
        assert str(tree.root.label).startswith(f"alpha · {short_id(ids['alpha'])} · completed")
        await wait_for(pilot, lambda: "alpha-stage" in screen_text(app))
        assert "beta-stage" not in screen_text(app)
        await pilot.press("f2", "up", "enter")  # and back
        await wait_for(pilot, lambda: controller.selected == ids["beta"])
        await wait_for(pilot, lambda: "beta-stage" in screen_text(app))


async def test_graph_keys_move_fold_the_nested_workflow_and_attach_stages(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        run_id = await _demo_at_gate(app, pilot)
        controller = app.workflows
        assert controller is not None
        tree = controller.graph_pane.tree_widget
        await pilot.press("f3")
        assert app.focused is tree and tree.cursor_line == 0
        await pilot.press("down")
        assert tree.cursor_node is not None and tree.cursor_node.data == "root/0:chain/0:task:scout"
        await pilot.press("down", "down", "up")
        assert tree.cursor_node.data == "root/0:chain/1:task:plan"

        # the nested workflow: Enter on a workflow node with stages folds it (no attach), Space too
        nested = ("review-correctness", "review-maintainability", "synthesis")
        assert all(any(name in label for label in _names(tree)) for name in nested)
        await pilot.press("down")
        node = tree.cursor_node
        assert node is not None and node.data == "root/1:workflow:demo-review" and node.is_expanded
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert not node.is_expanded and controller.attached is None
        assert not any(name in label for label in _names(tree) for name in nested)
        assert "synthesis" not in screen_text(app)
        await pilot.press("down")  # the next visible line is now the gate after the workflow
        assert tree.cursor_node is not None and tree.cursor_node.data == "root/2:prompt:confirm"
        await pilot.press("up", "space")
        await pilot.pause(0.1)
        assert node.is_expanded and "synthesis" in screen_text(app)
        await pilot.press("space")
        await pilot.pause(0.6)  # later redraws of the live graph keep the user's folding
        assert not node.is_expanded and "synthesis" not in screen_text(app)
        await pilot.press("space")

        # Enter on a stage attaches its transcript
        await pilot.press("up", "enter")
        await wait_for(pilot, lambda: controller.attached == (run_id, "root/0:chain/1:task:plan"))
        pane = controller.transcript_pane
        await wait_for(pilot, lambda: pane.has_class("visible"))
        first = getattr(pane.view.blocks()[0], "text", "")
        assert first.startswith("Plan a small improvement to docs.") and "Context map (demo)" in first
        await wait_for(pilot, lambda: "Transcript · demo › plan" in screen_text(app))
        assert app.input.has_class("attached") and "steer stage" in screen_text(app)
        await wait_for(pilot, lambda: app.focused is app.input)  # attached: typing steers it

        await pilot.press("f3", "down", "down", "down", "down", "enter")  # a stage in the nested fan-out
        key = "root/1:workflow:demo-review/0:parallel/1:task:review-maintainability"
        await wait_for(pilot, lambda: controller.attached == (run_id, key))
        first = getattr(pane.view.blocks()[0], "text", "")
        assert first.startswith("Review docs for maintainability.")

        await pilot.press("f5", *"/workflow detach", "enter")
        await wait_for(pilot, lambda: not pane.has_class("visible"))
        assert controller.attached is None and "Transcript ·" not in screen_text(app)


async def test_escape_detaches_the_transcript(git_repo: Path) -> None:
    _workflows(git_repo, "alpha")
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        controller = await app.open_workflows()
        run_id = await controller.run("alpha", {})
        await wait_for(pilot, lambda: controller.runs_pane.runs[run_id].status == "completed", FIRST_CALL_S)
        await app.run_command(f"/workflow attach {run_id} alpha-stage")
        pane = controller.transcript_pane
        assert pane.has_class("visible") and controller.attached == (run_id, "root/0:task:alpha-stage")
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert not pane.has_class("visible") and controller.attached is None


async def test_enter_on_a_gate_node_does_not_attach(git_repo: Path) -> None:
    _workflows(git_repo, gate=True)
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        controller = await app.open_workflows()
        await pilot.press(*"/workflow run gate", "enter")
        await wait_for(pilot, lambda: app.query(PromptCard))
        tree = controller.graph_pane.tree_widget
        await wait_for(pilot, lambda: any("confirm" in label for label in _names(tree)))
        await pilot.press("f3", "down")
        assert tree.cursor_node is not None and tree.cursor_node.data == "root/0:prompt:confirm"
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert controller.attached is None and not controller.transcript_pane.has_class("visible")
        card = app.focused  # the gate's prompt card takes the focus instead, ready for y / n
        assert isinstance(card, PromptCard) and card.prompt.key == "root/0:prompt:confirm"
        await wait_for(pilot, lambda: card.has_focus)
        await wait_for(pilot, card._ready)  # the card's answer grace period
        await pilot.press("y")
        await wait_for(pilot, lambda: controller.runs_pane.runs[controller.selected].status == "completed")


async def test_a_new_prompt_rings_the_bell_and_notifies(git_repo: Path) -> None:
    _workflows(git_repo, gate=True)
    app = make_app(git_repo, "scripted/demo")
    bells: list[str] = []
    notes: list[tuple[str, str]] = []
    notify = app.notify

    def spy_notify(message: str, *, title: str = "", **kwargs: Any) -> None:
        notes.append((message, title))
        notify(message, title=title, **kwargs)

    async with app.run_test(size=SIZE, notifications=True) as pilot:
        app.bell = lambda: bells.append("bell")  # type: ignore[method-assign]
        app.notify = spy_notify  # type: ignore[method-assign]
        app.action_toggle_side()  # hidden by the user
        assert not app.query_one("#side").has_class("visible")
        await app.open_workflows()
        await pilot.press(*"/workflow run gate", "enter")
        await wait_for(pilot, lambda: bells)
        assert bells == ["bell"]
        assert notes == [("Ship the release?  (F4 to answer)", "loopcraft needs you")]
        assert app.query_one("#side").has_class("visible")  # the prompt brings the panes
        await wait_for(pilot, lambda: "loopcraft needs you" in screen_text(app))  # the toast is drawn
        assert "Prompts (1 pending)" in screen_text(app)
        await pilot.pause(0.3)
        assert bells == ["bell"]  # once per prompt, not per redraw


async def test_long_tool_output_collapses_and_expands_on_screen(git_repo: Path) -> None:
    command = "for i in $(seq 1 60); do echo out-$i-line; done"
    turns = [
        {"tool_calls": [{"name": "bash", "arguments": {"command": command}}]},
        {"text": "listed"},
    ]
    app = make_app(git_repo, scripted("tui-more-long", turns), agent={"permission_mode": "yolo"})
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press(*"list them", "enter")
        await app.chat.wait()
        block = await wait_for(pilot, lambda: app.query(ToolBlock) and app.query(ToolBlock)[0])
        await wait_for(pilot, lambda: block.status == "ok")
        await pilot.pause(0.1)
        assert block.collapsed
        shown = screen_text(app)
        assert "✓ bash" in shown and "out-1-line" not in shown
        await pilot.click(block.query_one(CollapsibleTitle))
        await pilot.pause(0.1)
        assert not block.collapsed
        shown = screen_text(app)
        assert "out-1-line" in shown and "out-60-line" not in shown  # a long output is shown capped
        block.query_one(CollapsibleTitle).focus()
        await pilot.press("enter")  # the keyboard folds it again
        await pilot.pause(0.1)
        assert block.collapsed and "out-1-line" not in screen_text(app)
        assert "listed" in chat_texts(app)


async def test_a_journal_tick_in_flight_when_the_panes_go_is_harmless(git_repo: Path) -> None:
    """The follow timer re-reads the journal every second; when the app closes while a tick awaits
    the journal, the tick must not reach for panes that are gone (it raised NoMatches at exit)."""
    import asyncio

    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        controller = await app.open_workflows()
        engine = controller.eng
        reading, release = asyncio.Event(), asyncio.Event()
        real_runs = engine.runs

        async def slow_runs(limit: int = 50) -> Any:
            reading.set()
            await release.wait()
            return await real_runs(limit)

        engine.runs = slow_runs  # type: ignore[method-assign]
        tick = asyncio.create_task(controller._follow_journal())
        await reading.wait()
        await app.query_one("#runs").remove()  # what the app's teardown does to its panes
        release.set()
        await tick  # returns quietly
        assert tick.exception() is None
        await pilot.pause()


async def test_escape_does_the_same_in_every_pane(git_repo: Path) -> None:
    """Esc in the chat, runs, graph, prompts or transcript pane: with the agent idle and a
    transcript attached it detaches (the stage is not stopped; the focus stays put, or from the
    transcript, now hidden, goes to the prompt); with nothing attached it does nothing. The
    README's key table says so for each pane."""
    from loopcraft.tui.keys import key_table

    _workflows(git_repo, "alpha")
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=SIZE) as pilot:
        controller = await app.open_workflows()
        run_id = await controller.run("alpha", {})
        await wait_for(pilot, lambda: controller.runs_pane.runs[run_id].status == "completed", FIRST_CALL_S)
        panes = {
            "chat": lambda: app.chat_view.focus(),
            "runs": lambda: app.action_focus_pane("runs"),
            "graph": lambda: app.action_focus_pane("graph"),
            "prompts": lambda: app.action_focus_pane("prompts"),
            "transcript": lambda: next(
                w for w in controller.transcript_pane.query("*") if w.can_focus
            ).focus(),
        }
        for name, focus in panes.items():
            await app.run_command(f"/workflow attach {run_id} alpha-stage")
            assert controller.attached is not None
            focus()
            await pilot.pause(0.1)
            focused = app.focused
            assert focused is not None, name
            await pilot.press("escape")
            await wait_for(pilot, lambda: controller.attached is None)
            if name == "transcript":  # the pane is hidden: the focus goes back to the prompt
                focused = app.input
            assert app.focused is focused, name  # Esc detached and left the focus where it was
            await pilot.press("escape")  # nothing attached, nothing running: nothing happens
            await pilot.pause(0.1)
            assert app.focused is focused and controller.runs_pane.runs[run_id].status == "completed", name
    assert "in every pane" in next(row.does for row in key_table() if row.keys == "Esc")
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    said = readme[readme.index("**Esc** does the same in the") :].split("\n\n")[0]
    assert all(name in said for name in panes) and "detaches" in said, said
