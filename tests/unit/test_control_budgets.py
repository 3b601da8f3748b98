"""Run budgets: parsing, a budget exhausted during a parallel fan-out stops every branch and the
run resumes with a raised budget; a stage-count budget stops before the next stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopcraft import Context, workflow
from loopcraft.engine.budgets import BudgetError, RunBudget, parse_budget
from loopcraft.engine.tasks import TaskOutcome, TaskSpec, _outcome_failure
from loopcraft.models.types import Usage
from tests.control_fakes import SteppedRunner, open_control_engine


@workflow(name="fan-out")
async def fan_out(ctx: Context) -> list[str]:
    results = await ctx.parallel(*[ctx.spec(f"branch-{i}", prompt="work") for i in range(4)], concurrency=4)
    return [r.text for r in results]


@workflow(name="three")
async def three(ctx: Context) -> list[str]:
    return [(await ctx.task(name)).text for name in ("one", "two", "three")]


def test_parse_budget() -> None:
    assert parse_budget("tokens=5000, dollars=1.5,stages=3") == {"tokens": 5000, "dollars": 1.5, "stages": 3}
    for bad, why in (
        ("tokens", "key=value"),
        ("cats=3", "key=value"),
        ("tokens=x", "whole number"),
        ("seconds=0", "above 0"),
    ):
        with pytest.raises(BudgetError, match=why):
            parse_budget(bad)


def test_run_budget_counts_stages_and_tokens() -> None:
    budget = RunBudget({"tokens": 1000, "stages": 1})
    assert budget.stage_allowed() is None
    assert budget.stage_allowed() == "stages=1"

    budget.charge(Usage(1000, 0))
    assert budget.exceeded() == "tokens=1000"  # named as the user writes it (--budget tokens=...)


def test_budget_limits_are_named_by_their_budget_keys() -> None:
    now = [0.0]
    budget = RunBudget({"seconds": 5, "dollars": 0.5})
    budget._clock, budget.started = (lambda: now[0]), 0.0
    budget.charge(Usage(0, 0, cost_usd=0.5))
    assert budget.exceeded() == "dollars=0.5"
    assert budget.stage_allowed() == "dollars=0.5"
    budget = RunBudget({"seconds": 5})
    budget._clock, budget.started = (lambda: now[0]), 0.0
    now[0] = 6.0
    assert budget.exceeded() == "seconds=5"


def test_task_budget_stop_names_the_task_budget_key() -> None:
    spec = TaskSpec(name="fix", prompt="p", budget={"turns": 3, "tokens": 100})
    for agent, user in (("max_turns=3", "turns=3"), ("max_tokens=100", "tokens=100")):
        outcome = TaskOutcome("", status="budget_exceeded", reason=f"budget exceeded: {agent}")
        failure = _outcome_failure(spec, outcome)
        assert str(failure) == f"stage 'fix' ended budget_exceeded: budget exceeded: {user}"
    # a limit the task's budget did not set comes from the agent config (agent.max_tool_calls)
    outcome = TaskOutcome("", status="budget_exceeded", reason="budget exceeded: max_tool_calls=9")
    assert str(_outcome_failure(spec, outcome)).endswith("max_tool_calls=9")


async def test_budget_exhausted_in_fan_out_stops_every_branch(git_repo: Path) -> None:
    runner = SteppedRunner(default_steps=10)  # 4 branches x 10 steps x 110 tokens would be 4,400
    engine = await open_control_engine(git_repo, runner)
    engine.register(fan_out)
    info = await engine.run("fan-out", {}, budget={"tokens": 900})
    assert info.status == "budget_exceeded" and info.exit_code == 6, info.error
    assert "run budget exceeded" in (info.error or "")
    assert len(runner.model_calls) < 4 * 10
    assert all(s.done_steps < 10 for s in runner.sessions.values())  # no branch ran to its end
    steps = {r.name: r.status for r in await engine.journal.load_steps(info.id) if r.kind == "task"}
    assert "completed" not in steps.values() and "failed" not in steps.values()

    runner.model_calls.clear()
    resumed = await engine.resume(info.id, budget={"tokens": 100_000})
    assert resumed.status == "completed", resumed.error
    assert len(resumed.output) == 4
    assert (await engine.journal.get_run(info.id)).budget == {"tokens": 100_000}  # type: ignore[union-attr]
    await engine.close()


async def test_stage_budget_stops_before_the_next_stage(git_repo: Path) -> None:
    runner = SteppedRunner(default_steps=1)
    engine = await open_control_engine(git_repo, runner)
    engine.register(three)
    info = await engine.run("three", {}, budget={"stages": 2})
    assert info.status == "budget_exceeded"
    assert "stages=2" in (info.error or "") and "'three'" in (info.error or "")
    assert sorted(runner.sessions) == ["one", "two"]
    resumed = await engine.resume(info.id, budget={"stages": 3})
    assert resumed.status == "completed"
    assert resumed.output == ["one done", "two done", "three done"]
    assert runner.model_calls.count("one") == 1  # replayed, not re-run
    await engine.close()
