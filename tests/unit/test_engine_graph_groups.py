"""``build_graph``'s groups: a parallel is a node with its branches under it (those not started as
queued, or skipped once it ended; branches given as other ``ctx`` calls too), a check node carries
its outcome, a task with a Verdict output its verdict, and a group gets its round's summary."""

from __future__ import annotations

from typing import Any

from loopcraft.engine.graph import build_graph, check_outcome, verdict_outcome
from loopcraft.engine.journal import StepRow
from loopcraft.engine.names import merge_target, node_name, step_path

PAR = "root/1:parallel"


def _row(seq: int, key: str, kind: str, status: str = "completed", output: Any = None, **kw: Any) -> StepRow:
    name = key.rsplit("/", 1)[-1].split(":", 2)[-1] if kind != "parallel" else ""
    return StepRow("r1", key, key, kind, name, status, output=output, seq=seq, **kw)


def _branches(*names: str) -> dict[str, Any]:
    return {
        "branches": [{"key": f"{PAR}/{i}:task:{n}", "name": n, "kind": "task"} for i, n in enumerate(names)],
        "concurrency": 1,
    }


def test_a_running_parallel_is_a_group_whose_unstarted_branches_are_queued() -> None:
    steps = [
        _row(0, "root/0:task:plan", "task"),
        _row(1, PAR, "parallel", "running", _branches("a", "b", "c")),
        _row(2, f"{PAR}/0:task:a", "task", "running"),
    ]
    graph = build_graph("r1", steps)
    assert [n.key for n in graph.nodes] == ["root/0:task:plan", PAR]
    group = graph.nodes[1]
    assert (group.name, group.kind, group.info["concurrency"]) == ("parallel", "parallel", 1)
    assert [(c.name, c.status) for c in group.children] == [
        ("a", "running"),
        ("b", "queued"),
        ("c", "queued"),
    ]
    assert graph.to_dict()["nodes"][1]["children"][2]["status"] == "queued"


def test_branches_a_parallel_never_started_are_skipped_once_it_ended() -> None:
    steps = [
        _row(1, PAR, "parallel", "failed", _branches("a", "b")),
        _row(2, f"{PAR}/0:task:a", "task", "failed", error={"message": "boom"}),
    ]
    group = build_graph("r1", steps).nodes[0]
    assert [(c.name, c.status) for c in group.children] == [("a", "failed"), ("b", "skipped")]


def test_a_branch_given_as_another_ctx_call_sits_under_its_parallel() -> None:
    info = {
        "branches": [{"key": "root/0:workflow:first", "name": "first", "kind": "workflow"}],
        "concurrency": 2,
    }
    steps = [
        _row(1, "root/1:parallel", "parallel", "completed", info),
        _row(2, "root/0:workflow:first", "workflow"),
        _row(3, "root/0:workflow:first/0:task:inner", "task"),
    ]
    graph = build_graph("r1", steps)
    assert [n.key for n in graph.nodes] == ["root/1:parallel"]
    first = graph.nodes[0].children[0]
    assert first.name == "first" and [c.name for c in first.children] == ["inner"]


def _check(code: int | None, timed_out: bool = False) -> dict[str, Any]:
    return {"passed": code == 0 and not timed_out, "code": code, "timed_out": timed_out}


def _verdict(approve: bool, *priorities: int, alignment: str = "required") -> dict[str, Any]:
    findings = [{"title": f"finding {p}", "priority": p, "alignment": alignment} for p in priorities]
    return {"text": "", "structured": {"approve": approve, "findings": findings}}


