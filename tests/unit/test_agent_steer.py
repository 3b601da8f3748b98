"""Steering, follow-ups, interrupts and the safe-point hook."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from loopcraft.agent.events import AgentEvent
from loopcraft.agent.loop import Agent, AgentResult
from loopcraft.agent.tools.base import ToolContext, ToolResult
from tests.integration.test_agent_support import (
    EventLog,
    NumberedTool,
    make_agent,
    scripted_client,
    scripted_model,
    tool_call,
    tool_outputs,
)


class GateTool(NumberedTool):
    """A side-effecting tool that signals when it starts and waits to be released."""

    def __init__(self, name: str = "gate", hold: float = 0.0) -> None:
        super().__init__(name, read_only=False)
        self.hold = hold
        self.started = asyncio.Event()
        self.ran: list[int] = []

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        self.ran.append(args.get("n", 0))
        self.started.set()
        await asyncio.sleep(self.hold)
        return ToolResult(f"gate {args.get('n')} passed")


class StuckTool(GateTool):
    """Never finishes on its own: waits for ctx.cancel (like bash killing its process group)."""

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        self.started.set()
        await ctx.cancel.wait()
        return ToolResult("stopped on cancel", is_error=True)


async def interrupt_promptly(agent: Agent, task: asyncio.Task[AgentResult]) -> None:
    """Interrupt ``agent`` and check that its running ``task`` ends as interrupted within a second."""
    started = time.monotonic()
    agent.interrupt()
    result = await task
    assert time.monotonic() - started < 1.0
    assert result.status == "interrupted"


async def test_steer_skips_queued_calls_and_delivers_the_message(tmp_path: Path) -> None:
    gate = GateTool(hold=0.2)
    model = scripted_model(
        [
            {"tool_calls": [tool_call("gate", n=1), tool_call("gate", n=2), tool_call("gate", n=3)]},
            {"text": "ok, switching to plan B"},
        ]
    )
    events = EventLog()
    client = scripted_client()
    agent = make_agent(tmp_path, model, tools=[gate], on_event=events, client=client)
    task = asyncio.create_task(agent.run("do three things"))
    await gate.started.wait()
    agent.steer("stop that, do plan B")
    result = await task
    assert result.status == "completed" and result.text == "ok, switching to plan B"
    assert gate.ran == [1]
    assert tool_outputs(agent) == [
        "gate 1 passed",
        "skipped: the user sent a steering message",
        "skipped: the user sent a steering message",
    ]
    # the steering message follows the tool results and reached the model
    assert client.requests[-1].messages[-1] == {"role": "user", "content": "stop that, do plan B"}
    steered = [e for e in events if e.kind == "steered"]
    assert len(steered) == 1 and steered[0].skipped_tool_calls == 2


async def test_steer_after_a_plain_answer_continues(tmp_path: Path) -> None:
    model = scripted_model([{"text": "first answer", "pace": 0.05}, {"text": "revised answer"}], chunk_size=2)
    streaming = asyncio.Event()
    agent = make_agent(
        tmp_path, model, on_event=lambda e: streaming.set() if e.kind == "text_delta" else None
    )
    task = asyncio.create_task(agent.run("q"))
    await streaming.wait()  # while the first answer streams
    agent.steer("also mention tests")
    result = await task
    assert result.text == "revised answer"


async def test_follow_up_is_delivered_when_the_agent_would_stop(tmp_path: Path) -> None:
    model = scripted_model([{"text": "answer one"}, {"text": "answer two"}])
    events = EventLog()
    agent = make_agent(tmp_path, model, on_event=events)
    agent.follow_up("and then?")
    result = await agent.run("start")
    assert result.text == "answer two"
    users = [m["content"] for m in agent.messages if m["role"] == "user"]
    assert users == ["start", "and then?"]
    assert "follow_up_queued" in events.kinds()


async def test_interrupt_cancels_a_model_call_within_a_second(tmp_path: Path) -> None:
    model = scripted_model([{"text": "x" * 40, "pace": 0.1}, {"text": "resumed answer"}], chunk_size=4)
    agent = make_agent(tmp_path, model)
    task = asyncio.create_task(agent.run("talk slowly"))
    await asyncio.sleep(0.35)
    await interrupt_promptly(agent, task)
    assert [m["role"] for m in agent.messages] == ["system", "user"]  # nothing half-recorded
    again = await agent.run()  # resumable: run() continues
    assert again.status == "completed" and again.text == "x" * 40  # turn 0 plays again in full


async def test_interrupt_cancels_a_running_tool_and_skips_the_rest(tmp_path: Path) -> None:
    stuck = StuckTool("stuck")
    model = scripted_model(
        [
            {"tool_calls": [tool_call("stuck", n=1), tool_call("stuck", n=2)]},
            {"text": "after the interrupt"},
        ]
    )
    agent = make_agent(tmp_path, model, tools=[stuck])
    task = asyncio.create_task(agent.run("go"))
    await stuck.started.wait()
    await interrupt_promptly(agent, task)
    outputs = tool_outputs(agent)
    assert outputs[0] == "stopped on cancel"
    assert outputs[1].startswith("skipped: the user interrupted")
    again = await agent.run()
    assert again.status == "completed" and again.text == "after the interrupt"


async def test_interrupt_cancels_a_tool_that_ignores_cancel(tmp_path: Path) -> None:
    gate = GateTool(hold=30)
    model = scripted_model([{"tool_calls": [tool_call("gate", n=1)]}, {"text": "done"}])
    agent = make_agent(tmp_path, model, tools=[gate])
    task = asyncio.create_task(agent.run("go"))
    await gate.started.wait()
    await interrupt_promptly(agent, task)
    assert tool_outputs(agent)[0].startswith("interrupted: the user stopped this tool")


async def test_safe_point_runs_after_each_turn_and_batch(tmp_path: Path) -> None:
    seen: list[str] = []
    model = scripted_model([{"tool_calls": [tool_call("ls", path=".")]}, {"text": "done"}])

    def on_event(event: AgentEvent) -> None:
        if event.kind in ("turn_end", "tool_call_end"):
            seen.append(event.kind)

    async def safe_point() -> None:
        seen.append("safe")

    agent = make_agent(tmp_path, model, on_event=on_event, safe_point=safe_point)
    await agent.run("go")
    assert seen == ["turn_end", "safe", "tool_call_end", "safe", "turn_end", "safe"]
