"""Runtime limits: every limit ends with one wrap-up turn without tools, then
``budget_exceeded`` naming the limit; a shared budget bounds several agents."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from loopcraft.agent.budget import Budget, Limits
from loopcraft.agent.tools.base import ToolContext, ToolResult
from loopcraft.config import AgentConfig
from loopcraft.models.types import Usage
from tests.integration.test_agent_support import (
    RecordingClient,
    make_agent,
    priced_config,
    scripted_client,
    scripted_model,
    tool_call,
    tool_outputs,
)

WRAP = {"text": "Wrapped up: did some, rest remains."}


def looping_model(n: int = 20, **turn: Any) -> str:
    """A model that lists the directory with a new argument every turn (never repeats)."""
    turns = [{"tool_calls": [tool_call("ls", path=".", note=i)], **turn} for i in range(n)]
    return scripted_model(stages={"*": turns})


def assert_wrapped_up(client: RecordingClient, result: Any, limit: str) -> None:
    assert result.status == "budget_exceeded"
    assert result.reason == f"budget exceeded: {limit}"
    last = client.requests[-1]
    assert last.tools == []  # the wrap-up turn offers no tools
    assert last.messages[-1]["content"].startswith(f"Budget exhausted ({limit})")


def test_limits_from_config_with_overrides() -> None:
    limits = Limits.from_config(AgentConfig(max_turns=7, max_dollars=2.0), Limits(max_turns=3))
    assert (limits.max_turns, limits.max_dollars, limits.max_tool_calls) == (3, 2.0, 500)


def test_budget_names_the_first_exhausted_limit() -> None:
    budget = Budget(Limits(max_turns=2, max_tokens=100))
    assert budget.exceeded() is None
    budget.add_turn()
    budget.charge(Usage(input_tokens=60, output_tokens=50))
    assert budget.exceeded() == "max_tokens=100"
    budget.add_turn()
    assert budget.exceeded() == "max_turns=2"
    assert budget.exceeded(counts=False) == "max_tokens=100"


def test_wall_time_uses_the_clock() -> None:
    now = [100.0]
    budget = Budget(Limits(wall_time=5), clock=lambda: now[0])
    assert budget.exceeded() is None
    now[0] = 105.0
    assert budget.exceeded() == "wall_time=5s"


async def test_max_turns(tmp_path: Path) -> None:
    client = scripted_client()
    model = scripted_model(stages={"*": [*([{"tool_calls": [tool_call("ls", path=".")]}] * 3), WRAP]})
    agent = make_agent(
        tmp_path, model, client=client, limits=Limits(max_turns=3), config=AgentConfig(repeat_limit=10)
    )
    result = await agent.run("go")
    assert_wrapped_up(client, result, "max_turns=3")
    assert result.text == WRAP["text"] and len(client.requests) == 4


async def test_max_tool_calls_skips_the_rest(tmp_path: Path) -> None:
    client = scripted_client()
    calls = [tool_call("ls", path=".", n=i) for i in range(3)]
    model = scripted_model(stages={"*": [{"tool_calls": calls}, WRAP]})
    agent = make_agent(tmp_path, model, client=client, limits=Limits(max_tool_calls=2))
    result = await agent.run("go")
    assert_wrapped_up(client, result, "max_tool_calls=2")
    outputs = tool_outputs(agent)
    assert len(outputs) == 3 and outputs[2] == "skipped: budget exhausted (max_tool_calls=2)"
    assert result.tool_calls == 2


async def test_max_tokens_checked_after_the_model_call(tmp_path: Path) -> None:
    client = scripted_client()
    model = looping_model(usage={"input": 600, "output": 100})
    agent = make_agent(tmp_path, model, client=client, limits=Limits(max_tokens=1000))
    result = await agent.run("go")
    assert_wrapped_up(client, result, "max_tokens=1000")
    # turn 2 crossed the limit: its tool call was skipped, not run
    assert tool_outputs(agent)[-1] == "skipped: budget exhausted (max_tokens=1000)"
    assert result.tool_calls == 1


async def test_max_dollars(tmp_path: Path) -> None:
    model = looping_model(usage={"input": 1_000_000, "output": 0})
    client = scripted_client(priced_config(model, input_per_mtok=0.5, output_per_mtok=1.0))
    agent = make_agent(tmp_path, model, client=client, limits=Limits(max_dollars=1.2))
    result = await agent.run("go")
    assert_wrapped_up(client, result, "max_dollars=1.2")
    # $0.50 a turn: the third crosses $1.20 (its tool call is skipped), then the wrap-up
    assert result.usage.cost_usd == pytest.approx(2.0) and len(client.requests) == 4
    assert result.tool_calls == 2


class SlowTool:
    name = "slow"
    description = "sleeps"
    parameters: dict[str, Any] = {"type": "object", "properties": {}}
    read_only = True

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        await asyncio.sleep(0.3)
        return ToolResult("slept")


async def test_wall_time(tmp_path: Path) -> None:
    client = scripted_client()
    model = scripted_model(stages={"*": [{"tool_calls": [tool_call("slow")]}] * 5})
    agent = make_agent(tmp_path, model, client=client, tools=[SlowTool()], limits=Limits(wall_time=0.2))
    result = await agent.run("go")
    assert_wrapped_up(client, result, "wall_time=0.2s")
    assert tool_outputs(agent).count("slept") <= 1  # timing-tolerant: the first call may be slow


async def test_shared_budget_bounds_parallel_agents(tmp_path: Path) -> None:
    shared = Budget(Limits(max_turns=4))
    model = looping_model()
    agents = [make_agent(tmp_path, model, budget=shared) for _ in range(2)]
    results = await asyncio.gather(*(a.run("go") for a in agents))
    assert {r.status for r in results} == {"budget_exceeded"}
    assert all(r.reason == "budget exceeded: max_turns=4" for r in results)
    own_turns = sum(r.turns for r in results)
    # checked before each call: at most one call per agent may be in flight when the 4th lands,
    # then each agent gets its wrap-up turn
    assert own_turns == shared.turns and 4 + 2 <= shared.turns <= 4 + 1 + 2