def test_a_turn_group_summarises_its_check_and_its_reviewers_verdicts() -> None:
    turn = "root/0:workflow:turn-2"
    rev = f"{turn}/2:parallel"
    steps = [
        _row(0, turn, "workflow"),
        _row(1, f"{turn}/0:task:worker", "task", output={"text": "done", "structured": None}),
        _row(2, f"{turn}/1:check:tests", "check", output=_check(0)),
        _row(3, rev, "parallel", output={"branches": [], "concurrency": 3}),
        _row(4, f"{rev}/0:task:r0", "task", output=_verdict(True, 3)),
        _row(5, f"{rev}/1:task:r1", "task", output=_verdict(True, 2, 1, alignment="beyond")),
        _row(6, f"{rev}/2:task:r2", "task", output=_verdict(False, 1, 0)),
    ]
    graph = build_graph("r1", steps)
    nodes = {n.name: n for n in graph.walk()}
    assert nodes["turn-2"].summary == "check passed · 2/3 approve · 2 blockers"
    assert check_outcome(nodes["tests"].info) == "passed"
    assert verdict_outcome(nodes["r1"].info) == "approve"  # a finding beyond the objective never blocks
    assert verdict_outcome(nodes["r2"].info) == "reject · 2 blockers"
    assert nodes["r2"].info["verdict"]["top"] == "finding 0"
    assert nodes["worker"].info == {} and nodes["worker"].summary is None


def test_check_outcomes_and_a_failed_reviewer_counts_as_a_rejection() -> None:
    turn = "root/0:workflow:turn-1"
    rev = f"{turn}/1:parallel"
    steps = [
        _row(0, turn, "workflow"),
        _row(1, f"{turn}/0:check:tests", "check", output=_check(None, timed_out=True)),
        _row(2, rev, "parallel", output={"branches": [], "concurrency": 2}),
        _row(3, f"{rev}/0:task:r0", "task", output=_verdict(True)),
        _row(4, f"{rev}/1:task:r1", "task", "failed", error={"message": "model timed out\nmore"}),
    ]
    nodes = {n.name: n for n in build_graph("r1", steps).walk()}
    assert nodes["turn-1"].summary == "check timed out · 1/2 approve"
    assert nodes["r1"].info["verdict"] == {
        "approve": False,
        "blockers": 0,
        "findings": 0,
        "top": "model timed out",
    }
    assert check_outcome({"check": _check(2)}) == "failed (exit 2)"


def test_a_large_output_is_read_through_the_loader_and_a_group_without_a_round_has_no_summary() -> None:
    stored = {"$file": "steps/x.json"}
    steps = [
        _row(0, "root/0:workflow:w", "workflow"),
        _row(1, "root/0:workflow:w/0:check:c", "check", output=stored),
    ]
    nodes = {n.name: n for n in build_graph("r1", steps, lambda s: _check(1) if s == stored else s).walk()}
    assert nodes["w"].summary == "check failed (exit 1)"
    plain = build_graph(
        "r1", [_row(0, "root/0:workflow:w", "workflow"), _row(1, "root/0:workflow:w/0:task:t", "task")]
    )
    assert plain.nodes[0].summary is None


def test_merge_nodes_read_as_the_stage_they_merge() -> None:
    steps = [_row(0, "root/0:merge:loopcraft_20260101-000000-abcdef_fix-parser", "merge")]
    steps[0].name = "loopcraft/20260101-000000-abcdef/fix-parser"
    assert build_graph("r1", steps).nodes[0].name == "merge fix-parser"
    assert merge_target("loopcraft_20260101-000000-abcdef_fix_the_parser") == "fix_the_parser"
    assert merge_target("feature/x") == "feature/x"
    assert node_name("merge", "merge fix-parser") == "merge fix-parser"
    assert step_path("root/1:workflow:demo-review/0:parallel/1:task:synthesis", "demo") == (
        "demo › demo-review › synthesis"
    )


def test_a_branch_wrapped_in_as_verdict_keeps_its_reserved_key() -> None:
    """``ctx.parallel(as_verdict(ctx.task(...)))``: the branch is the task's reserved step, not an
    unnamed placeholder (review-change's reviewers sat beside a group of "skipped" branches)."""
    from loopcraft.engine.steps.parallel import _awaitable_branch
    from loopcraft.engine.verify import as_verdict

    async def step(key: str) -> None:  # stands for a ctx call's coroutine: its key reserved
        return None

    inner = step("root/3:task:review-correctness")
    wrapped = as_verdict(inner)
    try:
        assert _awaitable_branch(wrapped, 0) == {
            "key": "root/3:task:review-correctness",
            "name": "review-correctness",
            "kind": "task",
        }
    finally:
        wrapped.close()
        inner.close()


