"""The chat's coding agent, driven for the UI: one ``Agent`` per chat session (JSONL under
``.loopcraft/sessions/``), with steering, follow-ups, interrupts, compaction and an
approver whose answers come from an inline prompt widget.

UI-free: the app passes an ``on_event`` callback (agent events) and an ``ask`` callback
(show a permission prompt and await the human's answer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopcraft.errors import LoopcraftError

if TYPE_CHECKING:
    from loopcraft.agent.extensions import Extensions
    from loopcraft.agent.loop import Agent, AgentResult
    from loopcraft.agent.permissions import Answer, PermissionPolicy, PermissionRequest
    from loopcraft.agent.session import SessionInfo, SessionLog
    from loopcraft.agent.tools.base import Tool
    from loopcraft.config import Config
    from loopcraft.models.client import ModelClient
    from loopcraft.models.types import Usage

EventHandler = Callable[[Any], Awaitable[None]]
AskHandler = Callable[["PermissionRequest"], Awaitable["Answer"]]


class UiApprover:
    """The chat's :class:`Approver`: forwards each request to the UI and awaits the answer."""

    def __init__(self, ask: AskHandler) -> None:
        self._ask = ask

    async def ask(self, request: PermissionRequest) -> Answer:
        return await self._ask(request)


class ChatSession:
    """Owns the chat agent and its session file; the app calls send / queue / interrupt."""

    def __init__(
        self,
        root: Path,
        config: Config,
        model: str,
        *,
        on_event: EventHandler,
        ask: AskHandler,
        client: ModelClient | None = None,
        extra_tools: list[Tool] | None = None,
    ) -> None:
        self.root = root
        self.config = config
        self.model = model
        self._on_event = on_event
        self._client = client
        self._extra_tools = list(extra_tools or [])
        self.policy: PermissionPolicy | None = None
        self._ask = ask
        self.session: SessionLog | None = None
        self.agent: Agent | None = None
        self.task: asyncio.Task[AgentResult | None] | None = None
        self.queued: list[str] = []
        self._ext: Extensions | None = None  # skills, memory and MCP servers of the current session
        self._preloaded: list[str] = []  # skill bodies given with the next message (/skills NAME)

    # ----- state ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    @property
    def usage(self) -> Usage:
        if self.agent is not None:
            return self.agent.usage
        from loopcraft.models.types import Usage  # pydantic models: built when first needed

        return Usage()

    @property
    def permission_mode(self) -> str:
        return self.policy.mode if self.policy is not None else self.config.agent.permission_mode

    def set_permission_mode(self, mode: str) -> None:
        self._ensure_policy().mode = mode  # type: ignore[assignment]

    def add_tool(self, tool: Tool) -> None:
        """Give the agent another tool (takes effect with the next session: tools never
        change inside one, to keep prompts cacheable)."""
        self._extra_tools.append(tool)

    # ----- building -------------------------------------------------------------------

    def _ensure_policy(self) -> PermissionPolicy:
        if self.policy is None:
            from loopcraft.agent.permissions import PermissionPolicy

            self.policy = PermissionPolicy(self.config.agent, UiApprover(self._ask))
        return self.policy

    def _client_or_default(self) -> ModelClient:
        if self._client is None:
            from loopcraft.models.client import default_client

            self._client = default_client(self.config)
        return self._client

    @property
    def extensions(self) -> Extensions:
        """The current session's skills, memory and MCP servers (gathered once per session)."""
        if self._ext is None:
            from loopcraft.agent.extensions import load_extensions

            self._ext = load_extensions(self.root, self.config, cwd=Path.cwd())
        return self._ext

    def _tools(self) -> list[Tool]:
        from loopcraft.agent.tools.registry import default_tools

        return [*default_tools(), *self.extensions.tools(), *self._extra_tools]

    def _build_agent(self, session: SessionLog) -> Agent:
        from loopcraft.agent.loop import Agent

        return Agent(
            client=self._client_or_default(),
            session=session,
            workspace=self.root,
            model=self.model,
            fallback_models=list(self.config.fallback_models),
            tools=self._tools(),
            policy=self._ensure_policy(),
            config=self.config.agent,
            stage="chat",
            on_event=self._on_event,
            mcp=self.extensions.mcp,
        )

    def _ensure_agent(self) -> Agent:
        if self.agent is None:
            from loopcraft.agent.loop import create_session
            from loopcraft.agent.session import new_session_id, sessions_dir

            sid = new_session_id()
            path = sessions_dir(self.root) / f"{sid}.jsonl"
            from loopcraft.agent.prompts import default_system_prompt

            system = self.extensions.system_prompt(default_system_prompt(str(self.root)))
            self.session = create_session(
                path,
                workspace=self.root,
                model=self.model,
                tools=self._tools(),
                system_prompt=system,
                session_id=sid,
            )
            self.agent = self._build_agent(self.session)
        return self.agent

    def context_tokens(self) -> int:
        """The agent's estimated context size in tokens (0 before the first message)."""
        return self.agent.estimated_tokens() if self.agent is not None else 0

    # ----- actions --------------------------------------------------------------------

    def send(self, text: str) -> str:
        """Start a turn, or steer the running one. Returns "started" or "steered"."""
        if self.running:
            assert self.agent is not None
            self.agent.steer(text)
            return "steered"
        agent = self._ensure_agent()
        if self._preloaded:
            text = "\n\n".join([*self._preloaded, text])
            self._preloaded.clear()
        self.task = asyncio.create_task(self._run(agent, text))
        return "started"

    def preload_skill(self, name: str) -> str:
        """Give skill ``name``'s body with the next message (an unknown name raises, naming it)."""
        from loopcraft.agent.skills import preload_text

        skills = self.extensions.skills.get([name])
        self._preloaded.append(preload_text(skills, self.root))
        return f"skill {name!r} will be given with your next message"

    def queue(self, text: str) -> str:
        """Queue a follow-up delivered when the agent would stop; starts a turn when idle."""
        if self.running:
            assert self.agent is not None
            self.agent.follow_up(text)
            self.queued.append(text)
            return "queued"
        return self.send(text)

    def delivered(self, text: str) -> bool:
        """Mark a queued follow-up as delivered (the agent appended it)."""
        if text in self.queued:
            self.queued.remove(text)
            return True
        return False

    async def _run(self, agent: Agent, prompt: str | None) -> AgentResult | None:
        return await agent.run(prompt)

    def interrupt(self) -> bool:
        if self.running and self.agent is not None:
            self.agent.interrupt()
            return True
        return False

    async def wait(self) -> AgentResult | None:
        if self.task is None:
            return None
        return await self.task

    async def compact(self) -> bool:
        if self.running:
            raise LoopcraftError("the agent is running; /compact when it is idle (Esc interrupts)")
        if self.agent is None:
            return False
        return await self.agent.compact()

    async def new(self) -> None:
        """Close the current session; the next message starts a fresh one."""
        await self._stop()
        self.agent = None
        self.queued.clear()

    def switch_model(self, model: str) -> None:
        """Use ``model`` from the next turn on (the session continues under the new model)."""
        from loopcraft.models.spec import parse_model

        parse_model(model)
        if self.running:
            raise LoopcraftError("the agent is running; switch models when it is idle (Esc interrupts)")
        self.model = model
        if self.agent is not None:
            self.agent.set_model(model)

    def list(self) -> list[SessionInfo]:
        from loopcraft.agent.session import list_sessions, sessions_dir

        return list_sessions(sessions_dir(self.root))

    async def resume(self, session_id: str) -> SessionLog:
        """Reopen a saved session by id (or a unique prefix); the next message continues it."""
        from loopcraft.agent.session import SessionLog

        matches = [s for s in self.list() if s.id.startswith(session_id)]
        if len(matches) != 1:
            from loopcraft.errors import NotFoundError

            what = "no session" if not matches else f"{len(matches)} sessions"
            raise NotFoundError(f"{what} matching {session_id!r}; /sessions lists them")
        await self._stop()
        self.session = SessionLog.open(matches[0].path)
        self.model = self.session.header.model or self.model
        self.agent = self._build_agent(self.session)
        return self.session

    async def _stop(self) -> None:
        if self.running and self.agent is not None:
            self.agent.interrupt()
            try:
                await asyncio.wait_for(asyncio.shield(self.task), 2)  # type: ignore[arg-type]
            except (TimeoutError, asyncio.CancelledError, Exception):
                if self.task is not None:
                    self.task.cancel()
        if self.session is not None:
            self.session.close()
            self.session = None
        if self._ext is not None:
            if self._ext.mcp is not None:
                await self._ext.mcp.aclose()
            self._ext = None
