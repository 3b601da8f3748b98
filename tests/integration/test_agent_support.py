"""Shared helpers for the agent-loop tests (no tests here): scripted models, a request-
recording client, an agent factory, a fake human approver and a base for test tools."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from loopcraft.agent.budget import Budget, Limits
from loopcraft.agent.events import AgentEvent
from loopcraft.agent.loop import Agent, create_session
from loopcraft.agent.permissions import PermissionPolicy, PermissionRequest
from loopcraft.agent.session import SessionLog
from loopcraft.agent.tools.base import Tool
from loopcraft.config import AgentConfig, Config, ModelOptions
from loopcraft.models.client import ModelClient
from loopcraft.models.scripted import Script, register_script
from loopcraft.models.types import CompletionRequest, CompletionResult, DeltaCallback


class NumberedTool:
    """Base for test tools that take one integer argument ``n``; subclasses implement ``run``."""

    parameters: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer"}}}

    def __init__(self, name: str, *, read_only: bool) -> None:
        self.name = name
        self.description = name
        self.read_only = read_only


def tool_call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


def scripted_model(
    turns: list[dict[str, Any]] | None = None,
    *,
    stages: dict[str, list[dict[str, Any]]] | None = None,
    pace: float = 0.0,
    **extra: Any,
) -> str:
    """Register a script under a fresh name and return its model string ``scripted/<name>``.

    ``turns`` serve every stage; ``stages`` maps stage globs to turns (first match wins).
    """
    name = f"t{uuid.uuid4().hex[:10]}"
    data: dict[str, Any] = {"pace": pace, "stages": dict(stages or {}), **extra}
    if turns is not None:
        data["default"] = turns
    register_script(name, Script.model_validate(data))
    return f"scripted/{name}"


class RecordingClient:
    """Delegates to a real client and keeps every request it saw (a test spy, not a mock)."""

    def __init__(self, inner: ModelClient) -> None:
        self.inner = inner
        self.requests: list[CompletionRequest] = []

    async def complete(
        self, request: CompletionRequest, on_delta: DeltaCallback | None = None
    ) -> CompletionResult:
        self.requests.append(request)
        return await self.inner.complete(request, on_delta)

    def context_window(self, model: str) -> int:
        from loopcraft.models.info import client_context_window

        return client_context_window(self.inner, model)

    def calls_for(self, stage: str) -> list[CompletionRequest]:
        return [r for r in self.requests if r.stage == stage]


def scripted_client(config: Config | None = None) -> RecordingClient:
    """The real model path: LiteLLMClient serving the scripted provider."""
    from loopcraft.models.litellm_client import LiteLLMClient

    return RecordingClient(LiteLLMClient(config or Config()))


def priced_config(model: str, input_per_mtok: float, output_per_mtok: float) -> Config:
    options = ModelOptions(input_cost_per_mtok=input_per_mtok, output_cost_per_mtok=output_per_mtok)
    return Config(models={model: options})


class AllowOnce:
    """Stands in for the human: answers every permission request with allow_once."""

    def __init__(self) -> None:
        self.asked: list[PermissionRequest] = []

    async def ask(self, request: PermissionRequest) -> str:
        self.asked.append(request)
        return "allow_once"


class EventLog(list[AgentEvent]):
    def __call__(self, event: AgentEvent) -> None:
        self.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self]


def make_agent(
    workspace: Path,
    model: str,
    *,
    session_path: Path | None = None,
    client: Any = None,
    tools: list[Tool] | None = None,
    config: AgentConfig | None = None,
    limits: Limits | None = None,
    budget: Budget | None = None,
    approver: Any = None,
    mode: str | None = "yolo",
    **kwargs: Any,
) -> Agent:
    """An agent on ``workspace`` with a fresh (or existing) session file."""
    config = config or AgentConfig()
    session_path = session_path or workspace.parent / f"session-{uuid.uuid4().hex[:6]}.jsonl"
    if session_path.exists():
        session = SessionLog.open(session_path)
    else:
        session = create_session(session_path, workspace=workspace, model=model, tools=tools)
    policy = PermissionPolicy(config, approver, mode=mode)  # type: ignore[arg-type]
    return Agent(
        client=client or scripted_client(),
        session=session,
        workspace=workspace,
        model=model,
        tools=tools,
        policy=policy,
        config=config,
        limits=limits,
        budget=budget,
        **kwargs,
    )


def tool_outputs(agent: Agent) -> list[str]:
    return [m["content"] for m in agent.messages if m["role"] == "tool"]
