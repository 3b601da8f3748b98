"""Session transcripts: one append-only JSONL file per agent session.

The first line is a header (id, created, workspace, model, system prompt and its hash,
tool names); every later line is one typed entry (``type`` is one of ENTRY_TYPES). A torn
last line is dropped (and cut from the file) when the session is opened again; a bad line
before the last is damage, reported (:class:`SessionError`) and never cut.

Durability, in two tiers:

- every entry is written and flushed to the OS at once, so it survives the process being
  killed (SIGKILL, a crash) however soon after;
- ``fsync`` (surviving a power cut or an OS crash) is group-committed off the event loop:
  one background thread per process fsyncs the transcripts written to within the last
  ``COMMIT_WINDOW`` seconds, so many parallel agents never wait on the disk one by one.
  A caller that must not go on before an entry is on stable storage (a side-effecting
  tool about to run) awaits :meth:`SessionLog.wait_durable` (or calls the blocking
  :meth:`SessionLog.sync`); the flusher then commits at once. ``append(..., sync=False)``
  marks an entry whose loss is harmless: it is not scheduled on its own, the next
  scheduled entry (or ``close``) makes it durable too, so what survives is always a prefix.
  ``close()`` hands the final fsync to the flusher; pending commits are drained at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from loopcraft.errors import LoopcraftError, NotFoundError
from loopcraft.paths import state_dir

ENTRY_TYPES = frozenset(
    {
        "message",
        "tool_call_start",
        "tool_result",
        "compaction",
        "model_change",
        "usage",
        "status",
        "mail",
        "mcp_tools",
    }
)
FORMAT_VERSION = 1
COMMIT_WINDOW = 0.025  # seconds an unsynced entry may wait for its group fsync

log = logging.getLogger(__name__)


class SessionError(LoopcraftError):
    """A session file is unreadable or not a loopcraft session."""


def new_session_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sessions_dir(root: Path | None = None) -> Path:
    """Where chat sessions live: ``.loopcraft/sessions/`` in the repo."""
    return state_dir(root) / "sessions"


@dataclass
class SessionHeader:
    id: str
    workspace: str
    model: str
    system_prompt: str = ""
    tools: list[str] = field(default_factory=list)
    stage: str = "chat"
    created: float = field(default_factory=time.time)
    system_prompt_hash: str = ""
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not self.system_prompt_hash:
            self.system_prompt_hash = prompt_hash(self.system_prompt)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionHeader:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


Guard = Callable[[], None]


class SessionLog:
    """An open transcript: append typed entries; ``entries`` holds what was on disk at open."""

    def __init__(
        self,
        path: Path,
        header: SessionHeader,
        entries: list[dict[str, Any]],
        guard: Guard | None = None,
        durable: bool = True,
        *,
        file: BinaryIO | None = None,
    ) -> None:
        self.path = path
        self.header = header
        self.entries = entries  # as loaded by open(); appends are not kept in memory
        self.guard = guard
        self.durable = durable
        self._file = file if file is not None else open(path, "ab")  # noqa: SIM115 - held for the session's life
        self._closing = False  # close() was called: only the flusher touches the file now
        self._io_lock = threading.Lock()  # held while the file is fsynced or closed
        self._written = 0  # entries written (and flushed) so far
        self._synced = 0  # entries known to be on stable storage
        self._new_dir_entry = file is not None  # the file was just created: fsync its folder once
        self._error: OSError | None = None  # a background fsync failure, raised by sync()

    @classmethod
    def create(
        cls, path: Path, header: SessionHeader, *, guard: Guard | None = None, durable: bool = True
    ) -> SessionLog:
        """A new transcript at ``path`` (parents created); refuses to overwrite one."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if guard is not None:
            guard()
        line = json.dumps({"type": "header", **asdict(header)}, ensure_ascii=False) + "\n"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        except FileExistsError:
            raise SessionError(f"session file {path} already exists; open it to resume instead")
        fh = os.fdopen(fd, "ab")
        fh.write(line.encode())
        fh.flush()
        session = cls(path, header, [], guard, durable, file=fh)
        session._written = 1
        session._schedule()
        return session

    @classmethod
    def open(cls, path: Path, *, guard: Guard | None = None, durable: bool = True) -> SessionLog:
        """Load an existing transcript, cutting a torn last line so appends stay valid.

        A damaged line before the last raises :class:`SessionError` and leaves the file as it is."""
        path = Path(path)
        header, entries, good_bytes = _read(path)
        if good_bytes < path.stat().st_size:
            with open(path, "r+b") as fh:
                fh.truncate(good_bytes)
        return cls(path, header, entries, guard, durable)

    def append(self, entry_type: str, *, sync: bool = True, **data: Any) -> dict[str, Any]:
        """Write one entry, flushed to the OS now; fsynced by the group commit unless ``sync=False``.

        The guard runs first and may raise to forbid the write.
        """
        if entry_type not in ENTRY_TYPES:
            raise ValueError(f"unknown session entry type {entry_type!r}")
        if self._closing:
            raise SessionError(f"session {self.path} is closed")
        if self.guard is not None:
            self.guard()
        entry = {"type": entry_type, "ts": round(time.time(), 3), **data}
        self._file.write((json.dumps(entry, ensure_ascii=False) + "\n").encode())
        self._file.flush()
        self._written += 1
        if sync:
            self._schedule()
        return entry

    @property
    def synced(self) -> bool:
        """Whether every entry written so far is on stable storage (always True when not durable)."""
        return not self.durable or self._synced >= self._written

    def sync(self) -> None:
        """Block until every entry written so far is on stable storage (fsync on this thread)."""
        if self.durable:
            self._commit()
            self._raise_error()

    async def wait_durable(self) -> None:
        """Wait, without blocking the event loop, until every entry written so far is fsynced."""
        if self.synced:
            self._raise_error()
            return
        future = asyncio.get_running_loop().create_future()
        _committer.schedule(self, waiter=(self._written, future))
        await future
        self._raise_error()

    def read_entries(self) -> list[dict[str, Any]]:
        """Every entry now on disk (re-reads the file)."""
        return _read(self.path)[1]

    def close(self) -> None:
        """Stop writing; the final fsync and the file's closing are left to the group commit."""
        if self._closing:
            return
        self._closing = True
        if self.durable and not self.synced:
            _committer.schedule(self)
        else:
            self._commit()

    def __enter__(self) -> SessionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- group commit ----------------------------------------------------------------------

    def _schedule(self) -> None:
        if self.durable:
            _committer.schedule(self)

    def _commit(self) -> int:
        """fsync what was written so far (and close the file once closing); the count now durable."""
        with self._io_lock:
            target = self._written
            if not self._file.closed:
                if self.durable and self._synced < target:
                    try:
                        os.fsync(self._file.fileno())
                        if self._new_dir_entry:
                            _fsync_dir(self.path.parent)
                            self._new_dir_entry = False
                    except OSError as exc:
                        self._error = exc
                        log.warning("cannot fsync session %s: %s", self.path, exc)
                if self._closing:
                    self._file.close()
            self._synced = max(self._synced, target)
            return self._synced

    def _raise_error(self) -> None:
        if self._error is not None:
            raise SessionError(
                f"session {self.path} may not be on disk: fsync failed ({self._error.strerror})"
            )


