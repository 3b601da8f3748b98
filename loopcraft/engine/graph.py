"""The stage graph of a run, built from the journal's steps: nodes with status, model, time,
tokens and cost; parent edges from control flow; nested workflows as children of their node.

A parallel fan-out is a group node with its branches under it (those not started yet, held back
by the concurrency limit, as ``queued`` nodes). A check node carries its outcome and a task whose
structured output is a :class:`~loopcraft.engine.verify.Verdict` its verdict, and a group whose
children include them gets a one-line summary (``check passed · 2/3 approve · 1 blocker``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopcraft.engine.names import node_name

if TYPE_CHECKING:  # the app's graph pane imports this module before its first frame: keep it light
    from loopcraft.engine.artifacts import RunFiles
    from loopcraft.engine.journal import Journal, StepRow
    from loopcraft.models.types import Usage

# Step kinds that are stages (events, parent edges); chain is structure only (its children are the nodes).
GRAPH_KINDS = frozenset({"task", "tool", "workflow", "stage", "prompt", "stage_prompt", "merge", "check"})
# Step kinds shown as graph nodes: the stages and the parallel groups.
NODE_KINDS = GRAPH_KINDS | {"parallel"}
GROUP_KINDS = frozenset({"workflow", "stage", "parallel"})
# Steps whose usage is their own (the one definition; the runtime imports it from here).
# A group's usage is always the sum of these among its descendants, never its own row's.
USAGE_KINDS = frozenset({"task", "stage_prompt"})
KILLED_MESSAGE = "the run was killed"  # the error of every step a kill ended


def _usage(recorded: dict[str, Any] | None = None) -> Usage:
    """A :class:`Usage` (``recorded``: a step row's); models.types loads pydantic, so on first use."""
    from loopcraft.models.types import Usage

    return Usage.from_dict(recorded)


@dataclass
class GraphNode:
    key: str
    name: str
    kind: str
    status: str
    model: str | None
    parents: list[str]
    started: float | None
    finished: float | None
    usage: Usage = field(default_factory=_usage)
    error: str | None = None
    children: list[GraphNode] = field(default_factory=list)
    # what the node's output says: a check's outcome, a reviewer's verdict, a parallel's branches
    info: dict[str, Any] = field(default_factory=dict)
    summary: str | None = None  # a group's check and review round, e.g. "check passed · 2/3 approve"
    grants: list[str] = field(default_factory=list)  # the stage's grant: protected paths, "network"
    # from the run's events (see loopcraft.engine.activity): model turns, last agent event, mark
    turns: int = 0
    last_active: float | None = None
    flag: str | None = None  # "stalled" or "waiting" (a running stage only)
    flag_detail: str = ""
    until: float | None = None  # waiting: the limit's reset time

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    @property
    def tokens(self) -> int:
        return self.usage.total_tokens

    @property
    def cost(self) -> float:
        return self.usage.cost_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "model": self.model,
            "parents": self.parents,
            "elapsed": round(self.elapsed, 3),
            "tokens": self.tokens,
            "cost": self.cost,
            "error": self.error,
            "info": self.info,
            "summary": self.summary,
            "grants": self.grants,
            "turns": self.turns,
            "last_active": self.last_active,
            "flag": self.flag,
            "flag_detail": self.flag_detail,
            "until": self.until,
            "children": [c.to_dict() for c in self.children],
        }


@dataclass
class Graph:
    run_id: str
    nodes: list[GraphNode] = field(default_factory=list)  # top level, in start order

    def walk(self) -> Iterator[GraphNode]:
        stack = list(reversed(self.nodes))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def find(self, key_or_name: str) -> GraphNode | None:
        return next((n for n in self.walk() if key_or_name in (n.key, n.name)), None)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "nodes": [n.to_dict() for n in self.nodes]}


def build_graph(run_id: str, steps: list[StepRow], load_output: Callable[[Any], Any] | None = None) -> Graph:
    """Nodes for stage steps and parallel groups; each nested under the closest group whose key
    prefixes it (a parallel's branches given as other ``ctx`` calls: under that parallel).
    ``load_output`` reads a step's journaled output (``RunFiles.load_output``: large ones are files)."""
    graph = Graph(run_id)
    groups: dict[str, GraphNode] = {}
    branch_of: dict[str, GraphNode] = {}  # a branch's key → its parallel group
    load = load_output or (lambda stored: stored)
    for step in sorted(steps, key=lambda s: s.seq):
        if step.kind not in NODE_KINDS:
            continue
        node = GraphNode(
            step.key,
            node_name(step.kind, step.name),
            step.kind,
            step.status,
            step.model,
            list(step.parents),
            step.started,
            step.finished,
            _usage(step.usage),
            (step.error or {}).get("message") if step.error else None,
            grants=list(step.grants),
        )
        node.info = _node_info(step, load)
        if step.status == "failed" and (step.error or {}).get("type") == "Killed":
            node.info["ended"] = "killed"  # failed in the journal (re-run never): ended by a kill
        owner = branch_of.get(step.key) or _owner(step.key, groups)
        (owner.children if owner else graph.nodes).append(node)
        if step.kind in GROUP_KINDS:
            groups[step.key] = node
        for branch in node.info.get("branches", []):
            if branch.get("key"):
                branch_of[branch["key"]] = node
    for group in groups.values():
        if group.kind == "parallel":
            _add_queued(group)
            _failed_reviewers(group)
    for group in groups.values():  # every parallel settled first: a turn's summary reads its reviewers
        group.usage = _descendant_usage(group)
        group.summary = group_summary(_round_members(group)) or result_outcome(group.info)
    return graph


