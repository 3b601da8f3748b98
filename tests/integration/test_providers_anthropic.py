"""The agent against a provider-faithful Anthropic Messages server (tests/fakes/anthropic_server.py)
through litellm: multi-turn tool tasks with thinking at every effort, byte-exact files, byte-stable
system prompt and tools, thinking sent back after a SIGKILL and resume, a truncated tool call
recovered, and 529 / in-stream overload retried and recorded as overloaded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopcraft.agent.loop import Agent, create_session
from loopcraft.agent.permissions import PermissionPolicy
from loopcraft.agent.session import SessionLog
from loopcraft.config import AgentConfig, Config, ModelOptions, RetryConfig
from loopcraft.models.litellm_client import LiteLLMClient
from tests.fakes.anthropic_server import PROMPT_TOO_LONG, AnthropicServer
from tests.fakes.loopback import TRICKY_CONTENT

CONTENT = TRICKY_CONTENT


@pytest.fixture
def server() -> Iterator[AnthropicServer]:
    with AnthropicServer() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")


def _config(server: AnthropicServer, model: str) -> Config:
    config = Config(retry=RetryConfig(max_retries=2, base_delay=0.01, max_delay=0.05))
    config.models[model.split(":")[0]] = ModelOptions(api_base=server.base_url)
    return config


def _script_task(server: AnthropicServer) -> None:
    server.respond(
        thinking="I will write the file first.",
        text="Writing it.",
        tool_calls=[{"name": "write", "arguments": {"path": "out.txt", "content": CONTENT}}],
    )
    server.respond(
        thinking="Now read it back.", tool_calls=[{"name": "read", "arguments": {"path": "out.txt"}}]
    )
    server.respond(thinking="And list the folder.", tool_calls=[{"name": "ls", "arguments": {"path": "."}}])
    server.respond(thinking="All done.", text="Wrote, read and listed out.txt.")


async def _run(server: AnthropicServer, tmp_path: Path, model: str, prompt: str = "write the file") -> Agent:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    config = AgentConfig()
    session = create_session(tmp_path / "s.jsonl", workspace=workspace, model=model)
    agent = Agent(
        client=LiteLLMClient(_config(server, model)),
        session=session,
        workspace=workspace,
        model=model,
        policy=PermissionPolicy(config, None, mode="yolo"),
        config=config,
    )
    agent.result = await agent.run(prompt)  # type: ignore[attr-defined]
    return agent


@pytest.mark.parametrize(
    "model",
    [
        "anthropic/claude-sonnet-4-5:off",
        "anthropic/claude-sonnet-4-5:low",
        "anthropic/claude-sonnet-4-5:high",
        "anthropic/claude-sonnet-4-5:max",
        "anthropic/claude-sonnet-4-5",
        "anthropic/claude-haiku-4-5:off",
    ],
)
async def test_multi_turn_tool_task_passes_strict_server(
    server: AnthropicServer, tmp_path: Path, model: str
) -> None:
    _script_task(server)
    agent = await _run(server, tmp_path, model)
    assert server.rejections == []
    assert agent.result.status == "completed", agent.result.reason  # type: ignore[attr-defined]
    assert (tmp_path / "ws" / "out.txt").read_bytes() == CONTENT.encode()
    assert len(server.requests) == 4
    systems = {json.dumps(r.get("system"), sort_keys=True) for r in server.requests}
    tools = {json.dumps(r.get("tools"), sort_keys=True) for r in server.requests}
    assert len(systems) == 1 and len(tools) == 1
    first = server.requests[0]
    assert first["max_tokens"] == 64000  # the model's real output limit, not budget + 4096
    thinking: Any = first.get("thinking")
    if model.endswith((":low", ":high", ":max")):
        assert thinking["type"] == "enabled" and thinking["budget_tokens"] < first["max_tokens"]
        last = server.requests[-1]["messages"]
        assistants = [m for m in last if m["role"] == "assistant"]
        assert all(m["content"][0]["type"] == "thinking" for m in assistants)
        assert all(m["content"][0]["signature"].startswith("sig-") for m in assistants)
    elif model.endswith(":off"):
        assert thinking == {"type": "disabled"}
    else:
        assert thinking is None


async def test_strict_server_rejects_a_thinking_turn_without_its_thinking(server: AnthropicServer) -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64000,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "x"},
                    {"type": "tool_use", "id": "t1", "name": "ls", "input": {}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a"}]},
        ],
    }
    with pytest.raises(Exception, match="Expected `thinking` or `redacted_thinking`, but found `text`"):
        server.validate(body)


async def test_truncated_tool_call_is_recovered(server: AnthropicServer, tmp_path: Path) -> None:
    model = "anthropic/claude-sonnet-4-5:high"
    server.respond(
        thinking="Write it.",
        tool_calls=[{"name": "write", "arguments": {"path": "out.txt", "content": CONTENT * 4}}],
        cut_at=40,
    )
    server.respond(
        thinking="Smaller now.",
        tool_calls=[{"name": "write", "arguments": {"path": "out.txt", "content": CONTENT}}],
    )
    server.respond(thinking="Done.", text="written")
    agent = await _run(server, tmp_path, model)
    assert agent.result.status == "completed", agent.result.reason  # type: ignore[attr-defined]
    assert server.rejections == []
    assert (tmp_path / "ws" / "out.txt").read_bytes() == CONTENT.encode()
    second = server.requests[1]["messages"]
    tool_result = second[-1]["content"][0]
    assert "output limit" in json.dumps(tool_result)
    cut = next(b for b in second[1]["content"] if b["type"] == "tool_use")
    assert "_invalid_arguments" in cut["input"]


@pytest.mark.parametrize("fault", ["529", "in_stream"])
async def test_overloaded_is_retried_and_recorded(
    server: AnthropicServer, tmp_path: Path, fault: str
) -> None:
    if fault == "529":
        server.fail(529)
    else:
        server.overload_in_stream()
    server.respond(text="fine")
    agent = await _run(server, tmp_path, "anthropic/claude-sonnet-4-5:off", "hi")
    assert agent.result.status == "completed", agent.result.reason  # type: ignore[attr-defined]
    entries = [e for e in SessionLog.open(tmp_path / "s.jsonl").entries if e.get("type") == "message"]
    failed = entries[-1]["failed_attempts"]
    assert [a["error_class"] for a in failed] == ["overloaded"]
    assert "b'" not in failed[0]["error"] and "Overloaded" in failed[0]["error"]
    expected = "529 overloaded_error: Overloaded" if fault == "529" else "Overloaded (inside the stream)"
    assert failed[0]["error"] == expected


DRIVER = """
import asyncio, sys
from pathlib import Path
from typing import Any
from loopcraft.agent.loop import Agent, create_session
from loopcraft.agent.permissions import PermissionPolicy
from loopcraft.agent.session import SessionLog
from loopcraft.config import AgentConfig, Config, ModelOptions
from loopcraft.models.litellm_client import LiteLLMClient

