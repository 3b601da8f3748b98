"""The durable journal: runs, steps, events, artifacts, mailbox and prompts in SQLite (aiosqlite, WAL).

One :class:`Journal` (one connection, so one writer) per process. Every SQLite failure
that a user can meet (locked, corrupted, too new) becomes a one-line :class:`JournalError`;
nothing is ever deleted or rewritten to "repair" a database.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import aiosqlite

from loopcraft.engine.names import short_id
from loopcraft.engine.results import RunState
from loopcraft.engine.schema import MIGRATIONS, SCHEMA_VERSION
from loopcraft.errors import LoopcraftError
from loopcraft.paths import blocking_file, place_error, private_dir


class JournalError(LoopcraftError):
    """The journal database cannot be used (locked, corrupted, from a newer loopcraft)."""

    exit_code = 8


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


RUN_STATES = frozenset(get_args(RunState))
"""Every status a run row may hold; any other is damage (never resumed)."""

_JSON_KINDS: dict[str, tuple[type, ...]] = {"object": (dict,), "list": (list,), "any": (object,)}


class RowCells:
    """Decodes one row's cells, collecting what is damaged (``runs.inputs is not JSON``) instead
    of raising: a damaged cell gets its default and the row says so."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.damage: list[str] = []

    def json(self, column: str, text: Any, default: Any = None, kind: str = "any") -> Any:
        if text is None:
            return default
        try:
            value = json.loads(text)
        except (TypeError, ValueError, RecursionError):
            self.damage.append(f"{self.table}.{column} is not JSON")
            return default
        if value is None:
            return default
        if not isinstance(value, _JSON_KINDS[kind]):
            self.damage.append(f"{self.table}.{column} is not a JSON {kind}")
            return default
        return value

    def time(self, column: str, value: Any, *, required: bool = False) -> float | None:
        if value is None and not required:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
            return float(value)
        self.damage.append(f"{self.table}.{column} is not a time ({str(value)[:20]!r})")
        return 0.0 if required else None


def dumps_or_none(value: Any) -> str | None:
    return None if value is None else dumps(value)


@dataclass
class RunRow:
    id: str
    workflow: str
    inputs: dict[str, Any]
    status: str
    output: Any
    error: str | None
    created: float
    updated: float
    finished: float | None
    parent_run: str | None = None
    model: str | None = None
    budget: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    owner: str | None = None
    lease_expires: float | None = None
    heartbeat_at: float | None = None
    damage: list[str] = field(default_factory=list)  # damaged columns, e.g. "runs.inputs is not JSON"


@dataclass
class StepRow:
    run_id: str
    key: str
    pos: str
    kind: str
    name: str
    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    usage: dict[str, Any] | None = None
    model: str | None = None
    started: float | None = None
    finished: float | None = None
    parents: list[str] = field(default_factory=list)
    seq: int = 0
    grants: list[str] = field(default_factory=list)  # what the stage was granted (paths, network)
    damage: list[str] = field(default_factory=list)  # damaged columns, e.g. "steps.output is not JSON"


@dataclass
class PromptRow:
    id: str
    run_id: str
    step_key: str
    kind: str
    question: str
    options: list[Any] | None
    default: Any
    status: str
    answer: Any
    created: float
    answered_at: float | None


@dataclass
class MailRow:
    id: int
    run_id: str
    stage_key: str | None
    kind: str
    payload: dict[str, Any]
    created: float
    consumed_at: float | None


_RUN_COLS = (
    "id, workflow, inputs, status, output, error, created, updated, finished, parent_run, model, "
    "budget, usage, owner, lease_expires, heartbeat_at"
)
_STEP_COLS = "run_id, key, pos, kind, name, status, output, error, attempts, usage, model, started, finished, parents, seq, grants"
_PROMPT_COLS = (
    'id, run_id, step_key, kind, question, options, "default", status, answer, created, answered_at'
)

CLOSED_RUN_STATES = ("completed", "failed", "blocked", "budget_exceeded", "cancelled", "killed")
"""Run states whose gates can take no answer: their pending prompts are never offered (a resumed
run is live again, and its gate's prompt with it)."""


