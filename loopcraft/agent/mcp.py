"""MCP connectors: ``[mcp.servers.NAME]`` servers, reached through the official ``mcp`` SDK, whose
tools become agent tools named ``mcp__NAME__TOOL``.

Servers start lazily (when a session first lists its tools, at its first run) and stop with the
session. Each connection lives in its own task (the SDK's transports are context managers that
must be entered and left in one task); calls are sent from the agent's tasks. A server that fails
to start, dies or times out gives the model a tool error and the user one line naming it. A stdio
server gets the shell's filtered environment plus only the variables its ``env`` names; an HTTP
server gets headers from the variables ``headers_env`` names. The tool list is read once per
session and recorded in its transcript, so the tool definitions never change inside a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopcraft.agent.containment import shell_env
from loopcraft.agent.tools.base import ToolContext, ToolError, ToolResult
from loopcraft.config import AgentConfig, McpServerConfig

if TYPE_CHECKING:
    from mcp import ClientSession

PREFIX = "mcp__"
Status = Literal["stopped", "starting", "running", "failed", "exited"]
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
MAX_TOOL_NAME = 64  # what providers accept for a function name
MIN_START_S = 30.0  # start-up waits at least this long, whatever the call timeout


def tool_name(server: str, tool: str) -> str:
    """The agent tool name of ``server``'s ``tool`` (characters providers reject become ``_``)."""
    return (PREFIX + server + "__" + _NAME_CHARS.sub("_", tool))[:MAX_TOOL_NAME]


def is_mcp_name(name: str) -> bool:
    return name.startswith(PREFIX)


class McpServerError(ToolError):
    """An MCP server could not start, died or timed out (the message names the server)."""


@dataclass(frozen=True)
class McpToolDef:
    """One MCP tool as the agent sees it; recorded in the transcript so a resume reuses it."""

    server: str
    tool: str  # the server's own name for it
    name: str  # mcp__SERVER__TOOL
    description: str
    parameters: dict[str, Any]
    read_only: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> McpToolDef:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


