"""The step protocol, in one place: look the step up in the journal → run it → record it.

A step kind is a small module that calls :func:`run_step` with a ``body`` (how to run) and an
``encode``/``decode`` pair (how to record and replay). :class:`Runtime` is the seam the step kinds,
the context and the run control see of an execution (implemented by
:class:`loopcraft.engine.runtime.Execution`), so none of them imports the runtime.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from loopcraft.engine.artifacts import RunFiles
from loopcraft.engine.budgets import RunBudget
from loopcraft.engine.events import EngineEvent, StageStatus, UsageEvent
from loopcraft.engine.graph import GRAPH_KINDS, USAGE_KINDS
from loopcraft.engine.journal import Journal, StepRow
from loopcraft.engine.tasks import TaskRunner, TaskSession
from loopcraft.errors import LoopcraftError
from loopcraft.models.types import Usage

if TYPE_CHECKING:
    from loopcraft.config import Config
    from loopcraft.engine.definition import Workflow
    from loopcraft.engine.discovery import WorkflowCatalog
    from loopcraft.engine.leases import Lease

STAGE_KINDS = GRAPH_KINDS  # steps that are stages: graph nodes, with events and parent edges
_KEY_UNSAFE = str.maketrans({"/": "_", ":": "_"})

idempotency_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("loopcraft_idem", default=None)
# A parallel branch given as an awaitable of a ctx call: its first step in ``scope`` starts after
# the parallel's parents (not after the siblings that finished before it had a slot).
branch_parents: contextvars.ContextVar[tuple[Scope, list[str]] | None] = contextvars.ContextVar(
    "loopcraft_branch_parents", default=None
)


def _start_parents(scope: Scope) -> list[str]:
    """A new step's parents: the parallel's parents for a branch's first step, else the frontier."""
    held = branch_parents.get()
    if held is not None and held[0] is scope:
        branch_parents.set(None)
        return list(held[1])
    return scope.frontier


class WorkflowExit(BaseException):
    """Raised by ``ctx.exit``: ends the run with ``status`` (a BaseException so ``except Exception``
    in workflow code does not swallow it)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class NonDeterminismError(LoopcraftError):
    """The workflow code no longer makes the calls the journal recorded."""

    exit_code = 1


class StepError(LoopcraftError):
    """A step failed (now or in the recorded past); the same error on every replay."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        name: str = "",
        error_type: str = "",
        run_status: str = "failed",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.error_type = error_type
        self.run_status = run_status


@dataclass
class Scope:
    """A step-key namespace: ``path`` plus a call counter, and the stage-graph frontier."""

    path: str
    depth: int = 0
    counter: int = 0
    frontier: list[str] = field(default_factory=list)

    def reserve(self, kind: str, name: str) -> tuple[str, str]:
        """Synchronously take the next position; returns (position, key)."""
        pos = f"{self.path}/{self.counter}"
        self.counter += 1
        safe = name.translate(_KEY_UNSAFE)
        return pos, f"{pos}:{kind}:{safe}" if safe else f"{pos}:{kind}"

    def child(self, key: str, *, depth: int | None = None, frontier: list[str] | None = None) -> Scope:
        return Scope(key, self.depth if depth is None else depth, 0, list(frontier or []))

    def settle(self, key: str, parents: list[str]) -> None:
        self.frontier = [k for k in self.frontier if k not in parents] + [key]


class StageControl(Protocol):
    """The run control as step kinds use it (:class:`loopcraft.engine.control.RunControl`)."""

    def attach(self, key: str, session: TaskSession) -> TaskSession: ...
    def detach(self, key: str) -> None: ...
    async def checkpoint(self, key: str | None = None) -> None: ...


class Runtime(Protocol):
    """What step kinds, the context and the run control use of one execution of one run."""

    run_id: str
    workspace: Path
    workflow: Workflow
    config: Config
    journal: Journal
    files: RunFiles
    runner: TaskRunner
    lease: Lease
    catalog: WorkflowCatalog | None
    run_model: str | None
    raised_budget: dict[str, Any] | None
    stop_at_gates: bool
    recorded: dict[str, StepRow]
    live: dict[str, TaskSession]
    usage: Usage
    seq: int
    last_session: Path | None
    pending_prompts: set[str]
    answer_signal: asyncio.Event

    @property
    def control(self) -> StageControl: ...

    def emit(self, event: EngineEvent) -> None: ...
    def announce(self, row: StepRow) -> None: ...
    def keep_spent(self, row: StepRow, session: Any, base: Usage | None = None) -> Usage | None: ...
    def current_budget(self) -> RunBudget: ...
    async def before_step(self, kind: str, name: str) -> None: ...
    async def set_status(self, status: str) -> None: ...
    def context(self, scope: Scope, inputs: dict[str, Any]) -> Any: ...


def check_step(rt: Runtime, pos: str, key: str, kind: str, name: str) -> StepRow | None:
    """The recorded step at ``pos`` (None if there is none); a different kind or name is an error."""
    row = rt.recorded.get(pos)
    if row is None:
        return None
    if row.kind != kind or row.name != name:
        raise NonDeterminismError(
            f"non-deterministic workflow in run {rt.run_id}: step {pos} was recorded as {row.kind} "
            f"{row.name!r} but the code now calls {kind} {name!r}; restore the code the run started "
            "with, or start a new run"
        )
    return row