def _fsync_dir(directory: Path) -> None:
    """Make a new file's directory entry durable (nothing to do once the folder is gone)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


Waiter = tuple[int, "asyncio.Future[None]"]


class _GroupCommitter:
    """One daemon thread per process that fsyncs dirty transcripts in batches.

    A batch is committed ``window`` seconds after its first entry, or at once when a
    caller is waiting for durability. Waiters are resolved on their own event loop.
    """

    def __init__(self, window: float) -> None:
        self.window = window
        self._cond = threading.Condition(threading.Lock())
        self._dirty: dict[SessionLog, list[Waiter]] = {}
        self._since = 0.0  # monotonic time the oldest dirty entry was scheduled
        self._urgent = False
        self._thread: threading.Thread | None = None
        self._committing = threading.Lock()  # one batch at a time, so drain() waits for the thread's

    def schedule(self, session: SessionLog, waiter: Waiter | None = None) -> None:
        with self._cond:
            waiters = self._dirty.get(session)
            if waiters is None:
                if not self._dirty:
                    self._since = time.monotonic()
                    self._cond.notify()
                waiters = self._dirty[session] = []
            if waiter is not None:
                waiters.append(waiter)
                self._urgent = True
                self._cond.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="loopcraft-session-fsync", daemon=True)
                self._thread.start()

    def drain(self) -> None:
        """Commit everything pending now, on the calling thread (at exit, and in tests)."""
        with self._committing:
            self._commit(self._take())

    def _take(self) -> dict[SessionLog, list[Waiter]]:
        with self._cond:
            batch, self._dirty, self._urgent = self._dirty, {}, False
            return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._dirty:
                    self._cond.wait()
                while not self._urgent and (left := self._since + self.window - time.monotonic()) > 0:
                    self._cond.wait(left)
            self.drain()

    @staticmethod
    def _commit(batch: dict[SessionLog, list[Waiter]]) -> None:
        waited_for = sorted(batch.items(), key=lambda item: not item[1])  # someone's waiting: first
        for session, waiters in waited_for:
            try:
                synced = session._commit()
            except Exception:  # never let one file stop the flusher
                log.exception("session flusher failed on %s", session.path)
                synced = session._written
            for seq, future in waiters:
                if seq <= synced:
                    _resolve(future)
                else:  # written after this commit started: goes with the next batch
                    _committer.schedule(session, (seq, future))

    def reset_after_fork(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._committing = threading.Lock()
        self._dirty, self._urgent, self._thread = {}, False, None


def _resolve(future: asyncio.Future[None]) -> None:
    def done() -> None:
        if not future.done():
            future.set_result(None)

    try:
        future.get_loop().call_soon_threadsafe(done)
    except RuntimeError:  # its loop is closed: nobody is waiting any more
        pass


_committer = _GroupCommitter(COMMIT_WINDOW)
atexit.register(_committer.drain)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_committer.reset_after_fork)


def flush_all() -> None:
    """Make every transcript written so far in this process durable now (blocking)."""
    _committer.drain()


def fork_session(
    source: Path,
    target: Path,
    entry_type: str,
    fields: Callable[[list[dict[str, Any]]], dict[str, Any]],
    *,
    guard: Guard | None = None,
) -> None:
    """Make ``target`` a copy of ``source`` (its well-formed prefix) plus one entry, atomically.

    The entry is ``fields(source entries)`` of type ``entry_type``. The copy is written to a
    temporary file in the target's folder, fsynced and renamed onto ``target`` (replacing whatever
    was there, e.g. a copy a crash cut short), then the folder is fsynced: ``target`` is either
    absent or complete, before and after a crash. The guard runs before the rename.
    """
    if entry_type not in ENTRY_TYPES:
        raise ValueError(f"unknown session entry type {entry_type!r}")
    raw = _read_bytes(source)
    _, entries, good = _parse(source, raw)
    entry = {"type": entry_type, "ts": round(time.time(), 3), **fields(entries)}
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):  # left by a fork a crash interrupted
        stale.unlink(missing_ok=True)
    temp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(temp, "xb", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
            fh.write(raw[:good])
            fh.write((json.dumps(entry, ensure_ascii=False) + "\n").encode())
            fh.flush()
            os.fsync(fh.fileno())
        if guard is not None:
            guard()
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(target.parent)


def discard_unbegun(path: Path) -> bool:
    """Remove ``path`` if a process died while creating it (empty, or its header line torn).

    Such a file recorded nothing, so the stage starts over with a new one instead of its resume
    reading the stub as damage. Returns whether a file was removed; a begun session is untouched."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline()
    except FileNotFoundError:
        return False
    if first.endswith(b"\n"):
        return False
    path.unlink()
    return True


