"""The watchdog of one live run: one task per execution that

- marks a running stage ``stalled`` when it had no model or tool activity for ``engine.stall_after``
  (with its last event), and clears the mark at its next event;
- posts a :class:`BudgetNotice` once the run has spent ``budget.warn_at`` of a limit (once per limit
  per run: notices already journaled by an earlier execution are not repeated);
- posts a :class:`Heartbeat` every ``notify.heartbeat_minutes`` (stages, turns, tokens, last activity).

It sees every event the execution emits (:meth:`Watchdog.saw`, cheap: a clock read and a dict update)
and emits through the execution, so its events reach the bus and the journal like any other.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

from loopcraft.engine.activity import ago, describe
from loopcraft.engine.budgets import RunBudget
from loopcraft.engine.events import (
    BudgetNotice,
    EngineEvent,
    Heartbeat,
    StageAdded,
    StageEvent,
    StageFlag,
    StageStatus,
)
from loopcraft.engine.names import short_id

_BUDGET_SQL = "SELECT payload FROM events WHERE run_id = ? AND type = 'budget_notice'"


class Watched(Protocol):
    """What the watchdog uses of an execution."""

    run_id: str
    config: Any
    budget: RunBudget
    live: dict[str, Any]
    journal: Any
    workflow: Any

    def emit(self, event: EngineEvent) -> None: ...

    @property
    def paused(self) -> bool: ...


@dataclass
class _Stage:
    name: str
    last: float  # monotonic
    what: str
    turns: int = 0
    running: bool = False
    stalled: bool = False
    waiting: bool = False


def _amount(name: str, value: float) -> str:
    if name == "dollars":
        return f"${value:.2f}"
    if name == "seconds":
        minutes, seconds = divmod(int(value), 60)
        return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
    return f"{int(value):,}"


def _idle(seconds: float) -> str:
    return ago(seconds).removesuffix(" ago")


class Watchdog:
    """Stalls, budget notices and heartbeats of one execution (see the module's docstring)."""

    def __init__(self, rt: Watched) -> None:
        self.rt = rt
        self.stages: dict[str, _Stage] = {}
        self.warned: set[str] = set()  # budget limits already noticed (``tokens=50000``)
        self.started = time.monotonic()
        self.last_beat = self.started

    @property
    def stall_after(self) -> float:
        return float(self.rt.config.engine.stall_after)

    @property
    def beat_every(self) -> float:
        return float(self.rt.config.notify.heartbeat_minutes) * 60

    def tick_seconds(self) -> float:
        """How often :meth:`tick` runs: often enough to flag a stall or beat within a quarter period."""
        periods = [self.stall_after] + ([self.beat_every] if self.beat_every else [])
        return max(0.05, min(5.0, min(periods) / 4))

    async def load(self) -> None:
        """The budget notices an earlier execution of the run journaled (not repeated)."""
        for (payload,) in await self.rt.journal.select(_BUDGET_SQL, (self.rt.run_id,)):
            try:
                self.warned.add(str(json.loads(payload).get("limit")))
            except (ValueError, AttributeError):
                continue

    # -- events ----------------------------------------------------------------------------

    def saw(self, event: EngineEvent) -> None:
        """Fold one emitted event into the stages' activity (a stalled stage's event clears it)."""
        if isinstance(event, StageEvent):
            stage = self.stages.get(event.key)
            if stage is None:
                stage = self.stages[event.key] = _Stage(event.key, time.monotonic(), "", running=True)
            stage.last = time.monotonic()
            stage.what = describe(event.kind, event.event)
            if event.kind in ("turn_start", "turn_end"):  # the turn in flight, or the last answered
                stage.turns = int(getattr(event.event, "turn", stage.turns) or stage.turns)
            if event.kind == "turn_end":
                self.check_budget()
            if stage.stalled:
                stage.stalled = False
                self.rt.emit(StageFlag(self.rt.run_id, event.key, None, f"active again: {stage.what}"))
        elif isinstance(event, StageAdded):
            self.stages.setdefault(
                event.key, _Stage(event.name, time.monotonic(), "started")
            ).name = event.name
        elif isinstance(event, StageStatus):
            stage = self.stages.setdefault(event.key, _Stage(event.key, time.monotonic(), "started"))
            was = stage.running
            stage.running = event.status == "running"
            if stage.running and not was:
                stage.last, stage.what = time.monotonic(), "started"
            if not stage.running:
                stage.stalled = stage.waiting = False
            self.check_budget()
        elif isinstance(event, StageFlag) and event.key in self.stages:
            stage = self.stages[event.key]
            if event.flag == "waiting":
                stage.waiting = True
            elif event.flag is None and stage.waiting:
                stage.waiting = False
                stage.last, stage.what = time.monotonic(), "limit wait over"

    # -- the task --------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds())
            self.tick()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.check_stalls(now)
        self.check_budget()
        if self.beat_every and now - self.last_beat >= self.beat_every:
            self.last_beat = now
            self.rt.emit(Heartbeat(self.rt.run_id, self.heartbeat_line(now)))

    def check_stalls(self, now: float) -> None:
        if self.rt.paused:
            return
        for key, stage in self.stages.items():
            if not stage.running or stage.stalled or stage.waiting or key not in self.rt.live:
                continue
            idle = now - stage.last
            if idle >= self.stall_after:
                stage.stalled = True
                detail = f"no model or tool activity for {_idle(idle)}; last: {stage.what}"
                self.rt.emit(StageFlag(self.rt.run_id, key, "stalled", detail))

    def check_budget(self) -> None:
        """A :class:`BudgetNotice` for each limit of the run's budget past ``budget.warn_at``."""
        budget = self.rt.budget
        limits = budget.limits
        warn_at = float(self.rt.config.budget.warn_at)
        checks: list[tuple[str, float, float]] = []
        if limits.max_tokens:
            checks.append(("tokens", budget.usage.total_tokens, limits.max_tokens))
        if limits.max_dollars:
            checks.append(("dollars", budget.usage.cost_usd, limits.max_dollars))
        if limits.wall_time:
            checks.append(("seconds", budget.elapsed, limits.wall_time))
        if budget.max_stages:
            checks.append(("stages", budget.stages, budget.max_stages))
        for name, used, cap in checks:
            limit = f"{name}={cap:g}"
            if limit in self.warned or used < warn_at * cap:
                continue
            self.warned.add(limit)
            share = int(100 * used / cap)
            line = (
                f"run {self.rt.workflow.name} {short_id(self.rt.run_id)} has used {share}% of its "
                f"{name} budget ({_amount(name, used)} of {_amount(name, cap)})"
            )
            self.rt.emit(BudgetNotice(self.rt.run_id, limit, float(used), float(cap), line))

    def heartbeat_line(self, now: float) -> str:
        """``run goal 3ef009 still running (12m) · fix turn 7 · 45,200 tok · last activity 8s ago``."""
        running = [s for k, s in self.stages.items() if s.running and k in self.rt.live]
        parts = [
            f"run {self.rt.workflow.name} {short_id(self.rt.run_id)} still running ({_idle(now - self.started)})"
        ]
        if running:
            shown = [f"{s.name} turn {s.turns}" + (" (waiting)" if s.waiting else "") for s in running[:3]]
            more = f" +{len(running) - 3} more" if len(running) > 3 else ""
            parts.append(", ".join(shown) + more)
        else:
            parts.append("no stage running")
        parts.append(f"{self.rt.budget.usage.total_tokens:,} tok")
        latest = max(running, key=lambda s: s.last, default=None)
        if latest is not None:
            parts.append(f"last activity {ago(now - latest.last)}: {latest.what}")
        return " · ".join(parts)
