"""Workflow-level budgets (``@workflow(budget=...)``) and nested-workflow budgets
(``ctx.workflow(child, budget=...)``): enforced across the child's stages, parallel ones too;
the run stops as ``budget_exceeded`` and resumes with a raised budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopcraft import Context, workflow
from loopcraft.engine.budgets import BudgetError, RunBudget, nested_budget
from loopcraft.models.types import Usage
from tests.control_fakes import SteppedRunner, open_control_engine


@workflow(name="capped-fan-out", budget={"tokens": 900})
async def capped_fan_out(ctx: Context) -> list[str]:
    results = await ctx.parallel(*[ctx.spec(f"branch-{i}", prompt="work") for i in range(3)], concurrency=3)
    return [r.text for r in results]


@workflow(name="child-fan-out")
async def child_fan_out(ctx: Context, width: int) -> list[str]:
    specs = [ctx.spec(f"child-{i}", prompt="work") for i in range(width)]
    return [r.text for r in await ctx.parallel(*specs, concurrency=width)]


@workflow(name="parent")
async def parent(ctx: Context) -> dict:
    setup = await ctx.task("setup")
    child = await ctx.workflow(child_fan_out, budget={"tokens": 700}, width=3)
    return {"setup": setup.text, "child": child}


@workflow(name="two-stages", budget={"stages": 1})
async def two_stages(ctx: Context) -> list[str]:
    return [(await ctx.task(name)).text for name in ("first", "second")]


@workflow(name="parent-of-two")
async def parent_of_two(ctx: Context) -> list[str]:
    before = await ctx.task("before")
    return [before.text, *await ctx.workflow(two_stages)]


def plain(text: str) -> str:
    """A fake stage's text without the steering it was given (the "budget raised" note)."""
    return text.split(" +steer:")[0]


def test_workflow_budget_is_validated_when_declared() -> None:
    assert capped_fan_out.extras["budget"] == {"tokens": 900}
    with pytest.raises(BudgetError, match="cats=1"):

        @workflow(budget={"cats": 1})
        async def bad(ctx: Context) -> None: ...


def test_nested_budget_charges_every_budget_above() -> None:
    run = RunBudget({"tokens": 1000})
    child = nested_budget(run, {"tokens": 5000}, "workflow 'c'")
    assert child is not None and child.root is run
    child.charge(Usage(600, 0))
    assert run.usage.total_tokens == 600 and child.exceeded() is None
    child.charge(Usage(400, 0))
    assert child.exceeded() == "tokens=1000"  # the run's own limit, reached through the child
    run = RunBudget(None)
    small = nested_budget(run, {"stages": 1}, "workflow 'c'")
    assert small is not None
    assert small.stage_allowed() is None and run.stages == 1
    assert small.stage_allowed() == "stages=1 in workflow 'c'"
    assert nested_budget(run, None, "x") is None
    lifted = nested_budget(run, {"tokens": 10, "stages": 2}, "x", raised={"tokens": 50, "stages": 1})
    assert lifted is not None and lifted.raw == {"tokens": 50, "stages": 2}


async def test_workflow_level_budget_stops_the_run_and_resumes_raised(git_repo: Path) -> None:
    runner = SteppedRunner(default_steps=10)
    engine = await open_control_engine(git_repo, runner)
    engine.register(capped_fan_out)
    info = await engine.run("capped-fan-out", {})
    assert info.status == "budget_exceeded", info.error
    assert "(tokens=900)" in (info.error or "") and "max_tokens" not in (info.error or "")
    assert all(s.done_steps < 10 for s in runner.sessions.values())
    assert (await engine.journal.get_run(info.id)).budget == {"tokens": 900}  # type: ignore[union-attr]

    resumed = await engine.resume(info.id, budget={"tokens": 100_000})
    assert resumed.status == "completed", resumed.error
    assert [plain(t) for t in resumed.output] == ["branch-0 done", "branch-1 done", "branch-2 done"]
    await engine.close()


async def test_nested_budget_stops_every_parallel_branch_of_the_child(git_repo: Path) -> None:
    runner = SteppedRunner(default_steps=10, steps={"setup": 1})
    engine = await open_control_engine(git_repo, runner)
    engine.register(parent, child_fan_out)
    info = await engine.run("parent", {})  # no run-level budget: only the child's 700 tokens
    assert info.status == "budget_exceeded" and info.exit_code == 6, info.error
    assert "in workflow 'child-fan-out'" in (info.error or "")
    children = [s for name, s in runner.sessions.items() if name.startswith("child-")]
    assert len(children) == 3 and all(s.done_steps < 10 for s in children)
    spent = sum(s.done_steps for s in children) * 110
    assert 700 <= spent < 700 + 3 * 110  # each branch stops at its next step once the child is spent
    steps = {r.name: r.status for r in await engine.journal.load_steps(info.id)}
    assert steps["setup"] == "completed" and steps["child-fan-out"] == "budget_exceeded"

    runner.model_calls.clear()
    resumed = await engine.resume(info.id, budget={"tokens": 100_000})
    assert resumed.status == "completed", resumed.error
    assert resumed.output["setup"] == "setup done"
    assert [plain(t) for t in resumed.output["child"]] == [f"child-{i} done" for i in range(3)]
    assert "setup" not in runner.model_calls  # replayed from the journal
    await engine.close()


async def test_nested_stage_budget_from_the_child_declaration(git_repo: Path) -> None:
    runner = SteppedRunner(default_steps=1)
    engine = await open_control_engine(git_repo, runner)
    engine.register(parent_of_two, two_stages)
    info = await engine.run("parent-of-two", {})
    assert info.status == "budget_exceeded", info.error
    assert "stages=1 in workflow 'two-stages'" in (info.error or "") and "'second'" in (info.error or "")
    assert sorted(runner.sessions) == ["before", "first"]

    resumed = await engine.resume(info.id, budget={"stages": 5})
    assert resumed.status == "completed", resumed.error
    assert resumed.output == ["before done", "first done", "second done"]
    assert runner.model_calls.count("first") == 1
    await engine.close()
