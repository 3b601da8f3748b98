"""The real :class:`TaskRunner`: each stage is a :class:`loopcraft.agent.loop.Agent` session whose
JSONL transcript lives in the run's folder, so a resumed stage continues without re-calling the
model for turns it already has, and keeps the model that answered before the crash."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from loopcraft.agent.tools.base import Tool, ToolContext, ToolResult
from loopcraft.config import AgentConfig, Config, PermissionRule
from loopcraft.engine.leases import LeaseLost
from loopcraft.engine.tasks import CORRECTION_PREFIX, StageFailure, TaskOutcome, TaskRequest
from loopcraft.errors import LoopcraftError
from loopcraft.models.client import ModelClient, default_client
from loopcraft.models.types import Usage

if TYPE_CHECKING:
    from loopcraft.agent.budget import Limits
    from loopcraft.agent.extensions import Extensions
    from loopcraft.agent.loop import Agent
    from loopcraft.agent.session import Guard, SessionLog

_BUDGET_KEYS = {
    "turns": "max_turns",
    "tool_calls": "max_tool_calls",
    "tokens": "max_tokens",
    "dollars": "max_dollars",
    "seconds": "wall_time",
}


def limits_from(budget: dict[str, Any] | None) -> Limits | None:
    """A task's ``budget=`` dict (turns, tool_calls, tokens, dollars, seconds) as agent Limits."""
    if not budget:
        return None
    from loopcraft.agent.budget import Limits

    known = {f.name for f in fields(Limits)}
    values: dict[str, Any] = {}
    for key, value in budget.items():
        name = _BUDGET_KEYS.get(key, key)
        if name not in known:
            raise LoopcraftError(f"unknown budget key {key!r}; use {', '.join(_BUDGET_KEYS)}")
        values[name] = value
    return Limits(**values)


def stage_rules(raw: list[dict[str, str]] | None) -> list[PermissionRule]:
    """A task's ``permission_rules=`` as validated rules (a bad one is a one-line error)."""
    rules = []
    for item in raw or []:
        try:
            rules.append(PermissionRule.model_validate(item))
        except ValidationError as exc:
            raise LoopcraftError(
                f"bad permission rule {item!r}: {exc.errors()[0]['msg']}; "
                "use {'tool': GLOB, 'pattern': GLOB, 'action': 'allow'|'ask'|'deny'}"
            ) from None
    return rules


def answered_model(entries: list[dict[str, Any]]) -> str | None:
    """The model that answered the session's last model turn (None before the first answer)."""
    model = None
    for entry in entries:
        if (
            entry.get("type") == "message"
            and entry["message"].get("role") == "assistant"
            and entry.get("model")
        ):
            model = entry["model"]
    return model


def _session_total(entries: list[dict[str, Any]]) -> Usage:
    totals = [e.get("total") for e in entries if e.get("type") == "usage"]
    return Usage.from_dict(totals[-1]) if totals else Usage()


def _is_fork_marker(entry: dict[str, Any]) -> bool:
    return entry.get("type") == "status" and entry.get("status") == "forked"