class McpServer:
    """One configured server's connection (started on first use, in its own task)."""

    def __init__(self, name: str, config: McpServerConfig, agent: AgentConfig, cwd: Path) -> None:
        self.name = name
        self.config = config
        self._agent = agent
        self._cwd = cwd
        self.status: Status = "stopped"
        self.error = ""
        self._session: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._dead = asyncio.Event()
        self._lock = asyncio.Lock()
        self._errlog: Any = None

    async def ensure_started(self) -> ClientSession:
        """The live session, starting the server the first time; McpServerError when it can't."""
        async with self._lock:
            if self._session is None and self.status in ("stopped",):
                self.status = "starting"
                self._task = asyncio.create_task(self._run(), name=f"mcp-{self.name}")
                wait = max(self.config.timeout, MIN_START_S)
                try:
                    await asyncio.wait_for(self._ready.wait(), wait)
                except TimeoutError:
                    self._fail(f"did not start within {wait:g}s")
                    self._task.cancel()
        if self._session is None:
            raise McpServerError(f"MCP server {self.name!r} is not available: {self.error or self.status}")
        return self._session

    async def list_tools(self) -> list[Any]:
        session = await self.ensure_started()
        tools: list[Any] = []
        cursor: str | None = None
        while True:
            from mcp.types import PaginatedRequestParams

            params = PaginatedRequestParams(cursor=cursor) if cursor else None
            result = await self._guarded(session.list_tools(params=params), "listing its tools")
            tools += result.tools
            cursor = result.next_cursor
            if not cursor:
                return tools

    async def call(self, tool: str, args: dict[str, Any]) -> Any:
        session = await self.ensure_started()
        return await self._guarded(
            session.call_tool(tool, args, read_timeout_seconds=self.config.timeout), f"running {tool}"
        )

    async def _guarded(self, coro: Any, doing: str) -> Any:
        """Await ``coro`` unless the server dies or the timeout passes first."""
        work = asyncio.ensure_future(coro)
        dead = asyncio.ensure_future(self._dead.wait())
        try:
            done, _ = await asyncio.wait(
                {work, dead}, timeout=self.config.timeout, return_when="FIRST_COMPLETED"
            )
        except asyncio.CancelledError:  # the agent was interrupted: the request goes too
            work.cancel()
            raise
        finally:
            dead.cancel()
        if work in done:
            try:
                return work.result()
            except McpServerError:
                raise
            except Exception as exc:
                if self._dead.is_set():
                    raise McpServerError(self._died(doing)) from exc
                raise McpServerError(f"MCP server {self.name!r} failed {doing}: {_one_line(exc)}") from exc
        work.cancel()
        with contextlib.suppress(BaseException):
            await work
        if self._dead.is_set():
            raise McpServerError(self._died(doing))
        raise McpServerError(f"MCP server {self.name!r} timed out after {self.config.timeout:g}s {doing}")

    def _died(self, doing: str) -> str:
        why = self.error or "it exited"
        return f"MCP server {self.name!r} stopped while {doing}: {why}"

    async def _run(self) -> None:
        with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as errlog:
            self._errlog = errlog  # a stdio server's stderr: its last line explains a failure
            try:
                await self._serve()
            except BaseException as exc:  # the connection's task ends; whoever waits is told why
                if not self._stop.is_set():
                    self._fail(_one_line(exc) + self._stderr_tail())
                if isinstance(exc, asyncio.CancelledError):
                    raise
            finally:
                if self.status == "running":
                    self.status = "stopped" if self._stop.is_set() else "exited"
                    if self.status == "exited" and not self.error:
                        self.error = "the server closed the connection" + self._stderr_tail()
                self._session = None
                self._dead.set()
                self._ready.set()

    async def _serve(self) -> None:
        from mcp import ClientSession

        async with contextlib.AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._transport(stack))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            self._session = session
            self.status = "running"
            self._ready.set()
            await self._stop.wait()

    def _fail(self, error: str) -> None:
        self.status = "failed"
        self.error = error

    def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        if self.config.command is not None:
            from mcp import StdioServerParameters, stdio_client

            params = StdioServerParameters(
                command=self.config.command, args=self.config.args, env=self.environment(), cwd=self._cwd
            )
            return stdio_client(params, errlog=self._errlog)
        return _http_streams(self.config, stack)

    def environment(self) -> dict[str, str]:
        """The shell's filtered environment plus the variables ``env`` names (when set)."""
        env = shell_env(self._agent)
        env.update({n: os.environ[n] for n in self.config.env if n in os.environ})
        return env

    def _stderr_tail(self) -> str:
        if self._errlog is None or self._errlog.closed:
            return ""
        try:
            self._errlog.seek(0)
            lines = [line.strip() for line in self._errlog.read().splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return f" (stderr: {lines[-1][:200]})" if lines else ""

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), 10)
            except (TimeoutError, Exception):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task


@contextlib.asynccontextmanager
async def _http_streams(config: McpServerConfig, stack: contextlib.AsyncExitStack) -> Any:
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {h: os.environ[v] for h, v in config.headers_env.items() if v in os.environ}
    client = await stack.enter_async_context(create_mcp_http_client(headers=headers))
    assert config.url is not None
    async with streamable_http_client(config.url, http_client=client) as streams:
        yield streams[0], streams[1]


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _one_line(exc.exceptions[0])
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


@dataclass(frozen=True)
class ToolFilter:
    """A stage's ``tools=``/``exclude_tools=`` as applied to MCP tool names (globs)."""

    include: list[str] | None = None  # None: every MCP tool
    exclude: list[str] = field(default_factory=list)

    def allows(self, name: str) -> bool:
        if any(fnmatch.fnmatchcase(name, g) for g in self.exclude):
            return False
        return self.include is None or any(fnmatch.fnmatchcase(name, g) for g in self.include)

    def may_use(self, server: str) -> bool:
        """Whether some tool of ``server`` could pass (a server no tool needs never starts)."""
        if self.include is None:
            return True
        prefix = f"{PREFIX}{server}__"
        literals = (re.split(r"[*?\[]", g)[0] for g in self.include)
        return any(prefix.startswith(lit) or lit.startswith(prefix) for lit in literals)