async def run_step(
    rt: Runtime,
    scope: Scope,
    pos: str,
    key: str,
    kind: str,
    name: str,
    body: Callable[[StepRow], Awaitable[Any]],
    *,
    parents: list[str] | None = None,
    encode: Callable[[Any], Any] = lambda v: v,
    decode: Callable[[Any], Any] = lambda v: v,
    usage_of: Callable[[Any], Usage | None] = lambda v: None,
    grants: list[str] | None = None,
) -> Any:
    """Check, run, record. ``body(row)`` does the work; its value is ``encode``d into the journal
    (``grants``: what the stage was granted, recorded on its row for the graph)."""
    row = check_step(rt, pos, key, kind, name)
    if row is not None and row.status == "completed":
        value = decode(rt.files.load_output(row.output))
        if row.usage:
            rt.usage = rt.usage + Usage.from_dict(row.usage)
            if kind in ("task", "stage_prompt", "workflow"):
                rt.current_budget().charge(Usage.from_dict(row.usage))
        if kind in USAGE_KINDS:
            rt.current_budget().count_stage()
        if kind in STAGE_KINDS:
            scope.settle(key, row.parents)
        return value
    if row is not None and row.status == "failed" and not _recheck(row):
        if row.usage and kind in USAGE_KINDS:
            rt.usage = rt.usage + Usage.from_dict(row.usage)
            rt.current_budget().charge(Usage.from_dict(row.usage))
        if kind in STAGE_KINDS:
            scope.settle(key, row.parents)
        raise recorded_error(row)
    is_stage = kind in STAGE_KINDS
    if row is not None and row.usage and kind in USAGE_KINDS:
        # stopped earlier having spent this (its agent's restored transcript does not charge the
        # run's budget): a raised budget on resume is the limit on the total, not on top of it
        rt.current_budget().charge(Usage.from_dict(row.usage))
    await rt.before_step(kind, name)
    if row is None:
        row = await start_row(
            rt, pos, key, kind, name, _start_parents(scope) if parents is None else parents, grants or []
        )
    elif row.status != "running" or row.error is not None:  # stopped earlier: runs again, afresh
        row.status, row.error, row.finished = "running", None, None
        await rt.journal.finish_step(row)
    if is_stage:
        rt.announce(row)  # a step recorded by an earlier execution too (resume)
        rt.emit(StageStatus(rt.run_id, key, "running", started=row.started))
    try:
        value = await body(row)
    except Exception as exc:
        await record_failure(rt, row, exc)
        if is_stage:
            scope.settle(key, row.parents)
        if isinstance(exc, StepError | NonDeterminismError):
            raise
        raise recorded_error(row) from exc
    encoded = encode(value)
    usage = usage_of(value)
    row.status, row.finished = "completed", time.time()
    row.output = rt.files.store_output(key, encoded)
    if usage is not None:
        row.usage = usage.to_dict()
        rt.usage = rt.usage + usage
    await rt.journal.finish_step(row)
    if is_stage:
        scope.settle(key, row.parents)
        rt.emit(StageStatus(rt.run_id, key, "completed", row.model, None, row.started, row.finished))
        if usage is not None:
            rt.emit(UsageEvent(rt.run_id, key, row.usage or {}, rt.usage.to_dict()))
    return decode(encoded)


async def run_structural(
    rt: Runtime, scope: Scope, pos: str, key: str, kind: str, body: Callable[[StepRow], Awaitable[Any]]
) -> Any:
    """A grouping step (chain, parallel): journaled for determinism, its children hold the results."""
    row = check_step(rt, pos, key, kind, "") or await start_row(rt, pos, key, kind, "", scope.frontier)
    value = await body(row)
    if row.status != "completed":
        row.status, row.finished, row.error = "completed", time.time(), None
        await rt.journal.finish_step(row)
    return value


async def start_row(
    rt: Runtime, pos: str, key: str, kind: str, name: str, parents: list[str], grants: list[str] | None = None
) -> StepRow:
    """Journal a new running step at ``pos`` (the next in sequence)."""
    rt.seq += 1
    row = StepRow(
        rt.run_id,
        key,
        pos,
        kind,
        name,
        "running",
        started=time.time(),
        parents=list(parents),
        seq=rt.seq,
        grants=list(grants or []),
    )
    rt.recorded[pos] = row
    await rt.journal.start_step(row)
    return row


async def record_failure(rt: Runtime, row: StepRow, exc: BaseException) -> None:
    if isinstance(exc, NonDeterminismError):
        return  # the code is wrong, not the step: never record it
    message = str(exc) if isinstance(exc, LoopcraftError) else f"{type(exc).__name__}: {exc}"
    row.status, row.finished = "failed", time.time()
    row.error = {
        "type": type(exc).__name__,
        "message": message,
        "run_status": getattr(exc, "run_status", "failed"),
    }
    await rt.journal.finish_step(row)
    if row.kind in STAGE_KINDS:
        rt.emit(StageStatus(rt.run_id, row.key, "failed", row.model, message, row.started, row.finished))


RECHECKED_ERRORS = frozenset({"SessionError"})
"""Failures of a step's files, not of its work (a damaged transcript): checked again on every
resume instead of replayed, so a restored file makes the run resumable again."""


def _recheck(row: StepRow) -> bool:
    return (row.error or {}).get("type") in RECHECKED_ERRORS


def recorded_error(row: StepRow) -> StepError:
    """The :class:`StepError` a failed step raises, now and on every replay (from its journal row)."""
    err = row.error or {}
    return StepError(
        err.get("message", f"step {row.key} failed"),
        kind=row.kind,
        name=row.name,
        error_type=err.get("type", ""),
        run_status=err.get("run_status", "failed"),
    )


def spent_total(rows: list[StepRow]) -> Usage:
    """What a run's stages spent, finished or not: the sum of its task and stage-prompt steps' usage."""
    return sum((Usage.from_dict(r.usage) for r in rows if r.kind in USAGE_KINDS and r.usage), Usage())
