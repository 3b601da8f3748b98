"""``build_graph`` rolls usage up from stage steps: a group's tokens are its descendant task and
stage-prompt rows' (never a workflow row's own usage), nested groups however deep."""

from __future__ import annotations

from typing import Any

import pytest

from loopcraft.engine.graph import build_graph
from loopcraft.engine.journal import StepRow

OUTER = "root/0:workflow:outer"
INNER = f"{OUTER}/1:workflow:inner"
STAGE = f"{INNER}/1:stage:chat"


def _row(seq: int, key: str, kind: str, tokens: int = 0) -> StepRow:
    usage: dict[str, Any] | None = {"input_tokens": tokens, "cost_usd": tokens / 1000} if tokens else None
    return StepRow("r1", key, key, kind, key.rsplit(":", 1)[-1], "completed", usage=usage, seq=seq)


def _steps() -> list[StepRow]:
    return [
        _row(0, OUTER, "workflow", 99999),  # the run's spend while it ran, siblings' included: ignored
        _row(1, f"{OUTER}/0:task:a", "task", 100),
        _row(2, INNER, "workflow"),
        _row(3, f"{INNER}/0:task:b", "task", 200),
        _row(4, STAGE, "stage"),
        _row(5, f"{STAGE}/0:stage_prompt:chat", "stage_prompt", 30),
        _row(6, f"{STAGE}/1:stage_prompt:chat", "stage_prompt", 40),
        _row(7, f"{INNER}/2:tool:t", "tool"),
        _row(8, "root/1:task:sibling", "task", 5000),
    ]


def test_groups_sum_their_descendant_stages_inner_first() -> None:
    graph = build_graph("r1", _steps())
    nodes = {n.key: n for n in graph.walk()}
    assert nodes[STAGE].tokens == 70
    assert nodes[INNER].tokens == 270
    assert nodes[OUTER].tokens == 370
    assert nodes[OUTER].cost == pytest.approx(0.37)
    assert nodes["root/1:task:sibling"].tokens == 5000
    assert [n.key for n in graph.nodes] == [OUTER, "root/1:task:sibling"]
