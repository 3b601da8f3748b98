"""The durable event inbox, in the journal's database: every event is recorded first (id, name,
source, time, payload, dedupe key UNIQUE), then each trigger listening to it turns it into exactly
one run or a recorded skip (``inbox_dispatch``, one row per event and trigger, its run id chosen
before the run is created, so a crash between the two neither loses nor doubles the run).
Also the schedule state (last fire per trigger) and the ``serve`` lease (one owner per repo).

Plain :mod:`sqlite3` on its own connection: ``loopcraft event`` records in a few milliseconds
without an engine, and the tables are created on first use (``IF NOT EXISTS``), beside the
journal's own schema."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopcraft.engine.journal import JournalError, _explain, check_place
from loopcraft.engine.leases import owner_alive
from loopcraft.errors import LoopcraftError

MAX_PAYLOAD_BYTES = 1_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox_events (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    created REAL NOT NULL,
    payload TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
    reason TEXT,
    handled REAL
);
CREATE INDEX IF NOT EXISTS inbox_events_pending ON inbox_events(status, created);
CREATE TABLE IF NOT EXISTS inbox_dispatch (
    event_id TEXT NOT NULL,
    trigger TEXT NOT NULL,
    workflow TEXT NOT NULL,
    run_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('starting', 'started', 'skipped')),
    reason TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (event_id, trigger)
);
CREATE INDEX IF NOT EXISTS inbox_dispatch_run ON inbox_dispatch(run_id);
CREATE TABLE IF NOT EXISTS trigger_state (trigger TEXT PRIMARY KEY, last_fire REAL NOT NULL);
CREATE TABLE IF NOT EXISTS serve_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT, expires REAL NOT NULL DEFAULT 0
);
"""


class EventError(LoopcraftError):
    """An event cannot be recorded (bad name, payload not a JSON object, too big)."""


@dataclass
class EventRow:
    id: str
    name: str
    source: str
    created: float
    payload: dict[str, Any]
    dedupe_key: str | None
    status: str
    reason: str | None


@dataclass
class DispatchRow:
    event_id: str
    trigger: str
    workflow: str
    run_id: str | None
    status: str
    reason: str | None
    created: float


_EVENT_COLS = "id, name, source, created, payload, dedupe_key, status, reason"
_DISPATCH_COLS = "event_id, trigger, workflow, run_id, status, reason, created"


def _event(r: tuple[Any, ...]) -> EventRow:
    return EventRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7])


def parse_payload(text: str | None) -> dict[str, Any]:
    """``--payload`` text as a JSON object; raises :class:`EventError` (one line) otherwise."""
    if text is None or not text.strip():
        return {}
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise EventError(
            f"payload too big ({len(text.encode()):,} bytes; the limit is {MAX_PAYLOAD_BYTES:,})"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventError(
            f'bad payload: not JSON ({exc.msg} at column {exc.colno}); e.g. \'{{"key": "value"}}\''
        ) from exc
    if not isinstance(value, dict):
        raise EventError('bad payload: it must be a JSON object, e.g. \'{"key": "value"}\'')
    return value


def new_event_id() -> str:
    return "ev-" + time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:8]


