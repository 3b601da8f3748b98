"""Limit-aware waiting: a stage stopped by a rate or usage limit whose provider said when it resets
waits until then and carries on by itself, instead of failing the run.

:class:`LimitWaitingSession` wraps a stage's agent session (under the run control, so a pause,
an interrupt or a kill still reach it). When the agent stops ``blocked`` by a limit with a reset
time, the wait's deadline is journaled first (a ``waiting`` :class:`StageFlag`), so a run resumed
after a crash keeps waiting until the same moment; then it sleeps and continues the session.
It does not wait past the run's ``seconds`` budget (the stage ends ``budget_exceeded``) nor longer
than ``engine.max_limit_wait`` (``blocked``). Without a reset time the stage ends ``blocked``,
naming the limit and the model (the agent's reason).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from loopcraft.engine.activity import clock
from loopcraft.engine.budgets import RunBudget
from loopcraft.engine.events import StageFlag
from loopcraft.engine.tasks import DelegatingSession, TaskOutcome, TaskSession


def seconds_left(budget: RunBudget) -> float | None:
    """What is left of the ``seconds`` limit of ``budget`` and every budget above it (None: no limit)."""
    left: float | None = None
    node: RunBudget | None = budget
    while node is not None:
        if node.limits.wall_time is not None:
            remaining = node.limits.wall_time - node.elapsed
            left = remaining if left is None else min(left, remaining)
        node = node.parent
    return left


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    return (
        f"{int(seconds)}s"
        if minutes == 0
        else f"{minutes}m"
        if minutes < 60
        else f"{minutes // 60}h{minutes % 60:02d}m"
    )


class LimitWaitingSession(DelegatingSession):
    """A stage's session that waits out rate and usage limits with a reset time (see the module)."""

    def __init__(
        self, inner: TaskSession, rt: Any, key: str, pending: tuple[float, str] | None = None
    ) -> None:
        super().__init__(inner)
        self.rt = rt
        self.key = key
        self._pending = pending  # a wait an earlier execution journaled and did not finish
        self._wake: asyncio.Event | None = None

    def __getattr__(self, name: str) -> Any:  # spent, deliver, durable… of the agent session
        return getattr(self.inner, name)

    async def run(self, prompt: str | None) -> TaskOutcome:
        if self._pending is not None:
            until, detail = self._pending
            self._pending = None
            if until > time.time() and await self._wait(until, detail):
                return TaskOutcome(
                    text="", status="interrupted", reason="interrupted while waiting for a limit"
                )
        outcome = await self.inner.run(prompt)
        while (
            outcome.status == "blocked" and outcome.limit is not None and outcome.limit.reset_at is not None
        ):
            hit = outcome.limit
            stop = self._cannot_wait(outcome, hit.reset_at)
            if stop is not None:
                return stop
            if await self._wait(hit.reset_at, f"{hit.limit} on {hit.model_text}"):
                return replace(outcome, status="interrupted", reason="interrupted while waiting for a limit")
            outcome = await self.inner.run(None)
        return outcome

    def _cannot_wait(self, outcome: TaskOutcome, until: float) -> TaskOutcome | None:
        """The outcome to stop with when the wait would outlast the run's seconds budget or
        ``engine.max_limit_wait``; None when the stage may wait."""
        wait = until - time.time()
        hit = outcome.limit
        what = f"the {hit.limit} on {hit.model_text} resets at {clock(until)}"
        left = seconds_left(self.rt.current_budget())
        if left is not None and wait > left:
            return replace(
                outcome,
                status="budget_exceeded",
                reason=f"{what}, after the run's seconds budget runs out (in {_span(max(0.0, left))})",
                limit=None,
            )
        ceiling = float(self.rt.config.engine.max_limit_wait)
        if wait > ceiling:
            return replace(
                outcome,
                reason=f"{what}, more than engine.max_limit_wait ({_span(ceiling)}) away",
                limit=None,
            )
        return None

    async def _wait(self, until: float, detail: str) -> bool:
        """Journal the deadline, sleep until it; True when an interrupt cut the wait short."""
        self.rt.emit(StageFlag(self.rt.run_id, self.key, "waiting", detail, until))
        flush = getattr(self.rt, "flush", None)
        if flush is not None:
            await flush()  # the deadline is on disk before the wait starts
        self._wake = asyncio.Event()
        try:
            await asyncio.wait_for(self._wake.wait(), max(0.0, until - time.time()))
            interrupted = True
        except TimeoutError:
            interrupted = False
        finally:
            self._wake = None
        # a cancelled wait (kill, the app closing) keeps its journaled deadline for the next resume
        self.rt.emit(
            StageFlag(self.rt.run_id, self.key, None, "interrupted" if interrupted else "limit reset")
        )
        return interrupted

    def interrupt(self) -> None:
        if self._wake is not None:
            self._wake.set()
        else:
            self.inner.interrupt()


def wait_for_limits(rt: Any, key: str, session: TaskSession) -> LimitWaitingSession:
    """``session`` wrapped to wait out limits, with the wait the journal says it was in, if any."""
    pending = getattr(rt, "limit_waits", {}).pop(key, None)
    return LimitWaitingSession(session, rt, key, pending)
