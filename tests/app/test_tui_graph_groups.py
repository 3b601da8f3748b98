"""The stage graph as people read it (issue 10 items 4 and 6, issue 12's turn groups): stages by
their path and runs by their short handle, never step keys; a parallel fan-out as a group with
its queued branches and its join; statuses whole at 100 columns; how a run ended and why in the
header; a failed stage's whole error; a loop's turns with their check and review round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from loopcraft.engine.names import short_id
from loopcraft.tui.panes.prompts import PromptCard
from tests.app.screen_support import screen_lines, screen_text
from tests.app.tui_support import make_app, scripted, wait_for

pytestmark = pytest.mark.usefixtures("fast_demo_model")  # tests/app/conftest.py

NARROW = (100, 40)
FIRST_CALL_S = 30  # the first model call in a test process also imports litellm
MODEL = "scripted/tui-groups"

FAN = f'''
from loopcraft import Context, workflow

@workflow(description="a gate, as a branch")
async def gated(ctx: Context) -> bool:
    return await ctx.ui.confirm("Let the first branch finish?")

@workflow(description="three branches, one at a time, then a join")
async def fan(ctx: Context) -> str:
    await ctx.parallel(
        ctx.workflow(gated, label="first"),
        ctx.spec("second", prompt="work", model="{MODEL}"),
        ctx.spec("third", prompt="work", model="{MODEL}"),
        concurrency=1,
    )
    done = await ctx.task("after", prompt="join", model="{MODEL}")
    return done.text
'''

LONG_ERROR = "the reviewer's answer was never a verdict " + "and this sentence keeps going " * 6 + "END"
BROKEN = f'''
from loopcraft import Context, Verdict, workflow

@workflow(description="a stage whose structured answer never parses")
async def broken(ctx: Context) -> str:
    try:
        await ctx.task("judge", prompt="judge", schema=Verdict, model="{MODEL}")
    except Exception:
        pass
    await ctx.tool("explain", lambda: (_ for _ in ()).throw(RuntimeError({LONG_ERROR!r})))
    return "unreachable"
'''

TURNS = f'''
from loopcraft import Context, Verdict, workflow

@workflow(description="one turn: work, check, three reviewers")
async def turn(ctx: Context, n: int, code: int) -> int:
    await ctx.task(f"t{{n}}-work", prompt="work", model="{MODEL}")
    await ctx.check("tests", f"exit {{code}}")
    await ctx.parallel(
        *[ctx.spec(f"t{{n}}-rev-{{i}}", prompt="review", schema=Verdict, model="{MODEL}") for i in range(3)]
    )
    return n

@workflow(description="two labelled turns")
async def turns(ctx: Context) -> int:
    await ctx.workflow(turn, label="turn-1", n=1, code=1)
    return await ctx.workflow(turn, label="turn-2", n=2, code=0)
'''

APPROVE = {"json": {"approve": True, "findings": [{"title": "tiny nit", "priority": 3}]}}
REJECT = {"json": {"approve": False, "findings": [{"title": "no test for the parser", "priority": 1}]}}


def _workflow(root: Path, name: str, source: str) -> None:
    folder = root / ".loopcraft" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(source)


def _labels(tree: Tree[str]) -> list[str]:
    nodes = [tree.get_node_at_line(line) for line in range(tree.last_line + 1)]
    return [str(node.label) for node in nodes if node is not None]


def _tree_node(app: Any, name: str) -> TreeNode[str]:
    pane = app.workflows.graph_pane
    key = next(k for k, n in pane.model.nodes.items() if n.name == name)
    return pane._tree_nodes[key]


def _label(app: Any, name: str) -> str:
    """The drawn label of stage ``name`` ("" until it is drawn)."""
    pane = app.workflows.graph_pane
    key = next((k for k, n in pane.model.nodes.items() if n.name == name), None)
    node = pane._tree_nodes.get(key) if key else None
    return str(node.label) if node is not None else ""


def _joins(label: str) -> int | None:
    """The count of a join (``⋈ join of 2``, or ``⋈ 2`` where the pane is narrow)."""
    import re

    found = re.search(r"⋈ (?:join of )?(\d+)", label)
    return int(found.group(1)) if found else None


def _fan_out(label: str) -> str:
    """A parallel group's label up to its details, read the same whether it says ``parallel ·`` or,
    narrow, ``∥`` (its time and tokens come first)."""
    return label.split("  ")[0].replace("parallel · ", "").replace("∥ ", "")


def _side(app: Any) -> list[str]:
    """The side panes' part of each screen row (right of the chat's border)."""
    return [line.split("│", 1)[1] if "│" in line else "" for line in screen_lines(app)]


async def _start(app: Any, pilot: Any, command: str) -> str:
    controller = await app.open_workflows()
    await pilot.press(*command, "enter")
    return str(await wait_for(pilot, lambda: controller.selected, timeout=FIRST_CALL_S))


async def test_the_demo_reads_as_names_fits_100_columns_and_ends_with_its_reason(git_repo: Path) -> None:
    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=NARROW) as pilot:
        run_id = await _start(app, pilot, "/workflow run demo")
        controller = app.workflows
        await wait_for(pilot, lambda: app.query(PromptCard), timeout=FIRST_CALL_S)
        tree = controller.graph_pane.tree_widget
        await wait_for(pilot, lambda: any("synthesis" in label for label in _labels(tree)))
        await wait_for(pilot, lambda: any("awaiting input" in line for line in _side(app)))
        side = "\n".join(_side(app))
        assert "root/" not in side and ":task:" not in side and run_id not in side, side
        assert f"demo · {short_id(run_id)} · awaiting input" in side
        assert "parallel · 2 branches" in side  # the fan-out is a group node
        gate_line = next(line for line in _side(app) if "confirm" in line)
        assert "? confirm awaiting input" in gate_line  # the status whole at 100 columns
        assert _joins(next(label for label in _labels(tree) if "synthesis" in label)) == 2
        card = app.query_one(PromptCard)
        assert f"run {short_id(run_id)} · demo › confirm" in str(card.query("Static").first().render())

        await pilot.press(*"/workflow attach synthesis", "enter")
        title = await wait_for(pilot, lambda: controller.attached and str(_title(app)))
        assert f"Transcript · demo › demo-review › synthesis · run {short_id(run_id)}" in title
        assert "root/" not in title
        await pilot.press(*"/workflow detach", "enter")
        await wait_for(pilot, lambda: controller.attached is None)

        await pilot.press(*"/workflow answer n", "enter")
        await wait_for(pilot, lambda: "blocked — the plan was not approved" in "\n".join(_side(app)))
        assert str(tree.root.label) == f"demo · {short_id(run_id)} · blocked"


def _title(app: Any) -> str:
    return str(app.query_one("#transcript-title").render())


async def test_a_fan_out_is_a_group_with_its_queued_branches_and_its_join(git_repo: Path) -> None:
    _workflow(git_repo, "fan", FAN)
    scripted("tui-groups", [{"text": "done"}])
    app = make_app(git_repo, MODEL)
    async with app.run_test(size=NARROW) as pilot:
        run_id = await _start(app, pilot, "/workflow run fan")
        controller = app.workflows
        await wait_for(pilot, lambda: app.query(PromptCard), timeout=FIRST_CALL_S)
        await wait_for(
            pilot, lambda: any("third" in label for label in _labels(controller.graph_pane.tree_widget))
        )
        group = _tree_node(app, "parallel")
        assert _fan_out(str(group.label)) == "⟳ 3 branches · 1 at a time"
        assert [str(child.label).split("  ")[0] for child in group.children] == [
            "⟳ first",
            "◌ second queued",
            "◌ third queued",
        ]
        journal = await controller.eng.graph(run_id)  # the same from the journal (a reload, `show`)
        parallel = next(n for n in journal.walk() if n.kind == "parallel")
        assert [(c.name, c.status) for c in parallel.children][1:] == [
            ("second", "queued"),
            ("third", "queued"),
        ]

        await pilot.press(*"/workflow answer y", "enter")
        await wait_for(pilot, lambda: controller.runs_pane.runs[run_id].status == "completed", FIRST_CALL_S)
        await wait_for(pilot, lambda: _label(app, "third").startswith("✓ third"))
        assert _fan_out(str(group.label)) == "✓ 3 branches · 1 at a time"
        assert _joins(str(_tree_node(app, "after").label)) == 3


async def test_a_failed_stage_shows_its_whole_error_and_its_transcript_ends_with_it(git_repo: Path) -> None:
    _workflow(git_repo, "broken", BROKEN)
    scripted("tui-groups", [{"text": "no verdict here"}])
    app = make_app(git_repo, MODEL)
    async with app.run_test(size=NARROW) as pilot:
        run_id = await _start(app, pilot, "/workflow run broken")
        controller = app.workflows
        await wait_for(pilot, lambda: controller.runs_pane.runs[run_id].status == "failed", FIRST_CALL_S)
        await wait_for(pilot, lambda: controller.graphs[run_id].nodes and _failed(app, "explain"))
        for name in ("judge", "explain"):
            await pilot.press(*f"/workflow attach {name}", "enter")
            await wait_for(
                pilot, lambda name=name: controller.attached and controller.attached[1].endswith(name)
            )
            view = controller.transcript_pane.view
            await view.settle()
            texts = [str(getattr(b, "text", "")) for b in view.blocks()]
            assert texts and texts[-1].startswith("failed: "), texts
            assert not any(t.startswith("status: completed") for t in texts[-2:]), texts
            if name == "explain":
                assert texts[-1].endswith("END")  # the whole error, not its first 60 characters
            await pilot.press(*"/workflow detach", "enter")
            await wait_for(pilot, lambda: controller.attached is None)
        side = "\n".join(_side(app))
        assert "failed — " in side  # the header says why the run ended


def _failed(app: Any, name: str) -> bool:
    nodes = app.workflows.graph_pane.model.nodes.values()
    return any(n.name == name and n.status == "failed" for n in nodes)


async def test_each_turn_shows_its_check_and_review_round_and_opens_it_as_a_table(git_repo: Path) -> None:
    _workflow(git_repo, "turns", TURNS)
    scripted(
        "tui-groups",
        [{"text": "worked"}],
        {"t1-rev-*": [REJECT], "t2-rev-0": [APPROVE], "t2-rev-1": [APPROVE], "t2-rev-2": [REJECT]},
    )
    app = make_app(git_repo, MODEL)
    async with app.run_test(size=NARROW) as pilot:
        run_id = await _start(app, pilot, "/workflow run turns")
        controller = app.workflows
        await wait_for(pilot, lambda: controller.runs_pane.runs[run_id].status == "completed", FIRST_CALL_S)
        await wait_for(pilot, lambda: "1 blocker" in _label(app, "turn-2"))
        assert "turn-1 · check failed (exit 1) · 0/3 approve · 3 blockers" in str(
            _tree_node(app, "turn-1").label
        )
        assert "turn-2 · check passed · 2/3 approve · 1 blocker" in str(_tree_node(app, "turn-2").label)
        assert "tests (check) · passed" in str(_tree_node(app, "tests").label) or any(
            "tests (check) · passed" in label for label in _labels(controller.graph_pane.tree_widget)
        )
        assert "reject · 1 blocker" in str(_tree_node(app, "t2-rev-2").label)

        tree = controller.graph_pane.tree_widget
        tree.focus()
        tree.move_cursor(_tree_node(app, "turn-2"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: "Transcript · turns › turn-2" in _title(app))
        await wait_for(pilot, lambda: "no test for" in screen_text(app))  # (wrapped at 100 columns)
        table = [line.split(" │ ", 1)[-1] for line in screen_lines(app) if line.startswith(" │ ")]
        rows = [line for line in table if "t2-rev-" in line or "tests (check)" in line]
        assert len(rows) == 4, rows
        assert any("t2-rev-2" in r and "reject" in r and " 1 " in r for r in rows), rows
        assert any("tests (check)" in r and "passed" in r for r in rows), rows


async def test_at_100_columns_a_stage_keeps_its_time_and_tokens_the_name_is_shortened(git_repo: Path) -> None:
    """A deep stage with a long name at 100 columns: the name is cut (``…``), the model too, but
    the status, time and tokens are whole (they were cut to ``0.2s · 465 t``)."""
    import re

    app = make_app(git_repo, "scripted/demo")
    async with app.run_test(size=NARROW) as pilot:
        await _start(app, pilot, "/workflow run demo")
        await wait_for(pilot, lambda: app.query(PromptCard), timeout=FIRST_CALL_S)
        await wait_for(pilot, lambda: _joins(_label(app, "synthesis")) == 2)
        await wait_for(pilot, lambda: any("awaiting input" in line for line in _side(app)))
        timed = [line for line in _side(app) if re.search(r"\ds · \d", line)]
        assert len(timed) >= 3, "\n".join(_side(app))
        for line in timed:
            assert re.search(r"\ds · [\d.,k]+ tok", line), line
        assert any("review-main" in line and "…" in line for line in timed)  # the name gave way