def _node_info(step: StepRow, load: Callable[[Any], Any]) -> dict[str, Any]:
    """What a node shows of its step's output: a check's outcome, a verdict, a parallel's branches."""
    if step.output is None or step.kind not in ("check", "task", "parallel", "workflow"):
        return {}
    try:
        output = load(step.output)
    except (OSError, ValueError):
        return {}
    if step.kind == "parallel":
        return dict(output) if isinstance(output, dict) else {}
    if step.kind == "workflow":
        return _result_info(output)
    if step.kind == "check":
        from loopcraft.engine.verify import CheckResult

        try:
            check = CheckResult.model_validate(output)
        except ValueError:
            return {}
        return {"check": {"passed": check.passed, "code": check.code, "timed_out": check.timed_out}}
    return _verdict_info(output.get("structured") if isinstance(output, dict) else None)


def _result_info(output: Any) -> dict[str, Any]:
    """A nested workflow whose output has a ``status`` and a ``metric`` or ``score`` (an improve
    experiment): both, for its node's summary (``keep · 0.812``)."""
    if not isinstance(output, dict) or not isinstance(output.get("status"), str):
        return {}
    score = output.get("metric", output.get("score"))
    if not isinstance(score, int | float) and score is not None:
        return {}
    if "metric" not in output and "score" not in output:
        return {}
    return {"result": {"status": output["status"], "score": score}}


def result_outcome(info: dict[str, Any]) -> str | None:
    """``keep · 0.812`` (``crash · -`` without a score) for a nested workflow's result info."""
    result = info.get("result")
    if not result:
        return None
    score = result.get("score")
    return f"{result['status']} · {'-' if score is None else f'{score:.4g}'}"


def _verdict_info(structured: Any) -> dict[str, Any]:
    if not isinstance(structured, dict) or "approve" not in structured:
        return {}
    from loopcraft.engine.verify import parse_verdict

    verdict, _ = parse_verdict(structured)
    if verdict is None:
        return {}
    blocking = sorted((f for f in verdict.findings if f.blocking), key=lambda f: f.priority)
    top = min(verdict.findings, key=lambda f: f.priority) if verdict.findings else None
    return {
        "verdict": {
            "approve": verdict.approve and not verdict.reviewer_error,
            "blockers": len(blocking),
            "findings": len(verdict.findings),
            "top": top.title if top else (verdict.reviewer_error or verdict.summary or ""),
        }
    }


def _failed_reviewers(group: GraphNode) -> None:
    """A branch that failed beside branches that returned verdicts was a reviewer: it rejects
    (fail closed, as :func:`~loopcraft.engine.verify.reduce_verdicts` counts it)."""
    if not any(child.info.get("verdict") for child in group.children):
        return
    for child in group.children:
        if child.kind == "task" and child.status == "failed" and not child.info:
            top = (child.error or "reviewer failed").splitlines()[0]
            child.info = {"verdict": {"approve": False, "blockers": 0, "findings": 0, "top": top}}


def _add_queued(group: GraphNode) -> None:
    """Branches the parallel has not started: ``queued`` while it runs, ``skipped`` once it ended."""
    started = {child.key for child in group.children}
    status = "queued" if group.status in ("running", "paused", "awaiting_input") else "skipped"
    for index, branch in enumerate(group.info.get("branches", [])):
        key = branch.get("key") or f"{group.key}/~{index}"
        if not branch.get("key") and status == "skipped":
            continue  # a plain coroutine: its stages (if it ran any) are in the graph on their own
        if key not in started:
            name = branch.get("name") or f"branch {index + 1}"
            kind = branch.get("kind") or "task"
            group.children.append(GraphNode(key, name, kind, status, None, [], None, None))


def parallel_name(info: dict[str, Any]) -> str:
    """A fan-out as people read it: ``parallel · 3 branches · 2 at a time`` (from its step's info)."""
    branches = len(info.get("branches") or [])
    if not branches:
        return "parallel"
    limit = int(info.get("concurrency") or branches)
    name = f"parallel · {branches} branch{'es' if branches != 1 else ''}"
    return f"{name} · {limit} at a time" if limit < branches else name