def _read(path: Path) -> tuple[SessionHeader, list[dict[str, Any]], int]:
    """Header, entries and the byte length of the well-formed prefix of the file."""
    return _parse(path, _read_bytes(path))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no session file at {path}")
    except OSError as exc:
        raise SessionError(f"cannot read session {path}: {exc.strerror}")


def _parse(path: Path, raw: bytes) -> tuple[SessionHeader, list[dict[str, Any]], int]:
    """Header, entries and well-formed prefix length of ``raw``, the bytes of the session ``path``.

    Only the last line may be bad: it is the entry being written when the process died (no
    newline yet, or garbage a power cut left at the end), and is left out of the prefix. A bad
    line anywhere before it is damage, not a crash mid-append: :class:`SessionError`, nothing lost.
    """
    lines = raw.split(b"\n")
    unterminated = lines.pop()  # b"" when the file ends with a newline, as it should
    if unterminated:
        lines.append(unterminated)
    header: SessionHeader | None = None
    entries: list[dict[str, Any]] = []
    good = 0
    for number, line in enumerate(lines, start=1):
        data = None if number == len(lines) and unterminated else _parse_line(line)
        if data is None:
            if number == len(lines):
                break  # torn last line
            raise SessionError(
                f"session {path} is damaged at line {number} of {len(lines)} (not a JSON entry); "
                f"fix or delete line {number} by hand (or move the file away to start over), "
                "then resume the run"
            )
        if header is None:
            if data.get("type") != "header":
                raise SessionError(f"{path} is not a loopcraft session (no header line)")
            header = SessionHeader.from_dict(data)
        else:
            entries.append(data)
        good += len(line) + 1
    if header is None:
        raise SessionError(f"{path} is not a loopcraft session (empty or torn header)")
    return header, entries, good


def _parse_line(line: bytes) -> dict[str, Any] | None:
    """One JSONL line as an entry; None when it is not a JSON object."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@dataclass
class SessionInfo:
    path: Path
    id: str
    created: float
    updated: float
    model: str
    workspace: str
    title: str  # the first user prompt, shortened
    messages: int
    status: str | None


def list_sessions(directory: Path) -> list[SessionInfo]:
    """Sessions in ``directory``, most recently updated first; unreadable files are skipped."""
    found: list[SessionInfo] = []
    if not directory.is_dir():
        return found
    for path in directory.glob("*.jsonl"):
        try:
            header, entries, _ = _read(path)
        except LoopcraftError:
            continue
        messages = [e for e in entries if e.get("type") == "message"]
        prompt = next(
            (e["message"].get("content") or "" for e in messages if e["message"].get("role") == "user"), ""
        )
        statuses = [e.get("status") for e in entries if e.get("type") == "status"]
        title = " ".join(str(prompt).split())[:80]
        found.append(
            SessionInfo(
                path,
                header.id,
                header.created,
                path.stat().st_mtime,
                header.model,
                header.workspace,
                title,
                len(messages),
                statuses[-1] if statuses else None,
            )
        )
    found.sort(key=lambda s: s.updated, reverse=True)
    return found
