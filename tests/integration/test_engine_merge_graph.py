"""``ctx.merge`` steps are stages of the graph: a merge node between the worktree stage and what follows
(completed with its branch as name, or failed with the conflict), with stage events like any stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopcraft import Context, workflow
from loopcraft.config import Config
from loopcraft.engine.events import StageAdded, StageStatus
from loopcraft.engine.service import Engine
from loopcraft.errors import LoopcraftError
from tests.integration.test_agent_support import scripted_model, tool_call


@workflow(name="merge-graph")
async def merge_graph(ctx: Context) -> str:
    one = await ctx.task("one", prompt="edit", worktree=True)
    two = await ctx.task("two", prompt="edit", worktree=True)
    await ctx.merge(one)
    try:
        await ctx.merge(two)
    except LoopcraftError:
        pass
    done = await ctx.task("after", prompt="wrap up")
    return done.text


def edit(content: str) -> list[dict[str, object]]:
    return [{"tool_calls": [tool_call("write", path="README.md", content=content)]}, {"text": "edited"}]


async def test_merges_are_graph_nodes_with_edges_and_events(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(git_repo)
    model = scripted_model(stages={"one": edit("# one\n"), "two": edit("# two\n"), "after": [{"text": "ok"}]})
    engine = await Engine.open(git_repo, Config(model=model))
    engine.register(merge_graph)
    seen: list[object] = []
    engine.bus.subscribe(seen.append)
    try:
        info = await engine.run("merge-graph", {})
        assert info.status == "completed", info.error
        graph = await engine.graph(info.id)
    finally:
        await engine.close()
    nodes = list(graph.walk())
    assert [(n.kind, n.name.rsplit("/", 1)[-1]) for n in nodes] == [
        ("task", "one"),
        ("task", "two"),
        ("merge", "merge one"),  # the stage it merges, not its branch
        ("merge", "merge two"),
        ("task", "after"),
    ]
    _, two, merged, conflict, after = nodes
    assert merged.status == "completed" and merged.parents == [two.key]
    assert conflict.status == "failed" and "conflicts in README.md" in (conflict.error or "")
    assert after.parents == [conflict.key]
    added = {e.key: e.kind for e in seen if isinstance(e, StageAdded)}
    assert added[merged.key] == added[conflict.key] == "merge"
    statuses = [(e.key, e.status) for e in seen if isinstance(e, StageStatus)]
    assert (merged.key, "completed") in statuses and (conflict.key, "failed") in statuses
