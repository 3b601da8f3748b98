"""The agent loop with the scripted model: answers, tool batches, malformed calls,
permissions, repeated actions, usage and the transcript it writes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from loopcraft.agent.session import SessionLog
from loopcraft.agent.tools.base import ToolContext, ToolResult
from loopcraft.config import AgentConfig
from tests.integration.test_agent_support import (
    EventLog,
    NumberedTool,
    make_agent,
    scripted_model,
    tool_call,
    tool_outputs,
)


class ProbeTool(NumberedTool):
    """A tool that records when each call starts and ends (to see concurrency)."""

    def __init__(self, name: str, read_only: bool, timeline: list[str], delay: float = 0.05) -> None:
        super().__init__(name, read_only=read_only)
        self.timeline = timeline
        self.delay = delay

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        self.timeline.append(f"start {self.name}{args.get('n')}")
        await asyncio.sleep(self.delay)
        self.timeline.append(f"end {self.name}{args.get('n')}")
        return ToolResult(f"{self.name} {args.get('n')} done")


async def test_text_answer_completes_and_journals(tmp_path: Path) -> None:
    model = scripted_model([{"text": "Hello there.", "usage": {"input": 10, "output": 3}}])
    events = EventLog()
    agent = make_agent(tmp_path, model, on_event=events)
    result = await agent.run("hi")
    assert (result.status, result.text, result.turns, result.tool_calls) == (
        "completed",
        "Hello there.",
        1,
        0,
    )
    assert (result.usage.input_tokens, result.usage.output_tokens) == (10, 3)
    assert events.kinds()[0] == "turn_start" and events.kinds()[-1] == "stopped"
    assert "text_delta" in events.kinds() and "usage" in events.kinds()
    entries = agent.session.read_entries()
    types = [e["type"] for e in entries]
    assert types == ["status", "message", "usage", "message", "status"]
    assert entries[1]["message"] == {"role": "user", "content": "hi"}
    assert entries[3]["message"]["content"] == "Hello there."
    assert entries[-1]["status"] == "completed"


async def test_tool_turns_until_answer(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("alpha\nbeta\n")
    model = scripted_model(
        [
            {"tool_calls": [tool_call("read", path="notes.txt")]},
            {"text": "The file says alpha and beta."},
        ]
    )
    agent = make_agent(tmp_path, model)
    result = await agent.run("what is in notes.txt?")
    assert result.status == "completed" and result.turns == 2 and result.tool_calls == 1
    assert "alpha" in tool_outputs(agent)[0]
    roles = [m["role"] for m in agent.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    tool_msg = agent.messages[3]
    assert tool_msg["tool_call_id"] == agent.messages[2]["tool_calls"][0]["id"]


async def test_read_only_calls_run_concurrently_others_in_order(tmp_path: Path) -> None:
    timeline: list[str] = []
    tools = [ProbeTool("look", True, timeline), ProbeTool("change", False, timeline)]
    model = scripted_model(
        [
            {
                "tool_calls": [
                    tool_call("look", n=1),
                    tool_call("look", n=2),
                    tool_call("change", n=3),
                    tool_call("change", n=4),
                ]
            },
            {"text": "done"},
        ]
    )
    agent = make_agent(tmp_path, model, tools=tools)
    result = await agent.run("go")
    assert result.status == "completed"
    assert timeline[:2] == ["start look1", "start look2"]  # both reads started before either ended
    assert timeline[4:] == ["start change3", "end change3", "start change4", "end change4"]
    # results are recorded in call order whatever finished first
    assert tool_outputs(agent) == ["look 1 done", "look 2 done", "change 3 done", "change 4 done"]


async def test_malformed_calls_get_errors_then_stop_failed(tmp_path: Path) -> None:
    model = scripted_model(
        [
            {"tool_calls": [tool_call("nosuchtool", x=1)]},
            {"tool_calls": [tool_call("read", path="a")], "malformed_tool_args": True},
            {"tool_calls": [tool_call("nosuchtool", x=2)]},
            {"text": "never reached"},
        ]
    )
    agent = make_agent(tmp_path, model, config=AgentConfig(max_malformed=3))
    result = await agent.run("go")
    assert result.status == "failed" and "3 malformed tool calls" in result.reason
    outputs = tool_outputs(agent)
    assert "unknown tool 'nosuchtool'" in outputs[0] and "read" in outputs[0]
    assert "not a valid JSON object" in outputs[1]
    assert len(outputs) == 3


async def test_a_good_call_resets_the_malformed_count(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x\n")
    model = scripted_model(
        [
            {"tool_calls": [tool_call("nosuchtool")]},
            {"tool_calls": [tool_call("read", path="a")]},
            {"tool_calls": [tool_call("nosuchtool")]},
            {"text": "ok"},
        ]
    )
    result = await make_agent(tmp_path, model, config=AgentConfig(max_malformed=2)).run("go")
    assert result.status == "completed"


async def test_permission_denied_headless_is_an_error_result(tmp_path: Path) -> None:
    model = scripted_model(
        [
            {"tool_calls": [tool_call("write", path="x.txt", content="hi")]},
            {"text": "could not write"},
        ]
    )
    agent = make_agent(tmp_path, model, mode="default")  # write asks; no human -> denied
    result = await agent.run("write x")
    assert result.status == "completed"
    assert not (tmp_path / "x.txt").exists()
    out = tool_outputs(agent)[0]
    assert out.startswith("permission denied: refused") and "no human" in out
    entries = agent.session.read_entries()
    assert not [e for e in entries if e["type"] == "tool_call_start"]  # a denied call never starts


async def test_repeated_action_warns_then_blocks(tmp_path: Path) -> None:
    (tmp_path / "same.txt").write_text("unchanging\n")
    model = scripted_model([{"tool_calls": [tool_call("read", path="same.txt")]}] * 10)
    agent = make_agent(tmp_path, model, config=AgentConfig(repeat_limit=2))
    events = EventLog()
    agent.on_event = events
    result = await agent.run("loop forever")
    assert result.status == "blocked" and "repeated action" in result.reason
    outputs = tool_outputs(agent)
    assert len(outputs) == 4  # blocked at 2K
    assert "exact arguments 2 times" in outputs[1] and "exact" not in outputs[0]
    assert any(e.kind == "budget_warning" and e.limit == "repeat_limit" for e in events)


async def test_model_failure_stops_failed_and_is_journaled(tmp_path: Path) -> None:
    model = scripted_model([{"faults": [{"kind": "auth"}] * 5, "text": "x"}])
    agent = make_agent(tmp_path, model)
    result = await agent.run("hi")
    assert result.status == "failed" and "model call failed" in result.reason
    last = json.loads(agent.session.path.read_text().splitlines()[-1])
    assert last["type"] == "status" and last["status"] == "failed"


async def test_usage_accumulates_per_turn_and_session(tmp_path: Path) -> None:
    model = scripted_model(
        [
            {
                "tool_calls": [tool_call("ls", path=".")],
                "usage": {"input": 100, "output": 10, "cache_read": 40},
            },
            {"text": "done", "usage": {"input": 200, "output": 20}},
        ]
    )
    events = EventLog()
    agent = make_agent(tmp_path, model, on_event=events)
    result = await agent.run("go")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (300, 30)
    assert result.usage.cache_read_tokens == 40
    updates = [e for e in events if e.kind == "usage"]
    assert [u.turn_usage.input_tokens for u in updates] == [100, 200]
    assert [u.total.input_tokens for u in updates] == [100, 300]
    usage_entries = [e for e in SessionLog.open(agent.session.path).entries if e["type"] == "usage"]
    assert usage_entries[-1]["total"]["input_tokens"] == 300


async def test_second_prompt_continues_the_same_conversation(tmp_path: Path) -> None:
    model = scripted_model([{"text": "first"}, {"text": "second"}])
    agent = make_agent(tmp_path, model)
    assert (await agent.run("one")).text == "first"
    result = await agent.run("two")
    assert result.text == "second" and result.turns == 1
    assert [m["role"] for m in agent.messages] == ["system", "user", "assistant", "user", "assistant"]