def display_status(status: str, info: dict[str, Any]) -> str:
    """The status a graph shows: a completed check whose result did not pass is ``failed`` and a
    step ended by a kill is ``killed`` (the journal keeps ``completed``/``failed``)."""
    check = info.get("check")
    if status == "completed" and check and not check.get("passed"):
        return "failed"
    if status == "failed" and info.get("ended"):
        return str(info["ended"])
    return status


def check_outcome(info: dict[str, Any]) -> str | None:
    """``passed``, ``failed (exit N)`` or ``timed out`` for a check node's info."""
    check = info.get("check")
    if not check:
        return None
    if check.get("timed_out"):
        return "timed out"
    return "passed" if check.get("passed") else f"failed (exit {check.get('code')})"


def verdict_outcome(info: dict[str, Any]) -> str | None:
    """``approve`` or ``reject``, with the blocker count, for a reviewer node's info."""
    verdict = info.get("verdict")
    if not verdict:
        return None
    word = "approve" if verdict.get("approve") else "reject"
    blockers = int(verdict.get("blockers") or 0)
    return f"{word} · {blockers} blocker{'s' if blockers != 1 else ''}" if blockers else word


def _round_members(group: GraphNode) -> list[GraphNode]:
    """The nodes of ``group``'s own round: its children, looking through parallel groups but not
    into nested workflows or stages (each turn is its own group)."""
    members: list[GraphNode] = []
    stack = list(reversed(group.children))
    while stack:
        node = stack.pop()
        members.append(node)
        if node.kind == "parallel":
            stack.extend(reversed(node.children))
    return members


def group_summary(members: list[Any]) -> str | None:
    """A review round in one line (``check passed · 2/3 approve · 1 blocker``): the checks' outcome
    and the reviewers' verdicts among ``members`` (nodes with ``info``, ``kind``, ``status``); None
    when there are neither. A reviewer that failed beside reviewers that returned verdicts counts
    as not approving (see :func:`_failed_reviewers`)."""
    checks = [m.info["check"] for m in members if m.info.get("check")]
    verdicts = [m.info["verdict"] for m in members if m.info.get("verdict")]
    parts: list[str] = []
    if len(checks) == 1:
        parts.append(f"check {check_outcome({'check': checks[0]})}")
    elif checks:
        parts.append(f"{sum(1 for c in checks if c.get('passed'))}/{len(checks)} checks passed")
    if verdicts:
        approvals = sum(1 for v in verdicts if v.get("approve"))
        parts.append(f"{approvals}/{len(verdicts)} approve")
        blockers = sum(int(v.get("blockers") or 0) for v in verdicts)
        if blockers:
            parts.append(f"{blockers} blocker{'s' if blockers != 1 else ''}")
    return " · ".join(parts) or None


def _descendant_usage(group: GraphNode) -> Usage:
    """What the stage steps anywhere under ``group`` spent (nested groups' own rows are not counted)."""
    total = _usage()
    stack = list(group.children)
    while stack:
        node = stack.pop()
        if node.kind in USAGE_KINDS:
            total = total + node.usage
        stack.extend(node.children)
    return total


def _owner(key: str, groups: dict[str, GraphNode]) -> GraphNode | None:
    best: GraphNode | None = None
    for gkey, node in groups.items():
        if key.startswith(gkey + "/") and (best is None or len(gkey) > len(best.key)):
            best = node
    return best


async def load_graph(journal: Journal, run_id: str, files: RunFiles | None = None) -> Graph:
    """The run's graph from its journal (``files``: the run's folder, to read large step outputs)."""
    graph = build_graph(run_id, await journal.load_steps(run_id), files.load_output if files else None)
    run = await journal.get_run(run_id)
    if run is not None:
        settle_ended(graph, run.status, run.finished or run.updated)
    return graph


OPEN_STEP_STATES = frozenset({"running", "awaiting_input", "paused"})


def settle_ended(graph: Graph, run_status: str, ended_at: float | None) -> Graph:
    """A run that ended (failed, killed, cancelled…) ended its open steps with it: a gate still
    awaiting input or a stage still running reads ``killed`` (a kill) or ``cancelled``, and its
    time stops when the run did. The journal keeps the steps as they were."""
    from loopcraft.engine.journal import CLOSED_RUN_STATES  # not at import: see TYPE_CHECKING above

    if run_status not in CLOSED_RUN_STATES:
        return graph
    word = "killed" if run_status == "killed" else "cancelled"
    for node in graph.walk():
        if node.status in OPEN_STEP_STATES:
            node.status = word
            if node.finished is None:
                node.finished = ended_at or time.time()
    return graph