def _run_row(r: sqlite3.Row | tuple[Any, ...]) -> RunRow:
    """A run row decoded cell by cell: a damaged cell is recorded in ``damage``, never raised."""
    cells = RowCells("runs")
    status = r[3]
    if status not in RUN_STATES:
        cells.damage.append(f"runs.status {str(status)[:20]!r} is not a run state")
    return RunRow(
        str(r[0]),
        str(r[1]),
        cells.json("inputs", r[2], {}, "object"),
        str(status),
        cells.json("output", r[4]),
        r[5] if r[5] is None else str(r[5]),
        cells.time("created", r[6], required=True) or 0.0,
        cells.time("updated", r[7], required=True) or 0.0,
        cells.time("finished", r[8]),
        r[9],
        r[10],
        cells.json("budget", r[11], None, "object"),
        cells.json("usage", r[12], None, "object"),
        r[13],
        cells.time("lease_expires", r[14]),
        cells.time("heartbeat_at", r[15]),
        damage=cells.damage,
    )


_RUN_JSON_COLS = frozenset({"inputs", "output", "budget", "usage"})
_STEP_OUTCOME = ("status", "output", "error", "attempts", "usage", "model", "finished")


def _run_sets(fields: dict[str, Any]) -> tuple[str, list[Any]]:
    """The SET clause and its values for ``fields`` of a run, ``updated`` refreshed, JSON encoded."""
    fields = {**fields, "updated": time.time()}
    sets = ", ".join(f"{name} = ?" for name in fields)
    return sets, [dumps_or_none(v) if k in _RUN_JSON_COLS else v for k, v in fields.items()]


def _outcome_values(step: StepRow) -> tuple[Any, ...]:
    """A step's values for the :data:`_STEP_OUTCOME` columns (what finishing it changes; a None
    output is stored as NULL, which reads back as None)."""
    return (
        step.status,
        dumps_or_none(step.output),
        dumps_or_none(step.error),
        step.attempts,
        dumps_or_none(step.usage),
        step.model,
        step.finished,
    )


_STEP_INSERT_COLS = (
    "run_id",
    "key",
    "pos",
    "kind",
    "name",
    "started",
    "parents",
    "seq",
    "grants",
    *_STEP_OUTCOME,
)
_INSERT_STEP = (
    f"INSERT OR REPLACE INTO steps ({', '.join(_STEP_INSERT_COLS)}) "
    f"VALUES ({', '.join('?' * len(_STEP_INSERT_COLS))})"
)
_UPDATE_STEP = (
    f"UPDATE steps SET {', '.join(f'{name} = ?' for name in _STEP_OUTCOME)} WHERE run_id = ? AND pos = ?"
)
_INSERT_EVENT = "INSERT OR REPLACE INTO events (run_id, seq, ts, type, payload) VALUES (?, ?, ?, ?, ?)"


def _insert_values(step: StepRow) -> tuple[Any, ...]:
    """A whole step's values for :data:`_INSERT_STEP`."""
    return (
        step.run_id,
        step.key,
        step.pos,
        step.kind,
        step.name,
        step.started,
        dumps(step.parents),
        step.seq,
        dumps(step.grants) if step.grants else None,
        *_outcome_values(step),
    )


