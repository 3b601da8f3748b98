"""Shared helpers for the engine's integration tests: a model client that dies on a chosen call, standing in
for the process crashing in the middle of a run, and a helper that starts a run and lets it crash so; an
engine whose events are collected, and a wait for a stage flag among them; and, for the
tests that SIGKILL real ``loopcraft`` processes, reading a repository's journal and files beside them,
waiting for their progress, and the kill itself."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loopcraft.config import Config
from loopcraft.engine.definition import Workflow
from loopcraft.engine.events import EngineEvent, StageFlag
from loopcraft.engine.schema import MIGRATIONS
from loopcraft.engine.service import Engine
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.types import CompletionRequest, CompletionResult, DeltaCallback


class Crash(BaseException):
    """Stands in for the process dying: a BaseException, so no ``except Exception`` in the engine stops it."""


class CrashingClient:
    """Passes calls to ``inner`` and raises :class:`Crash` on call number ``crash_on_call`` (1-based)."""

    def __init__(self, inner: LiteLLMClient, crash_on_call: int) -> None:
        self.inner, self.crash_on_call, self.calls = inner, crash_on_call, 0

    async def complete(
        self, request: CompletionRequest, on_delta: DeltaCallback | None = None
    ) -> CompletionResult:
        self.calls += 1
        if self.calls == self.crash_on_call:
            raise Crash()
        return await self.inner.complete(request, on_delta)


async def crashed_run(root: Path, config: Config, wf: Workflow, crash_on_call: int) -> tuple[Engine, str]:
    """Start ``wf`` on an engine whose model client dies on call ``crash_on_call``, wait for the Crash
    to surface, and return the engine (still open: the caller closes it as it needs) and the run id."""
    engine = await Engine.open(root, config, client=CrashingClient(LiteLLMClient(config), crash_on_call))
    engine.register(wf)
    run_id = await engine.start(wf.name, {})
    with pytest.raises(Crash):
        await engine.wait(run_id)
    return engine, run_id


# -- a run in this process, watched through its events ---------------------------------------------


def collect_events(engine: Engine) -> list[EngineEvent]:
    """A list that fills with every event ``engine`` publishes from now on."""
    seen: list[EngineEvent] = []
    engine.bus.subscribe(seen.append)
    return seen


async def watched_engine(root: Path, config: Config, wf: Workflow) -> tuple[Engine, list[EngineEvent]]:
    """An engine opened on ``root`` with ``wf`` registered (the caller closes it), and the list its
    events fill from now on."""
    engine = await Engine.open(root, config)
    engine.register(wf)
    return engine, collect_events(engine)


async def flag_raised(seen: list[EngineEvent], flag: str, polls: int = 150) -> StageFlag:
    """The first :class:`StageFlag` ``flag`` in ``seen``, looking every 20 ms up to ``polls`` times
    (StopIteration when it never came)."""
    for _ in range(polls):
        if any(isinstance(e, StageFlag) and e.flag == flag for e in seen):
            break
        await asyncio.sleep(0.02)
    return next(e for e in seen if isinstance(e, StageFlag) and e.flag == flag)


# -- real processes, killed and probed from outside ------------------------------------------------


def journal_rows(repo: Path, sql: str) -> list[Any]:
    """The rows of ``sql`` on ``repo``'s journal, opened read-only beside whatever process writes it;
    none while there is no journal yet or it has not made its tables."""
    db = repo / ".loopcraft" / "loopcraft.db"
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def file_lines(repo: Path, name: str) -> list[str]:
    """The lines of ``repo/name`` (none while it does not exist)."""
    path = repo / name
    return path.read_text().splitlines() if path.exists() else []


def completed_tools(repo: Path) -> set[str]:
    """``run:key`` of every ``ctx.tool`` step the journal holds as completed."""
    rows = journal_rows(repo, "SELECT run_id, key FROM steps WHERE kind = 'tool' AND status = 'completed'")
    return {f"{run}:{key}" for run, key in rows}


def wait_until(
    proc: subprocess.Popen[str], measure: Callable[[], int], reach: int, timeout: float, pause: float
) -> bool:
    """Check ``measure()`` every ``pause`` seconds until it reaches ``reach`` (True); False when ``proc``
    ended first; at the ``timeout``, whether ``proc`` still runs."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        if measure() >= reach:
            return True
        time.sleep(pause)
    return proc.poll() is None


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL ``proc`` (no chance to clean up) and reap it."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def old_journal(db: Path, version: int, *statements: str) -> None:
    """A journal file at schema ``version`` (its first migrations only) holding what ``statements``
    insert: what an older loopcraft left behind, for a migration test."""
    conn = sqlite3.connect(db)
    for migration in MIGRATIONS[:version]:
        conn.executescript(migration)
    for statement in statements:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
