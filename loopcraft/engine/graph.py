"""The stage graph of a run, built from the journal's steps: nodes with status, model, time,
tokens and cost; parent edges from control flow; nested workflows as children of their node."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from loopcraft.engine.journal import Journal, StepRow
from loopcraft.models.types import Usage

# Step kinds shown as nodes (chain and parallel are structure only: their children are the nodes).
GRAPH_KINDS = frozenset({"task", "tool", "workflow", "stage", "prompt", "stage_prompt", "merge", "check"})
GROUP_KINDS = frozenset({"workflow", "stage"})
# Steps whose usage is their own (the one definition; the runtime imports it from here).
# A group's usage is always the sum of these among its descendants, never its own row's.
USAGE_KINDS = frozenset({"task", "stage_prompt"})


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
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    children: list[GraphNode] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)  # the stage's grant: protected paths, "network"

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
            "grants": self.grants,
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


def build_graph(run_id: str, steps: list[StepRow]) -> Graph:
    """Nodes for stage steps; each nested under the closest group (workflow/stage) whose key prefixes it."""
    graph = Graph(run_id)
    groups: dict[str, GraphNode] = {}
    for step in sorted(steps, key=lambda s: s.seq):
        if step.kind not in GRAPH_KINDS:
            continue
        node = GraphNode(
            step.key,
            step.name,
            step.kind,
            step.status,
            step.model,
            list(step.parents),
            step.started,
            step.finished,
            Usage.from_dict(step.usage),
            (step.error or {}).get("message") if step.error else None,
            grants=list(step.grants),
        )
        owner = _owner(step.key, groups)
        (owner.children if owner else graph.nodes).append(node)
        if step.kind in GROUP_KINDS:
            groups[step.key] = node
    for group in groups.values():
        group.usage = _descendant_usage(group)
    return graph


def _descendant_usage(group: GraphNode) -> Usage:
    """What the stage steps anywhere under ``group`` spent (nested groups' own rows are not counted)."""
    total = Usage()
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


async def load_graph(journal: Journal, run_id: str) -> Graph:
    return build_graph(run_id, await journal.load_steps(run_id))
