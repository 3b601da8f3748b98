"""The live stage graph rolls a nested workflow's usage up from its stages as their usage
events arrive (before, only a reload from the journal showed it): the pure model, then the
demo in the app, checked against the journal's own graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopcraft.tui.panes.graph import GraphModel, node_label
from loopcraft.tui.panes.prompts import PromptCard
from tests.app.tui_support import make_app, wait_for

pytestmark = pytest.mark.usefixtures("fast_demo_model")  # tests/app/conftest.py

NESTED = "root/1:workflow:review"


def _model() -> GraphModel:
    model = GraphModel("r1")
    model.add("root/0:task:plan", "plan")
    model.add(NESTED, "review", "workflow")
    model.add(f"{NESTED}/0:parallel", "parallel", "parallel")
    model.add(f"{NESTED}/0:parallel/0:task:a", "a")
    model.add(f"{NESTED}/0:parallel/1:task:b", "b")
    model.add(f"{NESTED}/1:workflow:inner", "inner", "workflow")
    model.add(f"{NESTED}/1:workflow:inner/0:task:c", "c")
    return model


def test_usage_events_roll_up_into_every_enclosing_group() -> None:
    model = _model()
    model.add_usage("root/0:task:plan", 50, 0.5)
    assert model.nodes[NESTED].tokens == 0  # a sibling's usage is not the workflow's
    model.add_usage(f"{NESTED}/0:parallel/0:task:a", 100, 0.01)
    model.add_usage(f"{NESTED}/0:parallel/1:task:b", 200, 0.02)
    model.add_usage(f"{NESTED}/0:parallel/0:task:a", 150, 0.015)  # a later total replaces, not adds
    model.add_usage(f"{NESTED}/1:workflow:inner/0:task:c", 1000, 0.1)
    assert model.nodes[f"{NESTED}/1:workflow:inner"].tokens == 1000
    assert model.nodes[NESTED].tokens == 150 + 200 + 1000
    assert model.nodes[NESTED].cost == pytest.approx(0.015 + 0.02 + 0.1)
    assert model.nodes["root/0:task:plan"].tokens == 50
    assert "1.4k tok" in node_label(model.nodes[NESTED]).plain


async def test_live_demo_graph_shows_the_nested_workflow_tokens(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        await pilot.press(*"/workflow run demo topic=docs", "enter")
        await wait_for(pilot, lambda: app.query(PromptCard), timeout=30)  # the run waits at its gate
        run_id = controller.selected
        assert run_id is not None
        live = controller.graphs[run_id]
        nested = next(n for n in live.nodes.values() if n.kind == "workflow")
        stages = [n for n in live.nodes.values() if n.key.startswith(nested.key + "/") and n.kind == "task"]
        assert len(stages) == 3 and all(s.tokens for s in stages)
        assert nested.tokens == sum(s.tokens for s in stages)
        journal = (await controller.eng.graph(run_id)).find(nested.key)
        assert journal is not None and nested.tokens == journal.tokens  # same as after a reload
        tree_node = await wait_for(pilot, lambda: controller.graph_pane._tree_nodes.get(nested.key))
        await wait_for(pilot, lambda: "tok" in str(tree_node.label))
