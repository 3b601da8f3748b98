"""The side panes at 100x32 (review-10 F5): with many runs and a pending prompt the stage graph
kept 1-3 rows; the runs list is capped (it scrolls) and the prompts pane fits its cards, so the
gate's stage shows in the graph."""

from __future__ import annotations

from pathlib import Path

from loopcraft.tui.panes.prompts import PromptCard
from tests.app.screen_support import screen_text
from tests.app.tui_support import make_app, wait_for

WORKFLOWS = """
from loopcraft import Context, workflow

@workflow(description="does nothing")
async def noop(ctx: Context) -> str:
    return "done"

@workflow(description="one task, then a confirm gate")
async def gated(ctx: Context) -> str:
    await ctx.task("prepare", "say ok")
    ok = await ctx.ui.confirm("Ship it?")
    return "shipped" if ok else "kept"
"""


async def test_the_graph_keeps_room_at_100x32_with_many_runs_and_a_prompt(git_repo: Path) -> None:
    folder = git_repo / ".loopcraft" / "workflows"
    folder.mkdir(parents=True)
    (folder / "flows.py").write_text(WORKFLOWS)
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(100, 32)) as pilot:
        controller = await app.open_workflows()
        for _ in range(8):
            await controller.eng.wait(await controller.run("noop", {}))
        await controller.run("gated", {})
        await wait_for(pilot, lambda: len(app.query(PromptCard)) == 1)
        await pilot.pause(0.5)
        graph = app.query_one("#graph")
        assert graph.size.height >= 10, graph.size
        assert app.query_one("#prompts").size.height <= 6
        await wait_for(pilot, lambda: "? confirm" in screen_text(app))
        assert "prepare" in screen_text(app)


def test_group_and_join_lines_keep_time_tokens_and_count_in_a_narrow_width() -> None:
    """Review-10 F10: ``parallel · 3 branches · 1 at a time  4`` lost its time and tokens, and
    ``synthesis 0.1s · 279 tok · ⋈ join of`` its count, at 100 columns."""
    from loopcraft.tui.panes.graph import StageNode, node_label

    info = {"branches": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "concurrency": 1}
    group = StageNode(
        "root/2:parallel", "parallel", "parallel", "completed", elapsed=4.1, tokens=1234, info=info
    )
    assert node_label(group).plain.startswith("✓ parallel · 3 branches · 1 at a time")
    for width in (40, 34, 28, 22):
        label = node_label(group, width=width).plain
        assert len(label) <= width and "4.1s" in label and "1.2k tok" in label, (width, label)
    join = StageNode("root/3:synthesis", "synthesis", "task", "completed", elapsed=0.1, tokens=279)
    join.parents = ["a", "b", "c"]
    assert node_label(join, joins=3).plain.endswith("⋈ join of 3")
    label = node_label(join, joins=3, width=36).plain
    assert len(label) <= 36 and "0.1s" in label and "279 tok" in label and "3" in label.split("tok")[-1]


async def test_the_runs_table_keeps_elapsed_and_cost_at_100_columns(git_repo: Path) -> None:
    """Review-10 F10: at 100 columns the runs table cut its cost (``$`` / ``c``); the workflow's
    name is shortened first. Its header fits the rows from the first draw."""
    folder = git_repo / ".loopcraft" / "workflows"
    folder.mkdir(parents=True)
    (folder / "flows.py").write_text(WORKFLOWS.replace("def noop", "def a_rather_long_workflow_name"))
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=(100, 32)) as pilot:
        controller = await app.open_workflows()
        await controller.eng.wait(await controller.run("a_rather_long_workflow_name", {}))
        await controller.run("gated", {})
        await wait_for(pilot, lambda: len(app.query(PromptCard)) == 1)
        await pilot.pause(0.3)
        lines = [line.split("│", 1)[-1] for line in screen_text(app).splitlines()]
        header = next(line for line in lines if "run " in line and "status" in line)
        assert "time" in header and "cost" in header, header
        waiting = next(line for line in lines if "awaiting_input" in line)
        assert "$0.0000" in waiting, waiting
        done = next(line for line in lines if "completed" in line and "$" in line)
        assert "…" in done and "$0.0000" in done, done