def new_serve_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Inbox:
    """The inbox tables of one journal database file."""

    def __init__(self, path: Path, *, busy_timeout: float = 10.0) -> None:
        check_place(path)
        existed = path.exists()
        self.path = path
        try:
            self._conn = sqlite3.connect(str(path), timeout=busy_timeout, isolation_level=None)
            if not existed:
                os.chmod(path, 0o600)
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise JournalError(_explain(path, exc)) from exc
        except OSError as exc:
            from loopcraft.paths import place_error

            raise JournalError(str(place_error(path, exc))) from exc

    def close(self) -> None:
        self._conn.close()

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        """One statement; a SQLite failure becomes the journal's one-line :class:`JournalError`."""
        try:
            return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise JournalError(_explain(self.path, exc)) from exc

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._run(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise JournalError(_explain(self.path, exc)) from exc

    # -- events ----------------------------------------------------------------------------

    def record(
        self, name: str, payload: dict[str, Any], *, source: str, dedupe_key: str | None = None
    ) -> tuple[str, bool]:
        """Record an event; ``(id, True)``, or ``(existing id, False)`` when its dedupe key was seen."""
        check_event_name(name)
        text = json.dumps(payload, separators=(",", ":"), default=str)
        if len(text.encode()) > MAX_PAYLOAD_BYTES:
            raise EventError(
                f"payload too big ({len(text.encode()):,} bytes; the limit is {MAX_PAYLOAD_BYTES:,})"
            )
        event_id = new_event_id()
        cur = self._run(
            "INSERT OR IGNORE INTO inbox_events (id, name, source, created, payload, dedupe_key) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (event_id, name, source, time.time(), text, dedupe_key),
        )
        if cur.rowcount == 1:
            return event_id, True
        rows = self._all("SELECT id FROM inbox_events WHERE dedupe_key = ?", (dedupe_key,))
        return (rows[0][0] if rows else event_id), False

    def pending(self, limit: int = 500) -> list[EventRow]:
        rows = self._all(
            f"SELECT {_EVENT_COLS} FROM inbox_events WHERE status = 'pending' ORDER BY created, id LIMIT ?",
            (limit,),
        )
        return [_event(r) for r in rows]

    def events(self, limit: int = 50) -> list[EventRow]:
        rows = self._all(
            f"SELECT {_EVENT_COLS} FROM inbox_events ORDER BY created DESC, id DESC LIMIT ?", (limit,)
        )
        return [_event(r) for r in rows]

    def last_event(self, name: str) -> EventRow | None:
        rows = self._all(
            f"SELECT {_EVENT_COLS} FROM inbox_events WHERE name = ? ORDER BY created DESC LIMIT 1", (name,)
        )
        return _event(rows[0]) if rows else None

    def finish_event(self, event_id: str, reason: str | None = None) -> None:
        self._run(
            "UPDATE inbox_events SET status = 'done', reason = ?, handled = ? WHERE id = ?",
            (reason, time.time(), event_id),
        )

    # -- dispatch: one row per (event, trigger) ----------------------------------------------

    def reserve(self, event_id: str, trigger: str, workflow: str, run_id: str) -> bool:
        """Claim the (event, trigger) pair with the run id it will start; False if already claimed."""
        cur = self._run(
            "INSERT OR IGNORE INTO inbox_dispatch (event_id, trigger, workflow, run_id, status, created) "
            "VALUES (?, ?, ?, ?, 'starting', ?)",
            (event_id, trigger, workflow, run_id, time.time()),
        )
        return cur.rowcount == 1

    def skip(self, event_id: str, trigger: str, workflow: str, reason: str) -> None:
        self._run(
            "INSERT INTO inbox_dispatch (event_id, trigger, workflow, status, reason, created) "
            "VALUES (?, ?, ?, 'skipped', ?, ?) ON CONFLICT (event_id, trigger) DO UPDATE SET "
            "status = 'skipped', reason = excluded.reason",
            (event_id, trigger, workflow, reason, time.time()),
        )

    def mark_started(self, event_id: str, trigger: str) -> None:
        self._run(
            "UPDATE inbox_dispatch SET status = 'started' WHERE event_id = ? AND trigger = ?",
            (event_id, trigger),
        )

    def dispatches(self, event_id: str | None = None) -> list[DispatchRow]:
        if event_id is None:
            rows = self._all(f"SELECT {_DISPATCH_COLS} FROM inbox_dispatch ORDER BY created")
        else:
            rows = self._all(f"SELECT {_DISPATCH_COLS} FROM inbox_dispatch WHERE event_id = ?", (event_id,))
        return [DispatchRow(*r) for r in rows]

    def starting(self) -> list[DispatchRow]:
        rows = self._all(f"SELECT {_DISPATCH_COLS} FROM inbox_dispatch WHERE status = 'starting'")
        return [DispatchRow(*r) for r in rows]

    def source_of(self, run_id: str) -> DispatchRow | None:
        rows = self._all(f"SELECT {_DISPATCH_COLS} FROM inbox_dispatch WHERE run_id = ?", (run_id,))
        return DispatchRow(*rows[0]) if rows else None

    def last_dispatch(self, trigger: str) -> DispatchRow | None:
        rows = self._all(
            f"SELECT {_DISPATCH_COLS} FROM inbox_dispatch WHERE trigger = ? ORDER BY created DESC LIMIT 1",
            (trigger,),
        )
        return DispatchRow(*rows[0]) if rows else None

    def run_ids(self, trigger: str | None = None) -> list[str]:
        sql = "SELECT run_id FROM inbox_dispatch WHERE run_id IS NOT NULL AND status != 'skipped'"
        rows = self._all(sql + " AND trigger = ?", (trigger,)) if trigger else self._all(sql)
        return [r[0] for r in rows]

    # -- schedules ---------------------------------------------------------------------------

    def last_fire(self, trigger: str) -> float | None:
        rows = self._all("SELECT last_fire FROM trigger_state WHERE trigger = ?", (trigger,))
        return float(rows[0][0]) if rows else None

    def set_last_fire(self, trigger: str, when: float) -> None:
        self._run(
            "INSERT INTO trigger_state (trigger, last_fire) VALUES (?, ?) ON CONFLICT (trigger) "
            "DO UPDATE SET last_fire = MAX(last_fire, excluded.last_fire)",
            (trigger, when),
        )

    # -- the serve lease -----------------------------------------------------------------------

    def claim_serve(self, owner: str, seconds: float) -> bool:
        """Make ``owner`` the repo's one ``serve`` (free, expired, or its owner process gone)."""
        now = time.time()
        self._run("INSERT OR IGNORE INTO serve_lease (id, owner, expires) VALUES (1, NULL, 0)")
        cur = self._run(
            "UPDATE serve_lease SET owner = ?, expires = ? WHERE id = 1 AND "
            "(owner IS NULL OR owner = ? OR expires <= ?)",
            (owner, now + seconds, owner, now),
        )
        if cur.rowcount == 1:
            return True
        current = self.serve_owner()
        if current and not owner_alive(current):
            cur = self._run(
                "UPDATE serve_lease SET owner = ?, expires = ? WHERE id = 1 AND owner = ?",
                (owner, now + seconds, current),
            )
            return cur.rowcount == 1
        return False

    def renew_serve(self, owner: str, seconds: float) -> bool:
        cur = self._run(
            "UPDATE serve_lease SET expires = ? WHERE id = 1 AND owner = ?", (time.time() + seconds, owner)
        )
        return cur.rowcount == 1

    def release_serve(self, owner: str) -> None:
        self._run("UPDATE serve_lease SET owner = NULL, expires = 0 WHERE id = 1 AND owner = ?", (owner,))

    def serve_owner(self) -> str | None:
        rows = self._all("SELECT owner, expires FROM serve_lease WHERE id = 1")
        return rows[0][0] if rows and rows[0][0] and rows[0][1] > time.time() else None


def check_event_name(name: str) -> None:
    import re

    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,199}$", name or ""):
        raise EventError(
            f"bad event name {name!r}: use letters, digits, '.', '-' or '_' (e.g. git.post-commit)"
        )


def run_source(path: Path, run_id: str) -> dict[str, str] | None:
    """The trigger and event that started a run (None for runs started by hand)."""
    inbox = Inbox(path)
    try:
        row = inbox.source_of(run_id)
    finally:
        inbox.close()
    return {"trigger": row.trigger, "event": row.event_id} if row else None


def run_sources(path: Path) -> dict[str, dict[str, str]]:
    """Every triggered run's trigger and event, by run id."""
    inbox = Inbox(path)
    try:
        rows = [d for d in inbox.dispatches() if d.run_id and d.status != "skipped"]
    finally:
        inbox.close()
    return {d.run_id: {"trigger": d.trigger, "event": d.event_id} for d in rows if d.run_id}
