"""The ``workflow`` tool's dynamic actions on a real engine and the scripted model: one-line
argument errors, the stage cap, budgets capped by engine.dynamic_budget and the session, a stage
that uses the tool past engine.max_depth, and the inspect actions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loopcraft.agent.tools.base import ToolContext
from loopcraft.config import Config
from loopcraft.engine.service import Engine
from loopcraft.engine.workflow_tool import WorkflowTool
from loopcraft.models.scripted import Script, register_script, unregister_script


@pytest.fixture
def nesting_script() -> Any:
    inner = {"action": "task", "name": "inner", "prompt": "go deeper"}
    register_script(
        "nest",
        Script.model_validate(
            {
                "stages": {
                    "outer": [
                        {"tool_calls": [{"name": "workflow", "arguments": inner}]},
                        {"text": "outer done"},
                    ],
                    "inner": [{"text": "inner done"}],
                    "*": [{"text": "ok"}],
                }
            }
        ),
    )
    yield
    unregister_script("nest")


def _config(**engine: Any) -> Config:
    return Config.model_validate({"model": "scripted/nest", "engine": engine})


async def test_bad_arguments_are_one_line_errors_the_model_can_act_on(
    git_repo: Path, nesting_script: Any
) -> None:
    async with await Engine.open(git_repo, _config()) as engine:
        tool = WorkflowTool(engine)
        ctx = ToolContext(workspace=git_repo)
        cases = [
            ({"action": "task", "name": "x"}, "prompt"),
            ({"action": "parallel"}, "needs 'stages'"),
            ({"action": "parallel", "stages": [{"name": "a", "prompt": "p", "colour": 1}]}, "colour"),
            (
                {"action": "chain", "stages": [{"name": "a", "prompt": "p"}, {"name": "a", "prompt": "q"}]},
                "unique",
            ),
            ({"action": "task", "name": "a b", "prompt": "p"}, "name"),
            ({"action": "task", "name": "a", "prompt": "p", "context": "old"}, "context"),
        ]
        for args, word in cases:
            result = await tool.run(args, ctx)
            assert result.is_error and word in result.output and "\n" not in result.output, result.output
        assert await engine.runs() == []


async def test_the_stage_cap_and_the_budget_caps_stop_a_call_that_asks_for_more(
    git_repo: Path, nesting_script: Any
) -> None:
    config = _config(max_dynamic_stages=2, dynamic_budget={"tokens": 1000})
    async with await Engine.open(git_repo, config) as engine:
        tool = WorkflowTool(engine, remaining=lambda: {"dollars": 0.5})
        ctx = ToolContext(workspace=git_repo)
        three = [{"name": f"r{i}", "prompt": "review"} for i in range(3)]
        capped = await tool.run({"action": "parallel", "stages": three}, ctx)
        assert (
            capped.is_error and "at most 2" in capped.output and "engine.max_dynamic_stages" in capped.output
        )
        over = await tool.run({"action": "task", "name": "a", "prompt": "p", "budget": {"tokens": 5000}}, ctx)
        assert over.is_error and "engine.dynamic_budget" in over.output and "at most 1000" in over.output
        money = await tool.run({"action": "task", "name": "a", "prompt": "p", "budget": {"dollars": 2}}, ctx)
        assert money.is_error and "remaining budget" in money.output and "at most 0.5" in money.output
        assert await engine.runs() == []
        ok = await tool.run({"action": "task", "name": "a", "prompt": "p", "budget": {"tokens": 800}}, ctx)
        assert not ok.is_error, ok.output
        (run,) = await engine.runs()
        row = await engine.journal.get_run(run.id)
        assert row is not None and row.budget == {"tokens": 800.0, "dollars": 0.5}
        assert run.status == "completed" and "## a" in ok.output


async def test_a_stage_using_the_tool_past_max_depth_is_refused(git_repo: Path, nesting_script: Any) -> None:
    async with await Engine.open(git_repo, _config(max_depth=1)) as engine:
        tool = WorkflowTool(engine)
        ctx = ToolContext(workspace=git_repo)
        result = await tool.run(
            {"action": "task", "name": "outer", "prompt": "nest", "tools": ["workflow"]}, ctx
        )
        assert not result.is_error, result.output
        assert "outer done" in result.output
        (run,) = await engine.runs()  # the inner run was refused: only the outer one exists
        entries = await engine.stage_transcript(run.id, "outer")
        (refusal,) = [e for e in entries if e["type"] == "tool_result" and e["name"] == "workflow"]
        assert refusal["is_error"] and "past the maximum depth (1; engine.max_depth)" in refusal["output"]
        stages = await tool.run({"action": "stages", "run_id": run.id}, ctx)
        assert "outer" in stages.output and "completed" in stages.output
        transcript = await tool.run(
            {"action": "transcript", "run_id": run.id, "stage": "outer", "last": 2}, ctx
        )
        assert len(transcript.output.splitlines()) == 2 and "outer done" in transcript.output


async def test_a_stage_within_max_depth_starts_its_own_dynamic_run(
    git_repo: Path, nesting_script: Any
) -> None:
    async with await Engine.open(git_repo, _config(max_depth=2)) as engine:
        tool = WorkflowTool(engine)
        result = await tool.run(
            {"action": "task", "name": "outer", "prompt": "nest", "tools": ["workflow"]},
            ToolContext(workspace=git_repo),
        )
        assert not result.is_error, result.output
        runs = await engine.runs()
        assert len(runs) == 2 and all(r.workflow.startswith("dynamic:") for r in runs)
        assert {r.status for r in runs} == {"completed"}