workspace, session_path, base = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
model = "anthropic/claude-sonnet-4-5:high"
config = Config()
config.models["anthropic/claude-sonnet-4-5"] = ModelOptions(api_base=base)
if session_path.exists():
    session, prompt = SessionLog.open(session_path), None
else:
    session, prompt = create_session(session_path, workspace=workspace, model=model), "go"
agent = Agent(client=LiteLLMClient(config), session=session, workspace=workspace, model=model,
              policy=PermissionPolicy(AgentConfig(), None, mode="yolo"), config=AgentConfig())
result = asyncio.run(agent.run(prompt))
print(result.status, result.reason, flush=True)
"""


@pytest.mark.slow
def test_sigkill_after_a_thinking_turn_then_resume_sends_thinking_back(
    server: AnthropicServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    session = tmp_path / "s.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
    server.respond(
        thinking="First, a slow command.", tool_calls=[{"name": "bash", "arguments": {"command": "sleep 30"}}]
    )
    args = [sys.executable, str(driver), str(workspace), str(session), server.base_url]
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while '"tool_call_start"' not in (session.read_text() if session.exists() else ""):
        assert time.monotonic() < deadline and first.poll() is None, (
            first.stderr.read() if first.stderr else ""
        )
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    server.respond(thinking="Resumed: finish.", text="done")
    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert second.stdout.startswith("completed"), second.stdout + second.stderr
    assert server.rejections == []
    resumed = server.requests[-1]["messages"]
    assistant = next(m for m in resumed if m["role"] == "assistant")
    assert assistant["content"][0] == {
        "type": "thinking",
        "thinking": "First, a slow command.",
        "signature": next(iter(server.issued)),
    }


async def test_prompt_too_long_is_a_context_overflow(server: AnthropicServer) -> None:
    from loopcraft.models.errors import ContextOverflowError
    from loopcraft.models.types import CompletionRequest

    server.fail(400, PROMPT_TOO_LONG)
    model = "anthropic/claude-sonnet-4-5"
    request = CompletionRequest(model=model, messages=[{"role": "user", "content": "hi"}], overflow="raise")
    with pytest.raises(ContextOverflowError, match="prompt is too long"):
        await LiteLLMClient(_config(server, model)).complete(request)
