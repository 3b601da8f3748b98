"""A fan-out of awaitables of ``ctx`` calls on a real journal: ``ctx.parallel(as_verdict(ctx.task(...)))``
(review-change's reviewers) and a check beside tasks, one at a time. The group holds its real
branches (no "skipped" placeholders), each branch starts after the parallel's parents, and the
join is on the first stage after the fan-out, not on the last branch."""

from __future__ import annotations

from pathlib import Path

from loopcraft import Context, as_verdict, workflow
from loopcraft.engine.graph import load_graph
from tests.engine_fakes import open_engine


@workflow(name="fan-wrapped")
async def fan_wrapped(ctx: Context) -> str:
    await ctx.task("plan", prompt="plan")
    await ctx.parallel(
        *[as_verdict(ctx.task(f"rev-{i}", prompt="review")) for i in range(3)],
        ctx.check("slow", "exit 0"),
        concurrency=1,
        fail_fast=False,
    )
    result = await ctx.check("lint", "exit 0")
    return str(result.passed)


async def test_wrapped_awaitable_branches_sit_under_their_group_and_join_after_it(git_repo: Path) -> None:
    engine = await open_engine(git_repo)
    try:
        engine.register(fan_wrapped)
        info = await engine.run("fan-wrapped", {})
        assert info.status == "completed", info.error
        graph = await load_graph(engine.journal, info.id)
    finally:
        await engine.close()
    plan, group, lint = graph.nodes
    assert group.kind == "parallel"
    branches = group.children
    assert [(c.name, c.status) for c in branches] == [
        ("rev-0", "completed"),
        ("rev-1", "completed"),
        ("rev-2", "completed"),
        ("slow", "completed"),
    ]
    assert all(c.parents == [plan.key] for c in branches)  # not after the sibling before it
    assert sorted(lint.parents) == sorted(c.key for c in branches)  # the join of 4