@dataclass
class McpSession:
    """The MCP servers of one agent session: listed once, started lazily, stopped together.

    ``allow`` is the stage's tool filter (``tools=``/``exclude_tools=`` on MCP names)."""

    servers: dict[str, McpServer]
    allow: ToolFilter = field(default_factory=ToolFilter)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_config(
        cls,
        servers: dict[str, McpServerConfig],
        agent: AgentConfig,
        cwd: Path,
        allow: ToolFilter | None = None,
    ) -> McpSession:
        live = {n: McpServer(n, c, agent, cwd) for n, c in servers.items() if c.enabled}
        return cls(live, allow or ToolFilter())

    async def list_tools(self) -> tuple[list[McpToolDef], list[str]]:
        """Every allowed tool of every server that starts; a line per server that does not."""
        names = [n for n in self.servers if self.allow.may_use(n)]
        listed = await asyncio.gather(*(self._server_tools(n) for n in names))
        defs = [d for group in listed for d in group]
        return defs, list(self.problems)

    async def _server_tools(self, name: str) -> list[McpToolDef]:
        server = self.servers[name]
        try:
            tools = await server.list_tools()
        except McpServerError as exc:
            self.problems.append(str(exc))
            return []
        wanted = server.config.tools
        defs = []
        for tool in tools:
            if wanted is not None and not any(fnmatch.fnmatchcase(tool.name, g) for g in wanted):
                continue
            full = tool_name(name, tool.name)
            if not self.allow.allows(full):
                continue
            annotations = tool.annotations
            defs.append(
                McpToolDef(
                    server=name,
                    tool=tool.name,
                    name=full,
                    description=(tool.description or tool.title or tool.name)[:2000],
                    parameters=tool.input_schema or {"type": "object", "properties": {}},
                    read_only=bool(annotations is not None and annotations.read_only_hint),
                )
            )
        return defs

    def tools_from(self, defs: list[McpToolDef]) -> list[McpTool]:
        return [McpTool(d, self) for d in defs]

    async def call(self, tool: McpToolDef, args: dict[str, Any]) -> ToolResult:
        server = self.servers.get(tool.server)
        if server is None:
            raise McpServerError(f"MCP server {tool.server!r} is no longer configured or enabled")
        return to_tool_result(await server.call(tool.tool, args))

    async def aclose(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.servers.values()), return_exceptions=True)

    def close(self) -> None:
        """Stop every server (scheduled on the running loop; nothing to do when none started)."""
        if not any(s.status in ("starting", "running") for s in self.servers.values()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[None]] = set()


async def wait_closed() -> None:
    """Wait until every MCP session closed with :meth:`McpSession.close` has stopped its servers
    (the engine awaits this when it closes, so no server outlives it)."""
    while _closing:
        await asyncio.gather(*list(_closing), return_exceptions=True)


class McpTool:
    """An MCP tool as an agent :class:`Tool` (read-only only when the server says so)."""

    def __init__(self, definition: McpToolDef, session: McpSession) -> None:
        self.definition = definition
        self.name = definition.name
        self.description = definition.description
        self.parameters = definition.parameters
        self.read_only = definition.read_only
        self._session = session

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return await self._session.call(self.definition, args)


def to_tool_result(result: Any) -> ToolResult:
    """An MCP ``CallToolResult`` as a tool result: text kept, images and audio as a note."""
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            size = len(block.data) * 3 // 4
            parts.append(f"[{kind} {block.mime_type}, about {size} bytes, not shown]")
        elif kind == "resource":
            res = block.resource
            text = getattr(res, "text", None)
            parts.append(text if isinstance(text, str) else f"[binary resource {res.uri}, not shown]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content))
    output = "\n".join(parts) or "(no output)"
    return ToolResult(output, is_error=bool(result.is_error), metadata={"mcp": True})