def own_entries(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The entries written by this stage (after the last fork marker, if forked) and that marker."""
    fork = next((e for e in reversed(entries) if _is_fork_marker(e)), None)
    return (entries[entries.index(fork) + 1 :] if fork is not None else entries), fork


def undelivered_mail(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``mail`` entries no later steer/follow-up message answers (matched in order, by kind and text)."""
    waiting: list[dict[str, Any]] = []
    for entry in entries:
        if entry.get("type") == "mail":
            waiting.append(entry)
        elif entry.get("type") == "message" and entry.get("source") in ("steer", "follow_up"):
            content = entry["message"].get("content")
            match = next(
                (m for m in waiting if m.get("kind") == entry["source"] and m.get("text") == content), None
            )
            if match is not None:
                waiting.remove(match)
    return waiting


def fork_markers(path: Path) -> int:
    """How many fork markers the file holds (tolerant: damaged lines are skipped; 0 if it is missing)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return 0
    count = 0
    for line in raw.split(b"\n"):
        if b'"forked"' in line:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            count += isinstance(entry, dict) and _is_fork_marker(entry)
    return count


def fork_stage_session(source: Path, target: Path, guard: Guard | None = None) -> None:
    """Start ``target`` as a fork of ``source`` (atomically), unless it already is one.

    A finished fork holds one marker more than its source; a target without it is a copy a crash
    cut short (or unrelated leftovers) and is replaced whole, never resumed."""
    if target.is_file() and fork_markers(target) > fork_markers(source):
        return
    from loopcraft.agent.session import fork_session

    fork_session(
        source,
        target,
        "status",
        lambda entries: {
            "status": "forked",
            "reason": f"forked from {source.name}",
            "usage": _session_total(entries).to_dict(),
        },
        guard=guard,
    )


Fence = Callable[[], Awaitable[None]]


class LeaseFence:
    """What a stage's mutating tools await first: the request's ``lease_check``, which confirms with
    the journal that this process still owns the run (:meth:`Lease.verify`). The first
    :class:`LeaseLost` is kept, so the stage's run ends with it even if the agent carried on."""

    def __init__(self, check: Fence) -> None:
        self._check = check
        self.lost: LeaseLost | None = None

    async def __call__(self) -> None:
        try:
            await self._check()
        except LeaseLost as exc:
            self.lost = self.lost or exc
            raise

    def wrap(self, tools: list[Tool]) -> list[Tool]:
        return [tool if tool.read_only else FencedTool(tool, self) for tool in tools]


class FencedTool:
    """A mutating tool that runs only after its fence passed; otherwise :class:`LeaseLost`, no side effect."""

    def __init__(self, inner: Tool, fence: Fence) -> None:
        self.inner = inner
        self.name = inner.name
        self.description = inner.description
        self.parameters = inner.parameters
        self.read_only = inner.read_only
        self._fence = fence

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        await self._fence()
        return await self.inner.run(args, ctx)


class AgentTaskSession:
    """One stage's agent, reopened from its transcript when it exists."""

    def __init__(
        self,
        agent: Agent,
        log: SessionLog,
        fence: LeaseFence | None = None,
        preload: str = "",
        extensions: Extensions | None = None,
    ) -> None:
        self.agent = agent
        self.log = log
        self._fence = fence
        self._preload = preload  # skills named by ``skills=``, given with the first prompt
        self._extensions = extensions
        entries, fork = own_entries(log.entries)  # only what happened after a fork belongs to this stage
        self._base = Usage.from_dict(fork.get("usage")) if fork else Usage()
        self._mail = {e["mail_id"] for e in entries if e.get("type") == "mail"}
        for entry in undelivered_mail(entries):  # recorded before a crash, not yet seen by the model
            self._queue(entry["kind"], entry["text"])
        messages = [e for e in entries if e.get("type") == "message"]
        self._started = any(e.get("source") == "prompt" for e in messages)
        self._corrections = sum(
            1
            for e in messages
            if e["message"].get("role") == "user"
            and str(e["message"].get("content") or "").startswith(CORRECTION_PREFIX)
        )

    @property
    def started(self) -> bool:
        return self._started

    @property
    def corrections(self) -> int:
        return self._corrections

    async def run(self, prompt: str | None) -> TaskOutcome:
        if prompt is not None and not self._started and self._preload:
            prompt = f"{self._preload}\n\n{prompt}"
        result = await self.agent.run(prompt)
        self._started = True
        if self._fence is not None and self._fence.lost is not None:  # a mutating tool was refused
            raise self._fence.lost
        usage = result.usage - self._base
        return TaskOutcome(
            text=result.text,
            status=result.status,
            reason=result.reason,
            usage=usage,
            model=result.model,
            limit=result.limit,
        )

    def spent(self) -> Usage:
        """What this stage's agent has spent so far (its session's total, less a fork source's)."""
        return self.agent.usage - self._base

    def steer(self, text: str) -> None:
        self.agent.steer(text)

    def follow_up(self, text: str) -> None:
        self.agent.follow_up(text)

    def deliver(self, kind: str, text: str, mail_id: int) -> None:
        """Take mailbox command ``mail_id`` (steer or follow_up): recorded in the transcript first (so a
        crash cannot lose it once the mail is consumed), then queued for the agent; once per mail id."""
        if mail_id in self._mail:
            return
        self.log.append("mail", kind=kind, text=text, mail_id=mail_id)
        self._mail.add(mail_id)
        self._queue(kind, text)

    async def durable(self) -> None:
        """Wait until every entry written so far (delivered mail included) is fsynced."""
        await self.log.wait_durable()

    def _queue(self, kind: str, text: str) -> None:
        if kind == "steer":
            self.agent.steer(text)
        else:
            self.agent.follow_up(text)

    def interrupt(self) -> None:
        self.agent.interrupt()

    def close(self) -> None:
        if self._extensions is not None:
            self._extensions.close()
        self.log.close()


def stage_agent_config(config: Config, request: TaskRequest) -> AgentConfig:
    """The agent settings of one stage: ``agent.*`` plus the stage's grant (its ``allow_paths`` on top
    of the configured ones, its ``sandbox_network`` over ``agent.sandbox_network``)."""
    agent = config.agent
    if not request.allow_paths and request.sandbox_network is None:
        return agent
    update: dict[str, Any] = {"allow_paths": [*agent.allow_paths, *request.allow_paths]}
    if request.sandbox_network is not None:
        update["sandbox_network"] = request.sandbox_network
    return agent.model_copy(update=update)


class AgentTaskRunner:
    """Opens an Agent per stage with the stage's tools, permissions (headless: yolo, no human) and limits."""

    def __init__(self, config: Config, client: ModelClient | None = None) -> None:
        self.config = config
        self._client = client
        # Opt-in tools a stage names in ``tools`` besides the built-ins (``workflow``: the engine's).
        self.extra_tools: dict[str, Callable[[TaskRequest], Tool]] = {}

    @property
    def client(self) -> ModelClient:
        if self._client is None:
            self._client = default_client(self.config)
        return self._client

    async def open(self, request: TaskRequest) -> AgentTaskSession:
        from loopcraft.agent.extensions import builtin_names, load_extensions
        from loopcraft.agent.loop import Agent, create_session
        from loopcraft.agent.permissions import PermissionPolicy
        from loopcraft.agent.prompts import default_system_prompt
        from loopcraft.agent.session import SessionLog, discard_unbegun
        from loopcraft.agent.tools.registry import get_tools

        extensions = load_extensions(
            request.workspace,
            self.config,
            memory=request.memory,
            tools=request.tools,
            exclude_tools=request.exclude_tools,
        )
        preload = _preload(request, extensions)
        extra = [n for n in request.tools or [] if n in self.extra_tools]
        wanted = builtin_names(request.tools)
        builtin = [n for n in wanted if n not in extra] if wanted is not None else None
        tools = get_tools(builtin, builtin_names(request.exclude_tools))
        tools += extensions.tools(request.tools, request.exclude_tools)
        tools += [self.extra_tools[n](request) for n in extra]
        fence = LeaseFence(request.lease_check) if request.lease_check is not None else None
        if fence is not None:  # a process that lost the run must not write, edit or run commands
            tools = fence.wrap(tools)
        path = request.session_path
        model, fallbacks = request.model, list(request.fallback_models)
        if request.fork_from is not None:
            fork_stage_session(request.fork_from, path, request.guard)
        discard_unbegun(path)  # a kill while it was being created left a stub that recorded nothing
        if path.is_file():
            log = SessionLog.open(path, guard=request.guard)
            pinned = answered_model(own_entries(log.entries)[0])
            if pinned and pinned != model:  # keep the model that answered before the crash
                fallbacks = [m for m in [model, *fallbacks] if m != pinned]
                model = pinned
        else:
            log = create_session(
                path,
                workspace=request.workspace,
                model=model,
                tools=tools,
                system_prompt=extensions.system_prompt(
                    request.system or default_system_prompt(str(request.workspace))
                ),
                stage=request.name,
                guard=request.guard,
            )
        agent_config = stage_agent_config(self.config, request)
        policy = PermissionPolicy(agent_config, approver=None, mode=request.permissions or "yolo")  # type: ignore[arg-type]
        policy.session_rules.extend(stage_rules(request.permission_rules))
        agent = Agent(
            client=self.client,
            session=log,
            workspace=request.workspace,
            model=model,
            fallback_models=fallbacks,
            tools=tools,
            policy=policy,
            config=agent_config,
            limits=limits_from(request.budget),
            stage=request.name,
            system_prompt=request.system,
            on_event=request.on_event,
            budget=request.shared_budget,
            safe_point=request.safe_point,
            mcp=extensions.mcp,
            wrap_tools=fence.wrap if fence is not None else None,
        )
        return AgentTaskSession(agent, log, fence, preload, extensions)


def _preload(request: TaskRequest, extensions: Extensions) -> str:
    """The bodies of the skills ``skills=`` names; an unknown one fails the stage before any call."""
    if not request.skills:
        return ""
    from loopcraft.agent.skills import UnknownSkillError, preload_text

    try:
        chosen = extensions.skills.get(list(request.skills))
    except UnknownSkillError as exc:
        raise StageFailure(f"stage {request.name!r} cannot start: {exc}") from None
    return preload_text(chosen, Path(request.workspace))
