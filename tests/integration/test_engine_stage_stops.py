"""A long-lived stage's prompt that stops without a result (the run's budget ran out) keeps what its agent
spent in the journal, and a resume with a slightly raised budget charges what was already spent, so the
run stops again soon instead of spending the raised limit on top."""

from __future__ import annotations

from pathlib import Path

from loopcraft import Context, workflow
from loopcraft.config import Config
from loopcraft.engine.runtime import spent_total
from loopcraft.engine.service import Engine
from loopcraft.models.types import Usage
from tests.integration.test_agent_support import scripted_model, tool_call

TURN = {"input": 250, "output": 50}  # 300 tokens a model turn


@workflow(name="long-chat")
async def long_chat(ctx: Context) -> str:
    stage = ctx.stage("helper")
    result = await stage.prompt("work for a long time")
    return result.text


@workflow(name="long-task")
async def long_task(ctx: Context) -> str:
    result = await ctx.task("worker", prompt="work for a long time")
    return result.text


def _model() -> str:
    work = [{"tool_calls": [tool_call("ls", path=f"dir-{n}")], "usage": TURN} for n in range(40)]
    return scripted_model([*work, {"text": "done", "usage": TURN}])


def _prompt_tokens(steps: list, kind: str = "stage_prompt") -> int:
    return sum(Usage.from_dict(r.usage).total_tokens for r in steps if r.kind == kind and r.usage)


async def test_a_stage_prompt_stopped_by_the_budget_keeps_its_usage(git_repo: Path) -> None:
    engine = await Engine.open(git_repo, Config(model=_model()))
    engine.register(long_chat)
    info = await engine.run("long-chat", {}, budget={"tokens": 1000})
    assert info.status == "budget_exceeded", info.error
    steps = await engine.journal.load_steps(info.id)
    spent = _prompt_tokens(steps)
    assert spent >= 1000
    assert info.usage.total_tokens == spent_total(steps).total_tokens == spent
    await engine.close()


async def test_resume_with_a_slightly_raised_budget_charges_what_was_spent(git_repo: Path) -> None:
    for name, wf, kind in (("long-chat", long_chat, "stage_prompt"), ("long-task", long_task, "task")):
        engine = await Engine.open(git_repo, Config(model=_model()))
        engine.register(wf)
        info = await engine.run(name, {}, budget={"tokens": 1000})
        assert info.status == "budget_exceeded", info.error
        first = info.usage.total_tokens
        assert first >= 1000

        raised = first + 600  # two more turns at most
        resumed = await engine.resume(info.id, budget={"tokens": raised})
        assert resumed.status == "budget_exceeded", (name, resumed.error)
        steps = await engine.journal.load_steps(info.id)
        total = spent_total(steps).total_tokens
        assert resumed.usage.total_tokens == total == _prompt_tokens(steps, kind)
        assert first < total <= raised + 300, (name, first, total)
        await engine.close()
