"""Session transcripts: one append-only JSONL file per agent session.

The first line is a header (id, created, workspace, model, system prompt and its hash,
tool names); every later line is one typed entry (``type`` is one of ENTRY_TYPES). Each
append is flushed and fsynced, so a crash loses at most the entry being written; a torn
last line is dropped (and cut from the file) when the session is opened again. A writer
may pass ``sync=False`` for an entry whose loss is harmless (it is still flushed, and the
next synced entry makes it durable too, so what survives a crash is always a prefix).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loopcraft.errors import LoopcraftError, NotFoundError
from loopcraft.paths import state_dir

ENTRY_TYPES = frozenset(
    {"message", "tool_call_start", "tool_result", "compaction", "model_change", "usage", "status"}
)
FORMAT_VERSION = 1


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
    ) -> None:
        self.path = path
        self.header = header
        self.entries = entries  # as loaded by open(); appends are not kept in memory
        self.guard = guard
        self.durable = durable
        self._file = open(path, "ab")  # noqa: SIM115 - held open for the session's life

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
            with open(path, "xb") as fh:
                fh.write(line.encode())
                fh.flush()
                if durable:
                    os.fsync(fh.fileno())
        except FileExistsError:
            raise SessionError(f"session file {path} already exists; open it to resume instead")
        return cls(path, header, [], guard, durable)

    @classmethod
    def open(cls, path: Path, *, guard: Guard | None = None, durable: bool = True) -> SessionLog:
        """Load an existing transcript, dropping a torn last line so appends stay valid."""
        path = Path(path)
        header, entries, good_bytes = _read(path)
        if good_bytes < path.stat().st_size:
            with open(path, "r+b") as fh:
                fh.truncate(good_bytes)
        return cls(path, header, entries, guard, durable)

    def append(self, entry_type: str, *, sync: bool = True, **data: Any) -> dict[str, Any]:
        """Write one entry (flushed; fsynced unless ``sync=False``); the guard may raise to forbid it."""
        if entry_type not in ENTRY_TYPES:
            raise ValueError(f"unknown session entry type {entry_type!r}")
        if self.guard is not None:
            self.guard()
        entry = {"type": entry_type, "ts": round(time.time(), 3), **data}
        self._file.write((json.dumps(entry, ensure_ascii=False) + "\n").encode())
        self._file.flush()
        if self.durable and sync:
            os.fsync(self._file.fileno())
        return entry

    def read_entries(self) -> list[dict[str, Any]]:
        """Every entry now on disk (re-reads the file)."""
        return _read(self.path)[1]

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> SessionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read(path: Path) -> tuple[SessionHeader, list[dict[str, Any]], int]:
    """Header, entries and the byte length of the well-formed prefix of the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no session file at {path}")
    except OSError as exc:
        raise SessionError(f"cannot read session {path}: {exc.strerror}")
    header: SessionHeader | None = None
    entries: list[dict[str, Any]] = []
    good = 0
    for line in raw.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # torn last line: the entry that was being written when the process died
        try:
            data = json.loads(line)
        except ValueError:
            break
        if header is None:
            if not isinstance(data, dict) or data.get("type") != "header":
                raise SessionError(f"{path} is not a loopcraft session (no header line)")
            header = SessionHeader.from_dict(data)
        else:
            entries.append(data)
        good += len(line)
    if header is None:
        raise SessionError(f"{path} is not a loopcraft session (empty or torn header)")
    return header, entries, good


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