def _run_batch(conn: sqlite3.Connection, ops: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    """Run ``ops`` (statement, rows) on the connection's own thread, as one transaction."""
    if len(ops) == 1 and len(ops[0][1]) == 1:
        conn.execute(ops[0][0], ops[0][1][0])  # one statement: its own (autocommit) transaction
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, rows in ops:
            conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _step_row(r: sqlite3.Row | tuple[Any, ...]) -> StepRow:
    """A step row decoded cell by cell (damage recorded, as for runs)."""
    cells = RowCells("steps")
    return StepRow(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        cells.json("output", r[6]),
        cells.json("error", r[7], None, "object"),
        r[8],
        cells.json("usage", r[9], None, "object"),
        r[10],
        cells.time("started", r[11]),
        cells.time("finished", r[12]),
        cells.json("parents", r[13], [], "list"),
        r[14],
        cells.json("grants", r[15], [], "list"),
        damage=cells.damage,
    )


def _prompt_row(r: sqlite3.Row | tuple[Any, ...]) -> PromptRow:
    cells = RowCells("prompts")  # a damaged cell reads as empty; `doctor --journal` reports it
    options = cells.json("options", r[5], None, "list")
    return PromptRow(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        options,
        cells.json("default", r[6]),
        r[7],
        cells.json("answer", r[8]),
        r[9],
        r[10],
    )


def _explain(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return (
            f"the journal {path} is locked by another process ({text}); wait for it to finish and try again"
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (
            f"the journal {path} is damaged ({text}); move it aside to start a fresh journal "
            "(nothing was changed in it)"
        )
    if "disk is full" in text or "disk I/O" in text:
        return f"the disk holding the journal {path} is full or failing ({text}); free some space and retry"
    if "readonly" in text or "unable to open" in text:
        return f"the journal {path} cannot be written ({text}); check the folder's permissions"
    return f"journal error in {path}: {text}"


def check_place(path: Path) -> None:
    """Make sure ``path`` can hold a journal: a regular file (or none yet) in an existing folder;
    only a ``.loopcraft`` folder is created. Raises :class:`JournalError` with the fix."""
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise JournalError(
            f"the journal {path} is {kind}; set LOOPCRAFT_DB to a file path (or unset it to use "
            ".loopcraft/loopcraft.db in the repository)"
        )
    if path.parent.name == ".loopcraft":
        private_dir(path.parent)
    elif not path.parent.is_dir():
        blocker = blocking_file(path)
        if blocker is not None:
            raise JournalError(
                f"the journal {path} cannot be made: {blocker} is a file, not a folder; "
                "set LOOPCRAFT_DB to a path in an existing folder"
            )
        raise JournalError(
            f"the journal {path} cannot be made: its folder {path.parent} does not exist; "
            f"create it (mkdir -p {path.parent}) or set LOOPCRAFT_DB to a path in an existing folder"
        )


async def _connect(path: Path, busy_timeout: float) -> aiosqlite.Connection:
    """An aiosqlite connection; when it fails, its worker thread is let finish while the event
    loop still runs (else it reports to a closed loop: "RuntimeError: Event loop is closed")."""
    conn = aiosqlite.connect(str(path), timeout=busy_timeout, isolation_level=None)
    try:
        return await conn
    except BaseException:
        worker = getattr(conn, "_thread", None)
        if worker is not None and worker.is_alive():
            await asyncio.to_thread(worker.join, 5.0)
        raise


class Journal:
    """Async access to one journal database file."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: Path, *, busy_timeout: float = 5.0, synchronous: str = "normal") -> Journal:
        """Open (creating and migrating as needed); raises :class:`JournalError` on a bad file.

        ``synchronous``: "normal" (WAL's NORMAL: a committed step survives the process being
        killed, not a power loss) or "full" (every commit is synced to disk: it survives both)."""
        if synchronous not in ("normal", "full"):
            raise JournalError(f"engine.synchronous must be normal or full, not {synchronous!r}")
        check_place(path)
        try:
            conn = await _connect(path, busy_timeout)
        except sqlite3.Error as exc:
            raise JournalError(_explain(path, exc)) from exc
        journal = cls(conn, path)
        try:
            os.chmod(path, 0o600)  # before WAL mode: SQLite gives the -wal and -shm files the same mode
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            await conn.execute("PRAGMA foreign_keys = ON")
            await journal._migrate()
        except sqlite3.Error as exc:
            await conn.close()
            raise JournalError(_explain(path, exc)) from exc
        except OSError as exc:
            await conn.close()
            raise JournalError(str(place_error(path, exc))) from exc
        except BaseException:
            await conn.close()
            raise
        return journal

    async def _migrate(self) -> None:
        async with self._conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"the journal {self.path} was written by a newer loopcraft (schema {version}, this one "
                f"knows {SCHEMA_VERSION}); upgrade loopcraft"
            )
        if version == SCHEMA_VERSION:
            return
        await self._conn.execute("BEGIN IMMEDIATE")
        try:
            async with self._conn.execute("PRAGMA user_version") as cur:  # another process may have
                row = await cur.fetchone()  # migrated while this one waited for the write lock
            version = int(row[0]) if row else 0
            for index in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[index].split(";"):
                    if statement.strip():
                        await self._conn.execute(statement)
            await self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            await self._conn.execute("COMMIT")
        except BaseException:
            await self._conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        await self._conn.close()

    # -- low-level helpers -----------------------------------------------------------------

    # Each aiosqlite call is a round trip to its thread and back through a busy event loop
    # (many parallel stages), so the hot helpers make one. A cursor must also be closed on
    # that thread: one dropped on the loop's thread resets its cached statement there, which
    # may be running for another cursor at that moment ("bad parameter or other API misuse").

    async def _write(self, sql: str, params: Iterable[Any] = ()) -> None:
        """One statement whose row count is not needed, in one round trip."""
        try:
            await self._conn.execute_fetchall(sql, tuple(params))  # its cursor dies on the worker
        except sqlite3.Error as exc:
            raise JournalError(_explain(self.path, exc)) from exc

    async def _exec(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One statement; returns how many rows it changed (two round trips)."""
        try:
            cur = await self._conn.execute(sql, tuple(params))
            count = cur.rowcount
            await cur.close()
            return count
        except sqlite3.Error as exc:
            raise JournalError(_explain(self.path, exc)) from exc

    async def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            cur = await self._conn.executemany(sql, rows)
            await cur.close()
        except sqlite3.Error as exc:
            raise JournalError(_explain(self.path, exc)) from exc

    async def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        try:
            return list(await self._conn.execute_fetchall(sql, tuple(params)))
        except sqlite3.Error as exc:
            raise JournalError(_explain(self.path, exc)) from exc

    # -- runs ------------------------------------------------------------------------------

    async def create_run(
        self,
        run_id: str,
        workflow: str,
        inputs: dict[str, Any],
        *,
        model: str | None = None,
        parent_run: str | None = None,
        budget: dict[str, Any] | None = None,
        status: str = "pending",
    ) -> None:
        now = time.time()
        await self._write(
            "INSERT INTO runs (id, workflow, inputs, status, created, updated, parent_run, model, budget) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                workflow,
                dumps(inputs),
                status,
                now,
                now,
                parent_run,
                model,
                dumps_or_none(budget),
            ),
        )

    async def get_run(self, run_id: str) -> RunRow | None:
        rows = await self._fetch(f"SELECT {_RUN_COLS} FROM runs WHERE id = ?", (run_id,))
        return _run_row(rows[0]) if rows else None

    async def find_runs(self, handle: str, limit: int = 6) -> list[RunRow]:
        """Runs whose id starts with ``handle`` or whose short handle (the id's random suffix)
        starts with it, newest first, at most ``limit``; matched literally and case-sensitively
        (``LIKE`` only narrows: its wildcards are escaped and the case is checked below)."""
        pattern = handle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self._fetch(
            f"SELECT {_RUN_COLS} FROM runs WHERE id LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' "
            "ORDER BY created DESC",
            (pattern + "%", "%-" + pattern + "%"),
        )
        found = [_run_row(r) for r in rows]
        # "%-x%" also matches inside the id's date or time: keep the runs whose short handle starts so
        return [r for r in found if r.id.startswith(handle) or short_id(r.id).startswith(handle)][:limit]

    async def list_runs(
        self,
        limit: int = 50,
        *,
        workflow: str | None = None,
        statuses: Iterable[str] | None = None,
        since: float | None = None,
        before: float | None = None,
    ) -> list[RunRow]:
        """The newest runs, optionally of one workflow, in some states, created in [since, before)."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if workflow is not None:
            where.append("workflow = ?")
            params.append(workflow)
        if statuses is not None:
            states = list(statuses)
            where.append(f"status IN ({', '.join('?' * len(states))})")
            params.extend(states)
        if since is not None:
            where.append("created >= ?")
            params.append(since)
        if before is not None:
            where.append("created < ?")
            params.append(before)
        rows = await self._fetch(
            f"SELECT {_RUN_COLS} FROM runs WHERE {' AND '.join(where)} ORDER BY created DESC LIMIT ?",
            (*params, limit),
        )
        return [_run_row(r) for r in rows]

    async def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run (JSON columns encoded here); ``updated`` is always refreshed."""
        sets, values = _run_sets(fields)
        await self._write(f"UPDATE runs SET {sets} WHERE id = ?", (*values, run_id))

    async def update_run_if_owner(self, run_id: str, owner: str, **fields: Any) -> bool:
        """Like :meth:`update_run`, but only while ``owner`` holds the run (fencing); True if written."""
        sets, values = _run_sets(fields)
        count = await self._exec(
            f"UPDATE runs SET {sets} WHERE id = ? AND owner = ?", (*values, run_id, owner)
        )
        return count == 1

    async def claim_run(
        self,
        run_id: str,
        owner: str,
        *,
        now: float,
        expires: float,
        status: str,
        take_from: str | None = None,
    ) -> bool:
        """Make ``owner`` the run's owner in one conditional UPDATE (no transaction: the connection
        is shared by every run of the process); True if it did.

        Without ``take_from`` the run must be free: no owner, already ``owner``'s, or a lease that
        has run out (at ``now``). With ``take_from`` it must still be held by that (dead) owner,
        so two processes taking over from the same dead owner cannot both win."""
        sets = "owner = ?, status = ?, heartbeat_at = ?, lease_expires = ?, updated = ?"
        values = (owner, status, now, expires, time.time())
        if take_from is None:
            count = await self._exec(
                f"UPDATE runs SET {sets} WHERE id = ? AND (owner IS NULL OR owner = ? "
                "OR lease_expires IS NULL OR lease_expires <= ?)",
                (*values, run_id, owner, now),
            )
        else:
            count = await self._exec(
                f"UPDATE runs SET {sets} WHERE id = ? AND owner = ?", (*values, run_id, take_from)
            )
        return count == 1

    # -- steps -----------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> list[StepRow]:
        rows = await self._fetch(f"SELECT {_STEP_COLS} FROM steps WHERE run_id = ? ORDER BY seq", (run_id,))
        return [_step_row(r) for r in rows]

    async def start_step(self, step: StepRow) -> None:
        await self._write(_INSERT_STEP, _insert_values(step))

    async def finish_step(self, step: StepRow) -> None:
        await self._write(_UPDATE_STEP, (*_outcome_values(step), step.run_id, step.pos))

    async def write_steps(
        self,
        inserts: list[StepRow],
        updates: list[StepRow],
        events: list[tuple[str, int, float, str, str]] | None = None,
    ) -> None:
        """Steps written whole (new ones), steps' outcomes and events (payloads already JSON), in one
        transaction and one round trip: a step's finish and the events of its run commit together."""
        ops: list[tuple[str, list[tuple[Any, ...]]]] = []
        if inserts:
            ops.append((_INSERT_STEP, [_insert_values(s) for s in inserts]))
        if updates:
            ops.append((_UPDATE_STEP, [(*_outcome_values(s), s.run_id, s.pos) for s in updates]))
        if events:
            ops.append((_INSERT_EVENT, events))
        if not ops:
            return
        conn = self._conn
        try:  # one call on the connection's thread: no other statement can come between
            await conn._execute(lambda: _run_batch(conn._conn, ops))
        except sqlite3.Error as exc:
            raise JournalError(_explain(self.path, exc)) from exc

    async def set_step_status(self, run_id: str, pos: str, status: str) -> None:
        await self._write("UPDATE steps SET status = ? WHERE run_id = ? AND pos = ?", (status, run_id, pos))

    async def set_stage_status(self, run_id: str, key: str, status: str) -> None:
        """Set the status of the step whose key is ``key`` (control uses keys, not positions)."""
        await self._write("UPDATE steps SET status = ? WHERE run_id = ? AND key = ?", (status, run_id, key))

    async def close_open_steps(self, run_id: str, message: str) -> None:
        """Mark every unfinished step of a run failed with ``message`` (a killed run)."""
        await self._write(
            "UPDATE steps SET status = 'failed', error = ?, finished = ? "
            "WHERE run_id = ? AND status NOT IN ('completed', 'failed')",
            (dumps({"type": "Killed", "message": message, "run_status": "killed"}), time.time(), run_id),
        )

    # -- events ----------------------------------------------------------------------------

    async def max_event_seq(self, run_id: str) -> int:
        rows = await self._fetch("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?", (run_id,))
        return int(rows[0][0])

    async def append_events(self, rows: list[tuple[str, int, float, str, dict[str, Any]]]) -> None:
        await self._many(_INSERT_EVENT, [(r, s, t, ty, dumps(p)) for r, s, t, ty, p in rows])

    async def events(self, run_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
        rows = await self._fetch(
            "SELECT seq, ts, type, payload FROM events WHERE run_id = ? AND seq > ? ORDER BY seq",
            (run_id, after_seq),
        )
        return [
            {"seq": s, "ts": t, "type": ty, "payload": RowCells("events").json("payload", p)}
            for s, t, ty, p in rows
        ]

    # -- artifacts -------------------------------------------------------------------------

    async def add_artifact(self, run_id: str, step_key: str | None, name: str, path: str, size: int) -> None:
        await self._write(
            "INSERT OR REPLACE INTO artifacts (run_id, step_key, name, path, size, created) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, step_key, name, path, size, time.time()),
        )

    async def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        rows = await self._fetch(
            "SELECT step_key, name, path, size, created FROM artifacts WHERE run_id = ? ORDER BY created",
            (run_id,),
        )
        return [{"step_key": k, "name": n, "path": p, "size": s, "created": c} for k, n, p, s, c in rows]

    # -- mailbox ---------------------------------------------------------------------------

    async def post(
        self,
        run_id: str,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        stage_key: str | None = None,
        dedupe_key: str | None = None,
    ) -> int | None:
        """Queue a command; returns its id, or None when ``dedupe_key`` was already posted."""
        try:
            cur = await self._conn.execute(
                "INSERT OR IGNORE INTO mailbox (run_id, stage_key, kind, payload, created, dedupe_key) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, stage_key, kind, dumps(payload or {}), time.time(), dedupe_key),
            )
            new_id = cur.lastrowid if cur.rowcount else None
            await cur.close()
            return new_id
        except sqlite3.Error as exc:
            raise JournalError(_explain(self.path, exc)) from exc

    async def pending_mail(self, run_id: str) -> list[MailRow]:
        rows = await self._fetch(
            "SELECT id, run_id, stage_key, kind, payload, created, consumed_at FROM mailbox "
            "WHERE run_id = ? AND consumed_at IS NULL ORDER BY id",
            (run_id,),
        )
        return [
            MailRow(
                r[0], r[1], r[2], r[3], RowCells("mailbox").json("payload", r[4], {}, "object"), r[5], r[6]
            )
            for r in rows
        ]

    async def consume_mail(self, mail_id: int) -> bool:
        """Mark one command consumed; False when another consumer got it first."""
        count = await self._exec(
            "UPDATE mailbox SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL", (time.time(), mail_id)
        )
        return count == 1

    # -- prompts ---------------------------------------------------------------------------

    async def create_prompt(
        self,
        run_id: str,
        step_key: str,
        kind: str,
        question: str,
        options: list[Any] | None = None,
        default: Any = None,
    ) -> PromptRow:
        """The prompt of ``step_key`` (created once; an existing one is returned as is)."""
        existing = await self.prompt_for_step(run_id, step_key)
        if existing is not None:
            return existing
        prompt_id = uuid.uuid4().hex[:8]
        await self._write(
            f"INSERT INTO prompts ({_PROMPT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', NULL, ?, NULL)",
            (
                prompt_id,
                run_id,
                step_key,
                kind,
                question,
                dumps_or_none(options),
                dumps(default),
                time.time(),
            ),
        )
        prompt = await self.get_prompt(prompt_id)
        assert prompt is not None
        return prompt

    async def get_prompt(self, prompt_id: str) -> PromptRow | None:
        rows = await self._fetch(f"SELECT {_PROMPT_COLS} FROM prompts WHERE id = ?", (prompt_id,))
        return _prompt_row(rows[0]) if rows else None

    async def prompt_for_step(self, run_id: str, step_key: str) -> PromptRow | None:
        rows = await self._fetch(
            f"SELECT {_PROMPT_COLS} FROM prompts WHERE run_id = ? AND step_key = ?", (run_id, step_key)
        )
        return _prompt_row(rows[0]) if rows else None

    async def prompts(self, run_id: str | None = None, *, pending_only: bool = False) -> list[PromptRow]:
        where, params = [], []
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if pending_only:
            closed = ", ".join(f"'{state}'" for state in CLOSED_RUN_STATES)
            where.append("status = 'pending'")
            where.append(f"run_id IN (SELECT id FROM runs WHERE status NOT IN ({closed}))")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self._fetch(f"SELECT {_PROMPT_COLS} FROM prompts {clause} ORDER BY created", params)
        return [_prompt_row(r) for r in rows]

    async def answer_prompt(self, prompt_id: str, answer: Any) -> bool:
        """Record an answer once; False when the prompt is not pending (a second answer is ignored)."""
        count = await self._exec(
            "UPDATE prompts SET status = 'answered', answer = ?, answered_at = ? WHERE id = ? AND status = 'pending'",
            (dumps(answer), time.time(), prompt_id),
        )
        return count == 1

    # -- analytics and history ---------------------------------------------------------------

    async def select(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Rows of one read-only query (stats, history filters)."""
        return await self._fetch(sql, params)

    async def delete_run(self, run_id: str) -> None:
        """Remove a run and everything the journal holds for it (steps, events, prompts, mail)."""
        for table in ("steps", "events", "artifacts", "mailbox", "prompts"):
            await self._write(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
        await self._write("DELETE FROM runs WHERE id = ?", (run_id,))

    async def copy_steps(self, rows: list[StepRow]) -> None:
        """Insert recorded steps as they are (a fork reuses its source's steps under a new run id)."""
        for row in rows:
            await self.start_step(row)
