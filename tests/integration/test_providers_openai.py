"""The agent against a provider-faithful OpenAI server (tests/fakes/openai_provider_server.py)
through litellm: gpt-5.5 at :off (chat completions, reasoning_effort none), :high (litellm bridges
to /v1/responses: store false, encrypted reasoning items sent back) and no effort."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopcraft.agent.loop import Agent, create_session
from loopcraft.agent.permissions import PermissionPolicy
from loopcraft.agent.session import SessionLog
from loopcraft.config import AgentConfig, Config, ModelOptions
from loopcraft.models.litellm_client import LiteLLMClient
from tests.fakes.loopback import TRICKY_CONTENT
from tests.fakes.openai_provider_server import OpenAIProviderServer

CONTENT = TRICKY_CONTENT


@pytest.fixture
def server() -> Iterator[OpenAIProviderServer]:
    with OpenAIProviderServer() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")


async def _run(server: OpenAIProviderServer, tmp_path: Path, model: str) -> tuple[Agent, object]:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    config = Config()
    config.models[model.split(":")[0]] = ModelOptions(api_base=server.base_url)
    agent_config = AgentConfig()
    agent = Agent(
        client=LiteLLMClient(config),
        session=create_session(tmp_path / "s.jsonl", workspace=workspace, model=model),
        workspace=workspace,
        model=model,
        policy=PermissionPolicy(agent_config, None, mode="yolo"),
        config=agent_config,
    )
    return agent, await agent.run("write the file")


@pytest.mark.parametrize(
    ("model", "route", "effort"),
    [
        ("openai/gpt-5.5:off", "/v1/chat/completions", "none"),
        ("openai/gpt-5.5:high", "/v1/responses", "high"),
        ("openai/gpt-5.5", "/v1/chat/completions", None),
    ],
)
async def test_multi_turn_tool_task(
    server: OpenAIProviderServer, tmp_path: Path, model: str, route: str, effort: str | None
) -> None:
    server.respond(
        reasoning="write first",
        text="Writing.",
        tool_calls=[{"name": "write", "arguments": {"path": "out.txt", "content": CONTENT}}],
    )
    server.respond(
        reasoning="read back",
        tool_calls=[{"name": "read", "arguments": {"path": "out.txt"}}],
        cached_tokens=100,
    )
    server.respond(reasoning="list", tool_calls=[{"name": "ls", "arguments": {"path": "."}}])
    server.respond(text="done")
    _, result = await _run(server, tmp_path, model)
    assert server.rejections == []
    assert result.status == "completed", result.reason  # type: ignore[attr-defined]
    assert (tmp_path / "ws" / "out.txt").read_bytes() == CONTENT.encode()
    assert server.paths() == [route] * 4
    bodies = [body for _, body in server.requests]
    if route == "/v1/responses":
        assert all(b["store"] is False for b in bodies)
        assert all(b["reasoning"]["effort"] == effort for b in bodies)
        assert len({json.dumps(b.get("instructions") or b["input"][0]) for b in bodies}) == 1
        last = bodies[-1]["input"]
        reasoning = [item for item in last if item.get("type") == "reasoning"]
        assert [r["encrypted_content"] for r in reasoning] == list(server.encrypted.values())
        entries = SessionLog.open(tmp_path / "s.jsonl").entries
        kept = [
            e["message"].get("reasoning_items")
            for e in entries
            if e.get("type") == "message" and e["message"]["role"] == "assistant"
        ]
        assert all(kept[:3])
    else:
        assert all(b.get("reasoning_effort") == effort for b in bodies)
        assert len({json.dumps(b["messages"][0]) for b in bodies}) == 1
    assert len({json.dumps(b["tools"], sort_keys=True) for b in bodies}) == 1
