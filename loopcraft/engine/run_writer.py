"""One execution's journal writes: fenced by the run's lease, and one transaction per step.

A step's start row and the events the run emits are queued, not awaited: they go into the
transaction of the next awaited write, normally the one that finishes a step (so a no-op step is
one INSERT in one transaction), or into a flush at the event loop's next turn when the step takes
longer (so other processes see it running). A crash before that flush loses only the start of a
step that had not finished, which a resume runs again either way; a finished step is on disk
before its call returns. Every write first checks the lease: a process that lost the run writes
nothing more. Reads pass through to the :class:`~loopcraft.engine.journal.Journal`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from loopcraft.engine.journal import Journal, StepRow
from loopcraft.engine.leases import Lease, LeaseLost
from loopcraft.errors import LoopcraftError

log = logging.getLogger(__name__)

_WRITES = frozenset(
    {
        "update_run",
        "close_open_steps",
        "append_events",
        "add_artifact",
        "consume_mail",
        "create_prompt",
    }
)
"""Journal writes that go out as they are, after the queued ones (and the lease check)."""

EventRow = tuple[str, int, float, str, str]


class RunWriter:
    """The journal as one execution sees it (see the module docstring)."""

    def __init__(self, journal: Journal, lease: Lease, recorded: dict[str, StepRow]) -> None:
        self._journal = journal
        self._lease = lease
        self._recorded = recorded  # the execution's steps by position (kept in step with the journal)
        self._starts: dict[str, StepRow] = {}  # position -> a started step not written yet
        self._events: list[EventRow] = []
        self._updates: dict[str, StepRow] = {}  # position -> a step whose outcome waits for the batch
        self._kicked = False
        self._flusher: asyncio.Task[None] | None = None
        self._inflight = False  # a write is on its way to SQLite
        self._batch: asyncio.Future[None] | None = None  # done when the next write is
        self._drainer: asyncio.Task[None] | None = None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._journal, name)
        if name not in _WRITES:
            return attr

        async def fenced(*args: Any, **kwargs: Any) -> Any:
            await self._lease.ensure()
            await self.flush()
            return await attr(*args, **kwargs)

        return fenced

    # -- queued writes -----------------------------------------------------------------------

    async def start_step(self, row: StepRow) -> None:
        """Queue a new step's row (written with the next commit; see the module docstring)."""
        self._starts[row.pos] = row
        self._kick()

    def add_event(self, row: EventRow) -> None:
        """Queue one event (its payload already JSON)."""
        self._events.append(row)
        self._kick()

    def _kick(self) -> None:
        if not self._kicked:
            self._kicked = True
            asyncio.get_running_loop().call_soon(self._background)

    def _background(self) -> None:
        self._kicked = False
        if (self._starts or self._events) and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.ensure_future(self._flush_quietly())

    async def _flush_quietly(self) -> None:
        try:
            await self.flush()
        except LeaseLost:
            self._starts.clear()  # this process may write nothing more of the run
            self._updates.clear()
            self._events.clear()
        except LoopcraftError as exc:  # kept queued: the next awaited write retries and raises
            log.warning("journal write of run %s failed: %s", self._lease.run_id, exc)

    # -- awaited writes ----------------------------------------------------------------------

    async def flush(self) -> None:
        """Write everything queued (one transaction)."""
        if self._starts or self._events or self._updates or self._batch is not None:
            await self._commit(None)

    async def finish_step(self, row: StepRow) -> None:
        """Record a step's outcome, with everything queued, in one transaction."""
        await self._commit(row)

    async def set_step_status(self, run_id: str, pos: str, status: str) -> None:
        row = self._recorded.get(pos)
        await self._set_status(row, status, lambda: self._journal.set_step_status(run_id, pos, status))

    async def set_stage_status(self, run_id: str, key: str, status: str) -> None:
        row = next((r for r in self._recorded.values() if r.key == key), None)
        await self._set_status(row, status, lambda: self._journal.set_stage_status(run_id, key, status))

    async def _set_status(
        self, row: StepRow | None, status: str, in_journal: Callable[[], Awaitable[None]]
    ) -> None:
        """A step this writer holds gets ``status`` in its next commit; any other is updated in the
        journal directly, after what is queued (``in_journal``), under the lease."""
        if row is None:
            await self._lease.ensure()
            await self.flush()
            await in_journal()
            return
        row.status = status
        await self._commit(row)

    async def _commit(self, row: StepRow | None) -> None:
        """Write ``row``'s outcome and everything queued. While a write is on its way, this one rides
        with the next (group commit: concurrent steps finishing share a transaction)."""
        await self._lease.ensure()
        if row is not None and row.pos not in self._starts:
            self._updates[row.pos] = row
        if self._inflight:
            if self._batch is None:
                self._batch = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._batch)  # a cancelled waiter must not cancel the others' batch
            return
        await self._write()

    async def _write(self) -> None:
        # From taking the queue to the journal's own queue nothing awaits: writes reach SQLite in order.
        batch, self._batch = self._batch, None
        starts, self._starts = self._starts, {}
        updates, self._updates = self._updates, {}
        events, self._events = self._events, []
        self._inflight = True
        try:
            await self._journal.write_steps(list(starts.values()), list(updates.values()), events)
        except BaseException as exc:
            self._starts = {**starts, **self._starts}
            self._updates = {**updates, **self._updates}
            self._events = events + self._events
            if batch is not None:
                batch.set_exception(exc if isinstance(exc, Exception) else LoopcraftError(str(exc)))
                batch.exception()  # retrieved here too: every waiter may have been cancelled
            raise
        else:
            if batch is not None:
                batch.set_result(None)
        finally:
            self._inflight = False
            if self._batch is not None:  # joined while this one was written
                self._drainer = asyncio.ensure_future(self._write_quietly())

    async def _write_quietly(self) -> None:
        try:
            await self._write()
        except LoopcraftError as exc:  # its waiters got the error
            log.debug("journal write of run %s failed: %s", self._lease.run_id, exc)
