"""A nested workflow node in the journal's graph shows what its own stages spent: not a parallel
sibling's tokens (its row's usage covers the whole run's spend while it ran), and with its nested
workflows' stages included however deep (real engine, scripted model with fixed token counts)."""

from __future__ import annotations

from pathlib import Path

from loopcraft import Context, workflow
from loopcraft.config import Config
from loopcraft.engine.service import Engine
from loopcraft.models.types import Usage
from tests.integration.test_agent_support import scripted_model


@workflow(name="deepest")
async def deepest(ctx: Context) -> str:
    return (await ctx.task("deep-stage", prompt="deep")).text


@workflow(name="middle")
async def middle(ctx: Context) -> str:
    first = await ctx.task("middle-one", prompt="one")
    second = await ctx.task("middle-two", prompt="two")
    return first.text + second.text + await ctx.workflow(deepest)


@workflow(name="top")
async def top(ctx: Context) -> list[str]:
    nested, sibling = await ctx.parallel(ctx.workflow(middle), ctx.task("sibling", prompt="side"))
    after = await ctx.task("after", prompt="after")
    return [nested, sibling.text, after.text]


def _model() -> str:
    def turn(text: str, tokens: int) -> list[dict[str, object]]:
        return [{"text": text, "usage": {"input": tokens, "output": tokens // 10}}]

    return scripted_model(
        stages={
            "sibling": turn("s", 5000),
            "after": turn("a", 7000),
            "middle-one": turn("m1", 100),
            "middle-two": turn("m2", 200),
            "deep-stage": turn("d", 300),
        },
        pace=0.005,
    )


async def test_nested_workflow_tokens_are_only_its_own_stages(git_repo: Path) -> None:
    engine = await Engine.open(git_repo, Config(model=_model()))
    engine.register(top, middle, deepest)
    info = await engine.run("top", {})
    assert info.status == "completed", info.error
    assert info.usage.total_tokens == 5500 + 7700 + 110 + 220 + 330

    graph = await engine.graph(info.id)
    nodes = {n.name: n for n in graph.walk()}
    assert nodes["deepest"].tokens == 330
    assert nodes["middle"].tokens == 110 + 220 + 330  # not the sibling's 5500
    assert nodes["sibling"].tokens == 5500
    assert nodes["middle"].cost == sum(nodes[n].cost for n in ("middle-one", "middle-two", "deep-stage"))
    assert graph.to_dict()["nodes"] == [n.to_dict() for n in graph.nodes]
    rows = {r.name: r for r in await engine.journal.load_steps(info.id)}
    assert Usage.from_dict(rows["middle"].usage).total_tokens == 110 + 220 + 330  # replay charges this
    await engine.close()
