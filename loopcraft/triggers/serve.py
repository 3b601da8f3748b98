"""``loopcraft serve``: the one process per repo (a lease in the journal) that fires schedules,
watches files, takes webhooks, drains the event inbox into runs and owns those runs (resuming
its own crashed ones on restart). ``once`` drains, fires what is due, waits for its runs, exits."""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from loopcraft.config import Config
from loopcraft.engine.events import RunStatus
from loopcraft.engine.results import FINAL_STATES
from loopcraft.engine.service import Engine, db_path, new_run_id
from loopcraft.errors import LoopcraftError
from loopcraft.triggers.inbox import EventRow, Inbox, new_serve_owner
from loopcraft.triggers.load import TriggerSet, fill_inputs, load_triggers, text_fields
from loopcraft.triggers.schedule import fires_between, last_fire_before
from loopcraft.triggers.spec import Trigger

SCHEDULED = ("cron", "every")


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def event_context(event: EventRow) -> dict[str, Any]:
    """What a trigger's input templates can name: the payload's keys, ``payload``, ``event``, ``time``."""
    return {
        **event.payload,
        "payload": event.payload,
        "event": event.name,
        "id": event.id,
        "time": iso(event.created),
    }


class Server:
    """One ``serve`` process: lease, schedules, file watch, webhooks and the inbox drainer."""

    def __init__(
        self,
        root: Path,
        config: Config,
        *,
        once: bool = False,
        http: tuple[str, int] | None = None,
        out: TextIO | None = None,
        poll: float = 0.1,
        signals: bool = True,
    ) -> None:
        self.root = root
        self.config = config
        self.once = once
        self.http = http
        self.out = out or sys.stdout
        self.poll = poll
        self.signals = signals  # False when hosted by the app, which owns the process's signals
        self.owner = new_serve_owner()
        self.lease_seconds = config.engine.lease_seconds
        self.stop = asyncio.Event()
        self.wake = asyncio.Event()
        self.active: dict[str, set[str]] = {}  # trigger -> its runs live in this process
        self.watchers: set[asyncio.Task[None]] = set()
        self.begun: dict[str, asyncio.Event] = {}  # run -> set once its body runs (or it ended)
        self.engine: Engine | None = None
        self.inbox: Inbox | None = None
        self.triggers = TriggerSet()

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> int:
        engine = await Engine.open(self.root, self.config)
        engine.stop_at_gates = True  # unattended: a human gate ends the run as needs_human
        self.engine = engine
        engine.bus.subscribe(self._on_engine_event)
        inbox = self.inbox = Inbox(db_path(self.root))
        try:
            self.triggers = load_triggers(self.root, engine.workflows())
            for note in self.triggers.notes:
                self.say(note)
            if not await self._acquire():
                return 0
            self._install_signals()
            await self._recover()
            self._start_schedules()
            background = [asyncio.ensure_future(self._keep_lease())]
            if not self.once:
                background.append(asyncio.ensure_future(self._watch_files()))
                if self.http:
                    background.append(asyncio.ensure_future(self._serve_http(*self.http)))
            try:
                await self._loop()
            finally:
                for task in background:
                    task.cancel()
                await asyncio.gather(*background, return_exceptions=True)
            return 0
        finally:
            inbox.release_serve(self.owner)  # first: a cancelled close must not keep the lease
            inbox.close()
            await engine.close()  # runs still going stay resumable: the next serve resumes them

    def release(self) -> None:
        """Give the serve lease back now (idempotent; the journal may already be closed)."""
        if self.inbox is not None:
            with contextlib.suppress(sqlite3.Error, LoopcraftError):
                self.inbox.release_serve(self.owner)

    def _on_engine_event(self, event: object) -> None:
        if isinstance(event, RunStatus):
            self._begun(event.run_id).set()

    def _begun(self, run_id: str) -> asyncio.Event:
        return self.begun.setdefault(run_id, asyncio.Event())

    def _install_signals(self) -> None:
        if not self.signals:
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop.set)

    async def _acquire(self) -> bool:
        """The serve lease: at once, or (long-running) wait as a standby until it is free."""
        assert self.inbox is not None
        if self.inbox.claim_serve(self.owner, self.lease_seconds):
            names = ", ".join(t.name for t in self.triggers.triggers) or "none"
            self.say(f"serve: {len(self.triggers.triggers)} trigger(s): {names}")
            return True
        current = self.inbox.serve_owner()
        if self.once:
            self.say(f"serve: another serve ({current}) owns this repo; it handles the inbox (nothing done)")
            return False
        self.say(f"serve: standby; {current} owns this repo (taking over when it stops)")
        self._install_signals()
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.lease_seconds / 3)
            if not self.stop.is_set() and self.inbox.claim_serve(self.owner, self.lease_seconds):
                self.say("serve: took over this repo's triggers")
                return True
        return False

    async def _keep_lease(self) -> None:
        assert self.inbox is not None
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            if not self.inbox.renew_serve(self.owner, self.lease_seconds):
                self.say("serve: lost the lease to another serve; stopping")
                self.stop.set()
                return

    async def _loop(self) -> None:
        while not self.stop.is_set():
            if not self.once:  # --once fired what was due at start (_start_schedules)
                self._fire_due()
            await self._drain()
            if self.once and not self._busy():
                return
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.poll)
        await self._drain_stopped()

    async def _drain_stopped(self) -> None:
        """After SIGTERM: no new runs; every event stays in the inbox for the next serve."""
        self.say("serve: stopping; unfinished runs stay resumable, pending events stay in the inbox")

    def _busy(self) -> bool:
        assert self.inbox is not None
        return bool(self.watchers) or bool(self.inbox.pending(1))

    # -- recovery ----------------------------------------------------------------------------------

    async def _recover(self) -> None:
        """Finish what a previous serve left: reserved runs never started, and its crashed runs."""
        assert self.inbox is not None and self.engine is not None
        for row in self.inbox.starting():
            existing = await self.engine.journal.get_run(row.run_id or "")
            if existing is None:
                event = next((e for e in self.inbox.pending(10_000) if e.id == row.event_id), None)
                trig = self.triggers.get(row.trigger)
                if event is None or trig is None:
                    self.inbox.skip(row.event_id, row.trigger, row.workflow, "its trigger is gone")
                    continue
                await self._start(event, trig, row.run_id or new_run_id(), reserved=True)
            else:
                self.inbox.mark_started(row.event_id, row.trigger)
        for run_id in self.inbox.run_ids():
            info = await self.engine.get_run(run_id)
            if info.status in ("crashed", "pending"):
                source = self.inbox.source_of(run_id)
                self.say(f"serve: resuming run {run_id} (left unfinished by a previous serve)")
                self._track(source.trigger if source else "", run_id, resume=True)

    # -- schedules -----------------------------------------------------------------------------------

    def _start_schedules(self) -> None:
        """Each schedule's start point; fires missed while no serve ran, by its ``catchup``
        (``--once``, run from a host's own cron, fires at least the latest one that is due)."""
        assert self.inbox is not None
        now = time.time()
        for trig in self._scheduled():
            last = self.inbox.last_fire(trig.name)
            if last is None:
                self.inbox.set_last_fire(trig.name, now)
                continue
            missed: list[float] = []
            if trig.catchup == "all":
                missed = fires_between(trig, last, now)
            elif trig.catchup == "one" or self.once:
                latest = last_fire_before(trig, last, now)
                missed = [latest] if latest is not None else []
            for when in missed:
                self._record_fire(trig, when, catchup=True)
            self.inbox.set_last_fire(trig.name, now)

    def _scheduled(self) -> list[Trigger]:
        return [t for t in self.triggers.triggers if t.kind in SCHEDULED]

    def _fire_due(self) -> None:
        assert self.inbox is not None
        now = time.time()
        for trig in self._scheduled():
            last = self.inbox.last_fire(trig.name) or now
            for when in fires_between(trig, last, now):
                self._record_fire(trig, when)
            if last < now:
                self.inbox.set_last_fire(trig.name, now)

    def _record_fire(self, trig: Trigger, when: float, *, catchup: bool = False) -> None:
        assert self.inbox is not None
        payload = {"trigger": trig.name, "scheduled": iso(when), "catchup": catchup}
        self.inbox.record(
            trig.event, payload, source="schedule", dedupe_key=f"schedule:{trig.name}:{when:.3f}"
        )

    # -- the inbox --------------------------------------------------------------------------------

    async def _drain(self) -> None:
        assert self.inbox is not None
        for event in self.inbox.pending():
            if self.stop.is_set():
                return
            triggers = self.triggers.for_event(event.name)
            if not triggers:
                self.inbox.finish_event(event.id, f"no trigger listens to {event.name!r}")
                self.say(f"event {event.id} ({event.name}): skipped, no trigger listens to it")
                continue
            done = {d.trigger for d in self.inbox.dispatches(event.id)}
            settled = True
            for trig in triggers:
                if trig.name not in done:
                    settled = await self._dispatch(event, trig) and settled
            if settled:
                self.inbox.finish_event(event.id)

    async def _dispatch(self, event: EventRow, trig: Trigger) -> bool:
        """Turn (event, trigger) into a run or a recorded skip; False to keep it queued for later."""
        assert self.inbox is not None and self.engine is not None
        live = self.active.get(trig.name, set())
        if live and trig.overlap == "skip":
            reason = f'overlap = "skip": run {sorted(live)[0]} of trigger {trig.name} is still running'
            self.inbox.skip(event.id, trig.name, trig.workflow, reason)
            self.say(f"event {event.id} ({event.name}): skipped for {trig.name}: {reason}")
            return True
        if live and trig.overlap == "queue":
            return False
        if live and trig.overlap == "cancel_previous":
            for run_id in sorted(live):
                # a kill that lands before the run's body started would leave it crashed, not killed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._begun(run_id).wait(), 30)
                with contextlib.suppress(LoopcraftError):
                    await self.engine.kill(run_id)
                self.say(f'serve: killed run {run_id} of trigger {trig.name} (overlap = "cancel_previous")')
        if sum(len(v) for v in self.active.values()) >= self.triggers.max_concurrent_runs:
            return False
        await self._start(event, trig, new_run_id())
        return True

    async def _start(self, event: EventRow, trig: Trigger, run_id: str, *, reserved: bool = False) -> None:
        assert self.inbox is not None and self.engine is not None
        try:
            wf = self.engine.workflows().get(trig.workflow)
            inputs = wf.validate_inputs(
                fill_inputs(trig.inputs, event_context(event), text_fields=text_fields(wf))
            )
        except LoopcraftError as exc:
            self.inbox.skip(event.id, trig.name, trig.workflow, str(exc))
            self.say(f"event {event.id} ({event.name}): skipped for {trig.name}: {exc}")
            return
        if not reserved and not self.inbox.reserve(event.id, trig.name, wf.name, run_id):
            return  # another drainer settled this pair
        try:
            await self.engine.start(wf.name, inputs, run_id=run_id)
        except LoopcraftError as exc:
            self.inbox.skip(event.id, trig.name, wf.name, str(exc))
            self.say(f"event {event.id} ({event.name}): skipped for {trig.name}: {exc}")
            return
        self.inbox.mark_started(event.id, trig.name)
        self.say(f"event {event.id} ({event.name}) -> run {run_id} ({wf.name}) by trigger {trig.name}")
        self._track(trig.name, run_id)

    def _track(self, trigger: str, run_id: str, *, resume: bool = False) -> None:
        self.active.setdefault(trigger, set()).add(run_id)
        task = asyncio.ensure_future(self._follow(trigger, run_id, resume))
        self.watchers.add(task)
        task.add_done_callback(self.watchers.discard)

    async def _follow(self, trigger: str, run_id: str, resume: bool) -> None:
        assert self.engine is not None
        try:
            info = await (self.engine.resume(run_id) if resume else self.engine.wait(run_id))
            if info.status in FINAL_STATES or info.status in ("needs_human", "budget_exceeded"):
                self.say(f"run {run_id} ({info.workflow}) {info.status}")
        except LoopcraftError as exc:
            self.say(f"run {run_id}: {exc}")
        finally:
            self.active.get(trigger, set()).discard(run_id)
            self._begun(run_id).set()
            self.begun.pop(run_id, None)
            self.wake.set()

    # -- file watch and webhooks (separate modules) -------------------------------------------

    async def _watch_files(self) -> None:
        from loopcraft.triggers.watch import watch_files

        triggers = [t for t in self.triggers.triggers if t.kind == "files"]
        if triggers:
            await watch_files(
                self.root,
                triggers,
                self._record_external,
                self.stop,
                lambda: self.say("serve: watching files"),
            )

    async def _serve_http(self, host: str, port: int) -> None:
        from loopcraft.triggers.webhooks import serve_webhooks

        await serve_webhooks(self, host, port)

    def _record_external(self, name: str, payload: dict[str, Any], source: str, dedupe: str | None) -> str:
        assert self.inbox is not None
        event_id, _ = self.inbox.record(name, payload, source=source, dedupe_key=dedupe)
        self.wake.set()
        return event_id


async def serve(root: Path, config: Config, *, once: bool = False, http: str | None = None) -> int:
    """``loopcraft serve``; returns the exit code."""
    return await Server(root, config, once=once, http=parse_address(http) if http else None).run()


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LoopcraftError(f"bad --http {text!r}: use HOST:PORT, e.g. 127.0.0.1:8787")
    return host, int(port)


class _LineSink(io.StringIO):
    """A text stream handing each complete line to ``say`` (the app's notifications)."""

    def __init__(self, say: Callable[[str], object]) -> None:
        super().__init__()
        self._say = say
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._say(line)
        return len(text)


def hosted_server(root: Path, config: Config, say: Callable[[str], object]) -> Server:
    """A :class:`Server` for the app (``serve = true``): its lines go to ``say``, no signal handlers."""
    return Server(root, config, out=_LineSink(say), signals=False)
