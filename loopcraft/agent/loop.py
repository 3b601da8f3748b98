"""The inner loop: one agent session calls the model and runs its tools until it answers.

Every model response, tool start and tool result is journaled to the session's JSONL as it
happens, so an :class:`Agent` rebuilt from the same file continues where the last process
stopped without re-calling the model for turns it already has. The runtime (not the
prompt) enforces budgets, repeated-action and malformed-call limits, permissions,
steering and interrupts. A model call that overflows the context window compacts the
history and tries the same model again before the fallback chain moves on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from loopcraft.agent import prompts
from loopcraft.agent.budget import Budget, Limits, first_exceeded, tokens_left
from loopcraft.agent.compaction import Compactor, message_chars
from loopcraft.agent.containment import run_contained
from loopcraft.agent.events import (
    AgentEvent,
    BudgetWarning,
    Compaction,
    EventCallback,
    FollowUpQueued,
    ModelRetries,
    Steered,
    Stopped,
    TextDelta,
    ToolCallEnd,
    ToolCallStart,
    TurnEnd,
    TurnStart,
    UsageUpdate,
)
from loopcraft.agent.loopdetect import RepeatDetector, repeat_warning
from loopcraft.agent.session import SessionHeader, SessionLog, new_session_id
from loopcraft.agent.tools.base import Tool, ToolContext, ToolError, ToolResult, tool_schema
from loopcraft.config import AgentConfig
from loopcraft.errors import LoopcraftError
from loopcraft.models.callbacks import deliver
from loopcraft.models.client import ModelClient
from loopcraft.models.errors import ContextOverflowError, LimitHit, ModelCallError, limit_hit
from loopcraft.models.info import client_context_window
from loopcraft.models.retry import failed_outcomes
from loopcraft.models.types import (
    CompletionRequest,
    CompletionResult,
    Delta,
    DeltaCallback,
    Message,
    OverflowPolicy,
    ToolCall,
    ToolSchema,
    Usage,
)

if TYPE_CHECKING:
    from loopcraft.agent.mcp import McpSession
    from loopcraft.agent.permissions import PermissionPolicy

Status = Literal["completed", "budget_exceeded", "blocked", "interrupted", "failed"]
Stop = tuple[Status, str]
CallState = Literal["ran", "invalid", "budget"]
SafePoint = Callable[[], Awaitable[None]]
T = TypeVar("T")

TOOL_GRACE_S = (
    0.5  # after an interrupt, a tool gets this long to stop on ctx.cancel before its task is cancelled
)


@dataclass
class AgentResult:
    text: str
    status: Status
    reason: str
    usage: Usage  # the whole session's usage
    turns: int  # model turns since the last prompt
    tool_calls: int  # tool calls run since the last prompt
    model: str | None  # the model that gave the last answer
    limit: LimitHit | None = None  # blocked by a rate or usage limit: which, on which models, reset time


@dataclass
class _Pending:
    """A tool call found unresolved in the transcript on resume."""

    call: ToolCall
    started: bool


@dataclass
class _Segment:
    """Counters since the last user prompt (what the agent's own limits apply to)."""

    budget: Budget
    repeat: RepeatDetector
    malformed: int = 0
    steer_skipped: int = 0


def create_session(
    path: Path,
    *,
    workspace: Path,
    model: str,
    tools: list[Tool] | None = None,
    system_prompt: str | None = None,
    stage: str = "chat",
    session_id: str | None = None,
    guard: Callable[[], None] | None = None,
    durable: bool = True,
) -> SessionLog:
    """A new session file whose header carries the system prompt and tool names the agent will use."""
    tools = _default_tools() if tools is None else tools
    header = SessionHeader(
        id=session_id or new_session_id(),
        workspace=str(workspace),
        model=model,
        system_prompt=system_prompt or prompts.default_system_prompt(str(workspace)),
        tools=[t.name for t in tools],
        stage=stage,
    )
    return SessionLog.create(path, header, guard=guard, durable=durable)


def _default_tools() -> list[Tool]:
    from loopcraft.agent.tools.registry import default_tools

    return default_tools()


class Agent:
    """One agent session. ``run(prompt)`` works until the model answers; ``run()`` resumes."""

    def __init__(
        self,
        *,
        client: ModelClient,
        session: SessionLog,
        workspace: Path,
        model: str,
        fallback_models: list[str] | None = None,
        tools: list[Tool] | None = None,
        policy: PermissionPolicy | None = None,
        config: AgentConfig | None = None,
        limits: Limits | None = None,
        budget: Budget | None = None,
        stage: str = "chat",
        system_prompt: str | None = None,
        response_format: dict[str, Any] | None = None,
        on_event: EventCallback | None = None,
        safe_point: SafePoint | None = None,
        context_window: int | None = None,
        mcp: McpSession | None = None,
        wrap_tools: Callable[[list[Tool]], list[Tool]] | None = None,
    ) -> None:
        self.client = client
        self.session = session
        self.workspace = Path(workspace)
        self.model = model
        self.fallback_models = list(fallback_models or [])
        self.config = config or AgentConfig()
        self.tools = _default_tools() if tools is None else list(tools)
        self.policy = policy if policy is not None else _default_policy(self.config)
        self.limits = Limits.from_config(self.config, limits)
        self.shared_budget = budget
        self.stage = stage
        self.response_format = response_format
        self.on_event = on_event
        self.safe_point = safe_point
        self.context_window = context_window
        self._window_given = context_window is not None  # else asked of the client, per model
        self.system_prompt = (
            session.header.system_prompt
            or system_prompt
            or prompts.default_system_prompt(str(self.workspace))
        )
        self.messages: list[Message] = [{"role": "system", "content": self.system_prompt}]
        self.usage = Usage()
        self.turns = 0  # every model turn in the session
        self.last_text = ""
        self.last_model: str | None = None
        self.limit: LimitHit | None = None  # the rate or usage limit that stopped the last run
        self._tools = {t.name: t for t in self.tools}
        self._schemas = [tool_schema(t) for t in self.tools]
        self._fixed_chars = len(self.system_prompt) + len(json.dumps(self._schemas))
        self._chars = 0
        self._seg = self._new_segment()
        self._compactor = Compactor(client, stage=stage, keep_recent_turns=self.config.keep_recent_turns)
        self._compaction_error = ""  # why the last compaction did not change the history
        self._steers: list[str] = []
        self._follow_ups: list[str] = []
        self._cancel = asyncio.Event()
        self._model_tasks: set[asyncio.Task[Any]] = set()
        self._tool_tasks: set[asyncio.Task[Any]] = set()
        self._interrupted = False
        self._running = False
        self._pending: list[_Pending] = []
        self._truncated = False  # the last reply was stopped by the output cap
        self.mcp = mcp
        self.wrap_tools = wrap_tools  # e.g. the stage's lease fence, applied to MCP tools too
        self._mcp_listed = mcp is None  # MCP tools are listed once per session, at its first run
        self._restore(session.entries)
        recorded_model = self._recorded_model(session)
        if recorded_model != model:
            session.append("model_change", model=model, previous=recorded_model)

    # ---- public control -------------------------------------------------------------

    async def run(self, prompt: str | None = None) -> AgentResult:
        """Work on ``prompt`` (or, with None, continue the session) until a stop condition."""
        if self._running:
            raise LoopcraftError("the agent is already running; steer or interrupt it instead")
        self._running = True
        self._interrupted = False
        self.limit = None
        self._cancel = asyncio.Event()
        self._seg.budget.restart_clock()  # wall time counts per run() call
        try:
            self.session.append("status", status="running", reason="")
            await self._list_mcp_tools()
            if prompt is not None:
                self._seg = self._new_segment()
                self._append_message({"role": "user", "content": prompt}, source="prompt")
            elif not self._pending and self._answered() and not self._steers:
                if not self._follow_ups:
                    return await self._finish(("completed", "nothing to continue: the agent has answered"))
                self._deliver_follow_up()
            stop = await self._loop()
        except asyncio.CancelledError:
            if self._interrupted:
                return await self._finish(("interrupted", "interrupted by the user"))
            raise
        finally:
            self._running = False
        return await self._finish(stop)

    def steer(self, text: str) -> None:
        """Deliver ``text`` after the current tool batch; tool calls not yet started are skipped."""
        self._steers.append(text)

    def follow_up(self, text: str) -> None:
        """Deliver ``text`` when the agent would otherwise stop."""
        self._follow_ups.append(text)
        self._emit_nowait(FollowUpQueued(text))

    def interrupt(self) -> None:
        """Stop the in-flight model call or tool now; the session stays resumable."""
        if not self._running:
            return
        self._interrupted = True
        self._cancel.set()
        for task in list(self._model_tasks):
            task.cancel()
        loop = asyncio.get_running_loop()
        for task in list(self._tool_tasks):
            loop.call_later(TOOL_GRACE_S, task.cancel)

    def set_model(self, model: str) -> None:
        """Switch the model for later turns (recorded in the transcript)."""
        if model != self.model:
            self.session.append("model_change", model=model, previous=self.model)
            self.model = model
            if not self._window_given:
                self.context_window = None  # the new model's window, asked again

    async def compact(self) -> bool:
        """Compact the history now (on demand); True when it changed."""
        if self._running:
            raise LoopcraftError("cannot compact while the agent is running; interrupt it first")
        return await self._compact("on_demand")

    @property
    def running(self) -> bool:
        return self._running

    def estimated_tokens(self) -> int:
        return (self._fixed_chars + self._chars) // 4

    # ---- the loop -------------------------------------------------------------------

    async def _loop(self) -> Stop:
        if self._pending:
            stop = await self._resolve_pending()
            if stop:
                return stop
        while True:
            self._deliver_steers()
            if self._interrupted:
                return ("interrupted", "interrupted by the user")
            limit = self._exceeded()
            if limit:
                return await self._wrap_up(limit)
            await self._auto_compact()
            outcome = await self._model_turn(self._schemas)
            if isinstance(outcome, tuple):
                return outcome
            await self._safe_point()
            if outcome.tool_calls:
                limit = self._exceeded(counts=False)
                if limit:
                    await self._skip(outcome.tool_calls, prompts.skipped_budget(limit))
                    return await self._wrap_up(limit)
                stop = await self._run_tool_calls(outcome.tool_calls)
                if stop:
                    return stop
                continue
            if self._steers or self._interrupted:
                continue
            if self._follow_ups:
                self._deliver_follow_up()
                continue
            return ("completed", "")

    async def _model_turn(self, tools: list[dict[str, Any]]) -> CompletionResult | Stop:
        turn = self.turns + 1
        await self._emit(TurnStart(turn, self.model))

        async def on_delta(delta: Delta) -> None:
            if delta.kind == "text" and delta.text:
                await self._emit(TextDelta(delta.text, turn))

        try:
            result = await self._call_model(tools, on_delta)
        except asyncio.CancelledError:
            if self._interrupted:
                return ("interrupted", "interrupted by the user during a model call")
            raise
        except Exception as exc:  # the model layer already retried and walked the fallbacks
            if isinstance(exc, ModelCallError) and exc.attempts:
                await self._emit(ModelRetries(turn, failed_outcomes(exc.attempts)))
            hit = limit_hit(exc)
            if hit is not None:  # not the work's failure: the caller may wait for the reset
                self.limit = hit
                return ("blocked", limit_reason(hit))
            return ("failed", f"model call failed: {exc}")
        if isinstance(result, tuple):
            return result
        if any(not a.ok for a in result.attempts):
            await self._emit(ModelRetries(turn, failed_outcomes(result.attempts)))
        self.turns = turn
        for budget in self._budgets():
            budget.add_turn()
            budget.charge(result.usage)
        self._record_usage(result.usage, turn, "turn")
        failed = [a.to_dict() for a in result.attempts if not a.ok]
        self._append_message(
            result.assistant_message(),
            model=result.model,
            finish_reason=result.finish_reason,
            turn=turn,
            **({"failed_attempts": failed} if failed else {}),  # retries, fallbacks, context overflows
        )
        self.last_text = result.text
        self.last_model = result.model
        self._truncated = result.truncated
        await self._emit(UsageUpdate(result.usage, self.usage, turn))
        await self._emit(TurnEnd(turn, result.text, len(result.tool_calls), result.model))
        return result

    async def _call_model(self, tools: list[ToolSchema], on_delta: DeltaCallback) -> CompletionResult | Stop:
        """The turn's model call. On context overflow the history is compacted and the model that
        overflowed is asked again; only when compaction can't help (nothing to drop, it failed or
        gave up, or the retry overflows too) does the call move on along the fallback chain."""
        chain = list(dict.fromkeys([self.model, *self.fallback_models]))
        try:
            return await self._request(chain, tools, on_delta, "raise")
        except ContextOverflowError as exc:
            overflow = exc
        rest = chain[overflow.index :]
        compacted = not self._compactor.gave_up and await self._compact("overflow")
        if self._interrupted:
            raise asyncio.CancelledError
        why = "even after compaction" if compacted else f"and compaction can't help ({self._overflow_why()})"
        if not compacted:
            rest = rest[1:]  # the model that overflowed would only overflow again
            if not rest:
                return ("failed", f"{overflow} {why}; there is no fallback model")
        try:
            result = await self._request(rest, tools, on_delta, "fallback")
        except ModelCallError as exc:
            error = ModelCallError(overflow.attempts + exc.attempts)
            if error.error_class == "context_overflow":
                return ("failed", f"context overflow {why}: {error}")
            raise error from exc
        result.attempts = overflow.attempts + result.attempts
        return result

    def _overflow_why(self) -> str:
        if self._compactor.gave_up:
            return f"compaction gave up after {self._compactor.failures} failures in a row"
        return self._compaction_error or "compaction did not change the history"

    async def _request(
        self, chain: list[str], tools: list[ToolSchema], on_delta: DeltaCallback, overflow: OverflowPolicy
    ) -> CompletionResult:
        request = CompletionRequest(
            model=chain[0],
            messages=list(self.messages),
            tools=tools,
            fallback_models=chain[1:],
            stage=self.stage,
            response_format=self.response_format,
            overflow=overflow,
            max_tokens=self._output_cap(),
        )
        return await self._cancellable(self.client.complete(request, on_delta), self._model_tasks)

    def _output_cap(self) -> int | None:
        """The call's ``max_tokens``: what the token budgets (the agent's, the run's) have left,
        so a budget smaller than one call is not overshot by the reply (None: no token limit;
        a budget already spent, e.g. the wrap-up turn, leaves the model's own limit)."""
        left = tokens_left(self._budgets())
        return left if left else None

    async def _wrap_up(self, limit: str) -> Stop:
        """One last turn without tools, then stop as ``budget_exceeded``."""
        reason = f"budget exceeded: {limit}"
        await self._emit(BudgetWarning(limit, reason))
        self._append_message({"role": "user", "content": prompts.wrap_up_prompt(limit)}, source="wrapup")
        outcome = await self._model_turn([])
        if isinstance(outcome, tuple):
            status, why = outcome
            return (status, why) if status == "interrupted" else ("budget_exceeded", f"{reason} ({why})")
        if outcome.tool_calls:
            await self._skip(outcome.tool_calls, prompts.skipped_budget(limit))
        return ("budget_exceeded", reason)

    # ---- tools ----------------------------------------------------------------------

    def _read_only(self, call: ToolCall) -> bool:
        tool = self._tools.get(call.name)
        return tool is not None and tool.read_only

    def _batches(self, calls: list[ToolCall]) -> list[list[ToolCall]]:
        """Consecutive read-only calls form one concurrent batch; every other call is alone."""
        batches: list[list[ToolCall]] = []
        for call in calls:
            if batches and self._read_only(call) and self._read_only(batches[-1][-1]):
                batches[-1].append(call)
            else:
                batches.append([call])
        return batches

    async def _run_tool_calls(self, calls: list[ToolCall]) -> Stop | None:
        batches = self._batches(calls)
        for index, batch in enumerate(batches):
            rest = [c for b in batches[index:] for c in b]
            if self._interrupted:
                await self._skip(rest, prompts.SKIPPED_INTERRUPT)
                return ("interrupted", "interrupted by the user")
            if self._steers:
                await self._skip(rest, prompts.SKIPPED_STEER)
                self._seg.steer_skipped += len(rest)
                return None
            if len(batch) == 1:
                outcomes = [await self._call(batch[0])]
            else:
                outcomes = list(await asyncio.gather(*(self._call(c) for c in batch)))
            blocked = False
            for call, (result, state) in zip(batch, outcomes, strict=True):
                blocked = await self._conclude(call, result, state) or blocked
            later = [c for b in batches[index + 1 :] for c in b]
            if any(state == "budget" for _, state in outcomes):
                limit = first_exceeded(self._budgets()) or "max_tool_calls"
                await self._skip(later, prompts.skipped_budget(limit))
                return await self._wrap_up(limit)
            stop = await self._after_batch(blocked, later)
            if stop:
                return stop
            await self._safe_point()
        return None

    async def _after_batch(self, blocked: bool, rest: list[ToolCall]) -> Stop | None:
        if blocked:
            await self._skip(rest, "skipped: the agent was stopped for repeating the same action")
            return (
                "blocked",
                f"repeated action: the same tool call returned the same result "
                f"{2 * self.config.repeat_limit} times",
            )
        if self._seg.malformed >= self.config.max_malformed:
            await self._skip(rest, "skipped: the agent was stopped after too many malformed tool calls")
            return ("failed", f"{self._seg.malformed} malformed tool calls in a row")
        return None

    async def _call(self, call: ToolCall) -> tuple[ToolResult, CallState]:
        """Validate, authorize and run one tool call; the result and what became of the call."""
        await self._emit(ToolCallStart(call.id, call.name, call.arguments))
        tool = self._tools.get(call.name)
        if tool is None:
            self._seg.malformed += 1
            known = ", ".join(sorted(self._tools)) or "none"
            return ToolResult(
                f"unknown tool {call.name!r}; available tools: {known}", is_error=True
            ), "invalid"
        try:
            args = call.parsed()
        except ValueError as exc:
            self._seg.malformed += 1
            return ToolResult(
                prompts.invalid_arguments(call.name, str(exc), self._truncated), is_error=True
            ), "invalid"
        self._seg.malformed = 0
        if not all(b.tool_calls_left() for b in self._budgets()):
            limit = first_exceeded(self._budgets()) or "max_tool_calls"
            return ToolResult(prompts.skipped_budget(limit), is_error=True), "budget"
        for budget in self._budgets():
            budget.add_tool_calls()
        return await self._execute(tool, call, args), "ran"

    async def _conclude(self, call: ToolCall, result: ToolResult, state: CallState) -> bool:
        """Loop detection and the journal entry for a finished call; True when it must stop."""
        verdict = "ok"
        if state == "ran":
            verdict = self._seg.repeat.observe(call.name, call.arguments, result.output, result.is_error)
        if verdict == "warn":
            warning = repeat_warning(call.name, self.config.repeat_limit)
            result = ToolResult(f"{result.output}\n\n{warning}", result.is_error, result.metadata)
            await self._emit(BudgetWarning("repeat_limit", warning))
        await self._record_result(call, result, skipped=state == "budget")
        return verdict == "block"

    async def _execute(self, tool: Tool, call: ToolCall, args: dict[str, Any]) -> ToolResult:
        try:
            token = None
            if self.policy is not None:
                auth = await self._cancellable(
                    self.policy.authorize(tool, args, self.workspace), self._tool_tasks
                )
                if not auth.allowed:
                    return ToolResult(f"permission denied: {auth.reason}", is_error=True)
                token = auth.token
            self.session.append(
                "tool_call_start",
                sync=not tool.read_only,  # a lost read-only start is harmless: it is re-run on resume
                call_id=call.id,
                name=call.name,
                arguments=call.arguments,
                read_only=tool.read_only,
            )
            if not tool.read_only:  # on stable storage before the side effect, never repeated blindly
                await self.session.wait_durable()
            ctx = ToolContext(self.workspace, self.config, self._cancel, approval=token)
            return await self._cancellable(run_contained(tool, args, ctx), self._tool_tasks)
        except asyncio.CancelledError:
            if self._interrupted:
                return ToolResult(prompts.INTERRUPTED_TOOL, is_error=True)
            raise
        except ToolError as exc:
            return ToolResult(str(exc), is_error=True)
        except Exception as exc:
            return ToolResult(f"tool {tool.name} failed: {type(exc).__name__}: {exc}", is_error=True)

    async def _record_result(self, call: ToolCall, result: ToolResult, *, skipped: bool = False) -> None:
        self.session.append(
            "tool_result",
            sync=not self._read_only(call),  # a lost read-only result is re-run on resume
            call_id=call.id,
            name=call.name,
            output=result.output,
            is_error=result.is_error,
            metadata=result.metadata,
            skipped=skipped,
        )
        self._add_history(_tool_message(call.id, result.output))
        await self._emit(ToolCallEnd(call.id, call.name, result.output, result.is_error, result.metadata))

    async def _skip(self, calls: list[ToolCall], text: str) -> None:
        for call in calls:
            await self._record_result(call, ToolResult(text, is_error=True), skipped=True)

    async def _resolve_pending(self) -> Stop | None:
        """Finish the tool calls a previous process left unresolved."""
        pending, self._pending = self._pending, []
        rerun: list[ToolCall] = []
        for item in pending:
            tool = self._tools.get(item.call.name)
            if item.started and not (tool is not None and tool.read_only):
                await self._record_result(item.call, ToolResult(prompts.OUTCOME_UNKNOWN, is_error=True))
            else:
                rerun.append(item.call)
        return await self._run_tool_calls(rerun) if rerun else None

    # ---- MCP tools ----------------------------------------------------------------------

    async def _list_mcp_tools(self) -> None:
        """Start the session's MCP servers and add their tools, once (recorded, so a resumed
        session keeps the same tool definitions and never lists them again)."""
        if self._mcp_listed or self.mcp is None:
            return
        self._mcp_listed = True
        defs, problems = await self.mcp.list_tools()
        tools = [d.to_dict() for d in defs]
        self.session.append("mcp_tools", tools=tools, problems=problems)
        self._add_mcp_tools(tools)
        for problem in problems:
            await self._emit(BudgetWarning("mcp", problem))

    def _add_mcp_tools(self, recorded: list[dict[str, Any]]) -> None:
        self._mcp_listed = True
        if self.mcp is None:
            return  # no servers configured any more: calls to them get "unknown tool"
        from loopcraft.agent.mcp import McpToolDef

        tools: list[Tool] = list(self.mcp.tools_from([McpToolDef.from_dict(t) for t in recorded]))
        tools = [t for t in tools if t.name not in self._tools]
        if self.wrap_tools is not None:
            tools = self.wrap_tools(tools)
        self.tools += tools
        self._tools.update((t.name, t) for t in tools)
        self._schemas += [tool_schema(t) for t in tools]
        self._fixed_chars = len(self.system_prompt) + len(json.dumps(self._schemas))

    # ---- steering, budgets, compaction ------------------------------------------------

    def _deliver_steers(self) -> None:
        while self._steers:
            text = self._steers.pop(0)
            self._append_message({"role": "user", "content": text}, source="steer")
            skipped, self._seg.steer_skipped = self._seg.steer_skipped, 0
            self._emit_nowait(Steered(text, skipped))

    def _deliver_follow_up(self) -> None:
        text = self._follow_ups.pop(0)
        self._append_message({"role": "user", "content": text}, source="follow_up")

    def _budgets(self) -> list[Budget]:
        return [self._seg.budget] if self.shared_budget is None else [self._seg.budget, self.shared_budget]

    def _exceeded(self, *, counts: bool = True) -> str | None:
        return first_exceeded(self._budgets(), counts=counts)

    def _new_segment(self) -> _Segment:
        return _Segment(Budget(self.limits), RepeatDetector(self.config.repeat_limit))

    def _window(self) -> int:
        if self.context_window is None:
            self.context_window = client_context_window(self.client, self.model)
        return self.context_window

    async def _auto_compact(self) -> None:
        if self._compactor.gave_up:
            return
        if self.estimated_tokens() <= self.config.compaction_threshold * self._window():
            return
        await self._compact("threshold")

    async def _compact(self, reason: str) -> bool:
        """Compact the older history (``reason``: threshold, on_demand or overflow); True when it changed."""
        history = self.messages[1:]
        self._compaction_error = ""
        if not self._compactor.can_compact(history):
            self._compaction_error = "nothing old enough to compact"
            return False
        before = self.estimated_tokens()
        try:
            outcome = await self._cancellable(
                self._compactor.compact(history, self.model, self.fallback_models), self._model_tasks
            )
        except asyncio.CancelledError:
            if self._interrupted:
                return False
            raise
        for budget in self._budgets():
            budget.charge(outcome.usage)
        self._record_usage(outcome.usage, self.turns, "compaction")
        if not outcome.ok:
            self._compaction_error = f"compaction failed: {outcome.error}"
            await self._emit(BudgetWarning("compaction", self._compaction_error))
            return False
        self.session.append(
            "compaction",
            reason=reason,
            method=outcome.method,
            prefix_len=outcome.prefix_len,
            messages=outcome.replacement,
            dropped_lines=outcome.dropped_lines,
        )
        self._set_history(outcome.replacement + history[outcome.prefix_len :])
        await self._emit(
            Compaction(outcome.method, before, self.estimated_tokens(), outcome.dropped_lines, reason)
        )
        return True

    # ---- transcript and history ------------------------------------------------------

    def _append_message(self, message: Message, **extra: Any) -> None:
        self.session.append("message", message=message, **extra)
        self._add_history(message)

    def _add_history(self, message: Message) -> None:
        self.messages.append(message)
        self._chars += message_chars(message)

    def _set_history(self, history: list[Message]) -> None:
        self.messages = [self.messages[0], *history]
        self._chars = sum(message_chars(m) for m in history)

    def _record_usage(self, usage: Usage, turn: int, source: str) -> None:
        self.usage = self.usage + usage
        self.session.append(  # made durable by the message entry that follows it
            "usage", sync=False, turn=turn, source=source, usage=usage.to_dict(), total=self.usage.to_dict()
        )

    def _answered(self) -> bool:
        last = self.messages[-1]
        return last.get("role") == "assistant" and not last.get("tool_calls")

    def _restore(self, entries: list[dict[str, Any]]) -> None:
        """Rebuild history, usage and counters from a transcript's entries."""
        history: list[Message] = []
        calls: dict[str, ToolCall] = {}
        started: set[str] = set()
        resolved: set[str] = set()
        open_calls: list[ToolCall] = []
        for entry in entries:
            kind = entry.get("type")
            if kind == "message":
                message = entry["message"]
                history.append(message)
                if entry.get("source") == "prompt":
                    self._seg = self._new_segment()
                if message.get("role") == "assistant":
                    self.turns += 1
                    self._seg.budget.add_turn()
                    self.last_text = message.get("content") or ""
                    self.last_model = entry.get("model")
                    open_calls = [
                        ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
                        for c in message.get("tool_calls") or ()
                    ]
                    calls.update((c.id, c) for c in open_calls)
            elif kind == "tool_call_start":
                started.add(entry["call_id"])
            elif kind == "tool_result":
                history.append(_tool_message(entry["call_id"], entry["output"]))
                resolved.add(entry["call_id"])
                call = calls.get(entry["call_id"])
                if call is not None and not entry.get("skipped"):
                    self._seg.budget.add_tool_calls()
                    self._seg.repeat.observe(call.name, call.arguments, entry["output"], entry["is_error"])
            elif kind == "compaction":
                history = list(entry["messages"]) + history[entry["prefix_len"] :]
            elif kind == "mcp_tools":
                self._add_mcp_tools(entry.get("tools") or [])
            elif kind == "usage":
                self.usage = Usage.from_dict(entry.get("total"))
                self._seg.budget.charge(Usage.from_dict(entry.get("usage")))
        self._set_history(history)
        self._pending = [_Pending(c, c.id in started) for c in open_calls if c.id not in resolved]

    @staticmethod
    def _recorded_model(session: SessionLog) -> str:
        model = session.header.model
        for entry in session.entries:
            if entry.get("type") == "model_change":
                model = entry["model"]
        return model

    # ---- plumbing ---------------------------------------------------------------------

    async def _cancellable(self, coro: Coroutine[Any, Any, T], registry: set[asyncio.Task[Any]]) -> T:
        """Run ``coro`` as a task that :meth:`interrupt` can cancel."""
        task = asyncio.ensure_future(coro)
        registry.add(task)
        try:
            return await task
        finally:
            registry.discard(task)

    async def _safe_point(self) -> None:
        if self.safe_point is not None:
            await self.safe_point()

    async def _emit(self, event: AgentEvent) -> None:
        await deliver(self.on_event, event)

    def _emit_nowait(self, event: AgentEvent) -> None:
        """Emit from synchronous code: an async callback is scheduled on the running loop."""
        if self.on_event is None:
            return
        outcome = self.on_event(event)
        if asyncio.iscoroutine(outcome):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside the event loop: nothing can await it
                outcome.close()
                return
            task = loop.create_task(outcome)
            _background.add(task)
            task.add_done_callback(_background.discard)

    async def _finish(self, stop: Stop) -> AgentResult:
        status, reason = stop
        self.session.append(
            "status",
            status=status,
            reason=reason,
            turns=self._seg.budget.turns,
            tool_calls=self._seg.budget.tool_calls,
        )
        await self._emit(Stopped(status, reason))
        return AgentResult(
            self.last_text,
            status,
            reason,
            self.usage,
            self._seg.budget.turns,
            self._seg.budget.tool_calls,
            self.last_model or self.model,
            self.limit if status == "blocked" else None,
        )


_background: set[asyncio.Task[Any]] = set()


def limit_reason(hit: LimitHit) -> str:
    """``rate limit on openai/gpt-5.5 (resets at 14:05)``, or ``… (no reset time given)``."""
    import time

    when = (
        f"resets at {time.strftime('%H:%M:%S', time.localtime(hit.reset_at))}"
        if hit.reset_at is not None
        else "no reset time given"
    )
    detail = f": {hit.detail}" if hit.detail else ""
    return f"{hit.limit} on {hit.model_text} ({when}){detail}"


def _tool_message(call_id: str, output: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def _default_policy(config: AgentConfig) -> PermissionPolicy:
    """No policy given: the config's rules with no human to ask (fails closed)."""
    from loopcraft.agent.permissions import PermissionPolicy

    return PermissionPolicy(config)