def test_a_failed_check_and_a_killed_gate_show_as_failed_and_killed() -> None:
    """The journal keeps a check ``completed`` (it ran; its result did not pass) and a killed step
    ``failed``; the graph, the app's labels and ``show`` read them as ``failed`` and ``killed``."""
    from loopcraft.engine.graph import display_status
    from loopcraft.headless import graph_lines
    from loopcraft.tui.panes.graph import StageNode, node_label

    killed = {"type": "Killed", "message": "the run was killed", "run_status": "killed"}
    steps = [
        _row(0, "root/0:check:lint", "check", output=_check(3)),
        _row(1, "root/1:prompt:confirm", "prompt", "failed", error=killed),
        _row(2, "root/2:task:other", "task", "failed", error={"message": "boom"}),
    ]
    graph = build_graph("r1", steps)
    lint, confirm, _other = graph.nodes
    assert [display_status(n.status, n.info) for n in graph.nodes] == ["failed", "killed", "failed"]
    assert lint.status == "completed" and confirm.status == "failed"  # the journal's semantics kept
    lines = graph_lines(graph, "wf")
    assert lines[0].startswith("✗ wf › lint  (failed (exit 3), ")
    assert lines[1].startswith("⊘ ") and "(killed" in lines[1]
    label = node_label(StageNode(lint.key, "lint", "check", "completed", info=lint.info)).plain
    assert label.startswith("✗ lint (check) · failed (exit 3)")
    gate = node_label(StageNode(confirm.key, "confirm", "prompt", "failed", info=confirm.info)).plain
    assert gate.startswith("⊘ confirm killed")


def test_show_names_a_fan_out_after_its_parent_never_as_its_parent() -> None:
    """``show`` printed ``demo › demo-review`` twice: the group line is ``… › parallel · 2 branches``."""
    from loopcraft.headless import graph_lines

    review = "root/0:workflow:demo-review"
    par = f"{review}/0:parallel"
    info = {"branches": [{"key": f"{par}/{i}:task:r{i}", "name": f"r{i}", "kind": "task"} for i in (0, 1)]}
    steps = [
        _row(0, review, "workflow"),
        _row(1, par, "parallel", output={**info, "concurrency": 2}),
        _row(2, f"{par}/0:task:r0", "task"),
        _row(3, f"{par}/1:task:r1", "task"),
    ]
    lines = [line.split("  (")[0].strip() for line in graph_lines(build_graph("r1", steps), "demo")]
    assert lines == [
        "✓ demo › demo-review",
        "✓ demo › demo-review › parallel · 2 branches",
        "✓ demo › demo-review › r0",
        "✓ demo › demo-review › r1",
    ]


def test_a_nested_workflow_with_a_status_and_a_metric_is_summarised_on_its_node() -> None:
    """``improve``'s ``experiment-N``: its output's status and metric on the group node, in the
    app (``✓ experiment-3 · keep · 0.812``) and in ``show``; other outputs get no summary."""
    from loopcraft.headless import graph_lines
    from loopcraft.tui.panes.graph import model_from_graph, node_label

    exp = "root/2:workflow:experiment-3"
    steps = [
        _row(0, exp, "workflow", output={"experiment": 3, "metric": 0.8123, "status": "keep"}),
        _row(1, f"{exp}/0:task:agent", "task", output={"text": "done", "structured": None}),
        _row(
            2,
            "root/3:workflow:experiment-4",
            "workflow",
            output={"experiment": 4, "status": "crash", "metric": None},
        ),
        _row(3, "root/4:workflow:plain", "workflow", output={"status": "ok"}),
    ]
    graph = build_graph("r1", steps)
    assert [n.summary for n in graph.nodes] == ["keep · 0.8123", "crash · -", None]
    model = model_from_graph("r1", graph)
    assert node_label(model.nodes[exp]).plain.startswith("✓ experiment-3 · keep · 0.8123")
    assert graph_lines(graph, "improve")[0].startswith("✓ improve › experiment-3  (completed, keep · 0.8123,")
