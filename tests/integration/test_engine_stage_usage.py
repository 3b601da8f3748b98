"""A long-lived stage's prompts each record what that prompt spent (the agent session's usage is a running
total), so a run that prompts one stage several times counts every token once — also across a resume."""

from __future__ import annotations

from pathlib import Path

from loopcraft import Context, workflow
from loopcraft.config import Config
from loopcraft.engine.runtime import spent_total
from loopcraft.engine.service import Engine
from loopcraft.models.types import Usage
from tests.integration.test_agent_support import scripted_model

FLAGS: dict[str, bool] = {}


@workflow(name="chatty")
async def chatty(ctx: Context) -> list[str]:
    stage = ctx.stage("helper")
    first = await stage.prompt("one")
    second = await stage.prompt("two")
    if FLAGS.get("crash"):
        raise RuntimeError("crash after two prompts")
    third = await stage.prompt("three")
    return [first.text, second.text, third.text]


def _model() -> str:
    return scripted_model(
        [
            {"text": "a", "usage": {"input": 100, "output": 10}},
            {"text": "b", "usage": {"input": 200, "output": 20}},
            {"text": "c", "usage": {"input": 300, "output": 30}},
        ]
    )


def _prompt_tokens(steps: list) -> list[int]:
    rows = sorted((r for r in steps if r.kind == "stage_prompt"), key=lambda r: r.started or 0)
    return [Usage.from_dict(r.usage).total_tokens for r in rows]


async def test_each_prompt_records_its_own_usage(git_repo: Path) -> None:
    engine = await Engine.open(git_repo, Config(model=_model()))
    engine.register(chatty)
    info = await engine.run("chatty", {})
    assert info.status == "completed", info.error
    steps = await engine.journal.load_steps(info.id)
    assert _prompt_tokens(steps) == [110, 220, 330]
    assert info.usage.total_tokens == spent_total(steps).total_tokens == 660
    await engine.close()


async def test_usage_stays_per_prompt_after_a_resume(git_repo: Path) -> None:
    FLAGS["crash"] = True
    engine = await Engine.open(git_repo, Config(model=_model()))
    engine.register(chatty)
    info = await engine.run("chatty", {})
    assert info.status == "failed"
    await engine.close()

    FLAGS["crash"] = False
    engine = await Engine.open(git_repo, Config(model=_model()))
    engine.register(chatty)
    resumed = await engine.resume(info.id)
    assert resumed.status == "completed", resumed.error
    steps = await engine.journal.load_steps(info.id)
    assert _prompt_tokens(steps) == [110, 220, 330]
    assert resumed.usage.total_tokens == 660
    await engine.close()
