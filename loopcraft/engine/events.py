"""Engine events: typed dataclasses published on an in-process :class:`EventBus`.

The runtime also appends the events whose facts the journal holds nowhere else to its ``events``
table (``persist``): agent events (but text deltas), gate prompts and answers, loop notes. A run's
and its stages' lifecycle (run status, stage added, stage status, usage) is not stored twice: every
reader (the graph, ``show``, the app after a reload, stats, fork and replay) derives it from the
run and step rows, which are written in the same transaction as the events.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

log = logging.getLogger(__name__)


@dataclass
class EngineEvent:
    run_id: str
    type: ClassVar[str] = "event"
    persist: ClassVar[bool] = True

    def payload(self) -> dict[str, Any]:
        """The event's fields but ``run_id`` (shallow: nested dataclasses are encoded by :func:`event_json`)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "run_id"}


@dataclass
class RunStatus(EngineEvent):
    status: str = "pending"
    workflow: str = ""
    error: str | None = None
    resumed: bool = False  # ``running`` again: the run was resumed (not started)
    type: ClassVar[str] = "run_status"
    persist: ClassVar[bool] = False  # derived from the journal's rows


@dataclass
class StageAdded(EngineEvent):
    key: str = ""
    name: str = ""
    kind: str = "task"
    parents: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)  # a parallel group's branches and concurrency
    grants: list[str] = field(default_factory=list)  # protected paths it may write, "network"
    type: ClassVar[str] = "stage_added"
    persist: ClassVar[bool] = False  # derived from the journal's rows


@dataclass
class StageStatus(EngineEvent):
    """A stage's new status; ``started``/``finished`` are its journal times when the step has them
    (a resumed stage keeps its first start), so every view computes the same duration."""

    key: str = ""
    status: str = "running"
    model: str | None = None
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    type: ClassVar[str] = "stage_status"
    persist: ClassVar[bool] = False  # derived from the journal's rows


@dataclass
class StageEvent(EngineEvent):
    """An agent event of one stage; ``event`` is the agent's own event object."""

    key: str = ""
    kind: str = ""
    event: Any = None
    type: ClassVar[str] = "stage_event"

    def payload(self) -> dict[str, Any]:
        ev = self.event
        body = ev if ev is not None and hasattr(ev, "__dataclass_fields__") else {"value": repr(ev)}
        return {"key": self.key, "kind": self.kind, "event": body}


@dataclass
class PromptPending(EngineEvent):
    prompt_id: str = ""
    key: str = ""
    kind: str = "input"
    question: str = ""
    options: list[Any] | None = None
    type: ClassVar[str] = "prompt_pending"


@dataclass
class PromptAnswered(EngineEvent):
    prompt_id: str = ""
    key: str = ""
    answer: Any = None
    type: ClassVar[str] = "prompt_answered"


@dataclass
class UsageEvent(EngineEvent):
    key: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    run_usage: dict[str, Any] = field(default_factory=dict)
    type: ClassVar[str] = "usage"
    persist: ClassVar[bool] = False  # derived from the journal's rows


@dataclass
class LoopNote(EngineEvent):
    """A loop's one-line progress note (e.g. a turn's decision), from ``ctx.ledger().record(..., note=…)``."""

    key: str = ""
    kind: str = ""
    line: str = ""
    type: ClassVar[str] = "loop_note"


@dataclass
class StageFlag(EngineEvent):
    """A running stage marked ``stalled`` (no model or tool activity for ``engine.stall_after``;
    ``detail`` says its last event) or ``waiting`` (for a rate or usage limit that resets at
    ``until``, epoch seconds: the journaled wait deadline); ``flag`` None clears the mark."""

    key: str = ""
    flag: str | None = None
    detail: str = ""
    until: float | None = None
    type: ClassVar[str] = "stage_flag"


@dataclass
class BudgetNotice(EngineEvent):
    """The run has spent ``budget.warn_at`` of one limit (``limit``: ``tokens=50000``); once per
    limit per run, resumes included."""

    limit: str = ""
    used: float = 0.0
    cap: float = 0.0
    line: str = ""
    type: ClassVar[str] = "budget_notice"


@dataclass
class Heartbeat(EngineEvent):
    """A long run's periodic one-line progress (every ``notify.heartbeat_minutes``); not journaled."""

    line: str = ""
    type: ClassVar[str] = "heartbeat"
    persist: ClassVar[bool] = False


TEXT_DELTA_KINDS = frozenset({"text_delta", "TextDelta"})


def is_persisted(event: EngineEvent) -> bool:
    """Whether the event is journaled too: not lifecycle events (``persist``), nor text deltas."""
    return event.persist and not (isinstance(event, StageEvent) and event.kind in TEXT_DELTA_KINDS)


def _plain(value: Any) -> Any:
    """JSON for what ``json`` does not know: a dataclass as its fields (no deep copy), else text."""
    if hasattr(value, "__dataclass_fields__") and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    return str(value)


def event_json(event: EngineEvent) -> str:
    """The event's payload as compact JSON (what the journal stores)."""
    return json.dumps(event.payload(), separators=(",", ":"), default=_plain)


Subscriber = Callable[[EngineEvent], Any]


class EventBus:
    """Fan-out of engine events to callbacks and async iterators, in publication order."""

    def __init__(self) -> None:
        self._callbacks: list[Subscriber] = []
        self._queues: list[asyncio.Queue[EngineEvent]] = []
        self._background: set[asyncio.Future[Any]] = set()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (a coroutine result is scheduled); returns unsubscribe."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def publish(self, event: EngineEvent) -> None:
        for callback in list(self._callbacks):
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
            except Exception:  # a broken subscriber never breaks the engine
                log.exception("event subscriber failed")
        for queue in list(self._queues):
            queue.put_nowait(event)

    async def stream(self, run_id: str | None = None) -> AsyncIterator[EngineEvent]:
        """Iterate events (optionally of one run) from now on, until the consumer stops."""
        queue: asyncio.Queue[EngineEvent] = asyncio.Queue()
        self._queues.append(queue)
        try:
            while True:
                event = await queue.get()
                if run_id is None or event.run_id == run_id:
                    yield event
        finally:
            self._queues.remove(queue)
