"""``ctx.tool(..., timeout=…)`` on a real journal: a slow tool (async or sync) times out with
"ctx.tool NAME timed out after Ns (K attempt(s))", retries count attempts, and a resume replays a
recorded result (or a recorded timeout) without calling the tool again."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from loopcraft import Context, workflow
from loopcraft.engine.service import Engine
from tests.engine_fakes import open_engine

CALLS: list[str] = []
FLAGS: dict[str, Any] = {}
ENGINES: list[Engine] = []
UNBLOCK = threading.Event()


@pytest.fixture(autouse=True)
async def _reset() -> AsyncIterator[None]:
    CALLS.clear()
    FLAGS.clear()
    UNBLOCK.clear()
    yield
    UNBLOCK.set()  # a blocked sync tool's thread ends, so the process can exit
    while ENGINES:
        await ENGINES.pop().close()


async def _engine(root: Path, *workflows: Any) -> Engine:
    engine = await open_engine(root)
    ENGINES.append(engine)
    engine.register(*workflows)
    return engine


async def _steps(engine: Engine, run_id: str) -> dict[str, tuple[str, int]]:
    return {s.name: (s.status, s.attempts) for s in await engine.journal.load_steps(run_id)}


@workflow(name="slow-async")
async def slow_async(ctx: Context, retries: int = 0) -> str:
    async def slow() -> str:
        CALLS.append("start")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            CALLS.append("cancelled")
            raise
        return "never"

    return str(await ctx.tool("slow", slow, timeout=0.2, retries=retries))


async def test_a_slow_async_tool_times_out_and_is_cancelled(git_repo: Path) -> None:
    engine = await _engine(git_repo, slow_async)
    info = await asyncio.wait_for(engine.run("slow-async", {}), 20)
    assert info.status == "failed"
    assert "ctx.tool 'slow' timed out after 0.2s (1 attempt(s))" in (info.error or "")
    assert CALLS == ["start", "cancelled"]
    assert await _steps(engine, info.id) == {"slow": ("failed", 1)}


async def test_every_attempt_gets_the_timeout(git_repo: Path) -> None:
    engine = await _engine(git_repo, slow_async)
    info = await asyncio.wait_for(engine.run("slow-async", {"retries": 2}), 20)
    assert info.status == "failed"
    assert "ctx.tool 'slow' timed out after 0.2s (3 attempt(s))" in (info.error or "")
    assert CALLS == ["start", "cancelled"] * 3
    assert await _steps(engine, info.id) == {"slow": ("failed", 3)}


@workflow(name="slow-then-fast")
async def slow_then_fast(ctx: Context) -> list[Any]:
    async def flaky() -> tuple[str, int]:
        CALLS.append("call")
        if len(CALLS) == 1:
            await asyncio.sleep(30)
        return ("fast", len(CALLS))

    return list(await ctx.tool("flaky", flaky, timeout=0.2, retries=1))


async def test_a_retry_after_a_timeout_can_succeed(git_repo: Path) -> None:
    engine = await _engine(git_repo, slow_then_fast)
    info = await asyncio.wait_for(engine.run("slow-then-fast", {}), 20)
    assert info.status == "completed", info.error
    assert info.output == ["fast", 2]
    assert await _steps(engine, info.id) == {"flaky": ("completed", 2)}


@workflow(name="slow-sync")
async def slow_sync(ctx: Context) -> str:
    def blocking() -> str:
        CALLS.append(ctx.idempotency_key)
        UNBLOCK.wait(30)  # a sync tool with a timeout runs on a thread: it cannot block the loop
        return "late"

    async def beat() -> None:  # the event loop keeps turning while the sync tool blocks
        while True:
            FLAGS["beats"] = FLAGS.get("beats", 0) + 1
            await asyncio.sleep(0.01)

    beating = asyncio.ensure_future(beat())
    try:
        return str(await ctx.tool("blocking", blocking, timeout=0.3))
    finally:
        beating.cancel()


async def test_a_blocking_sync_tool_times_out_without_blocking_the_loop(git_repo: Path) -> None:
    engine = await _engine(git_repo, slow_sync)
    info = await asyncio.wait_for(engine.run("slow-sync", {}), 20)
    assert info.status == "failed"
    assert "ctx.tool 'blocking' timed out after 0.3s (1 attempt(s))" in (info.error or "")
    assert [f"{info.id}:root/0:tool:blocking"] == CALLS  # the idempotency key reaches the thread
    assert FLAGS["beats"] > 3


@workflow(name="recorded")
async def recorded(ctx: Context) -> dict[str, Any]:
    async def fetch() -> dict[str, Any]:
        CALLS.append("fetch")
        return {"value": 41, "key": ctx.idempotency_key, "pair": (1, 2)}

    async def hang() -> None:
        CALLS.append("hang")
        await asyncio.sleep(30)

    got = await ctx.tool("fetch", fetch, timeout=5)
    try:
        await ctx.tool("hang", hang, timeout=0.1)
        timeout_seen = ""
    except Exception as exc:  # the workflow sees the same timeout on every replay
        timeout_seen = str(exc)
    if not FLAGS.get("resumed"):
        raise RuntimeError("crash before the run ends")
    return {**got, "timeout": timeout_seen}


async def test_recorded_results_and_timeouts_replay_on_resume(git_repo: Path) -> None:
    engine = await _engine(git_repo, recorded)
    first = await asyncio.wait_for(engine.run("recorded", {}), 20)
    assert first.status == "failed" and "crash before the run ends" in (first.error or "")
    assert CALLS == ["fetch", "hang"]
    FLAGS["resumed"] = True
    other = await _engine(git_repo, recorded)  # a fresh engine: another process's view of the journal
    info = await asyncio.wait_for(other.resume(first.id), 20)
    assert info.status == "completed", info.error
    assert CALLS == ["fetch", "hang"]  # neither tool ran again
    assert info.output["value"] == 41 and info.output["pair"] == [1, 2]  # the journaled JSON
    assert info.output["key"] == f"{first.id}:root/0:tool:fetch"
    assert "ctx.tool 'hang' timed out after 0.1s (1 attempt(s))" in info.output["timeout"]
    assert await _steps(other, info.id) == {"fetch": ("completed", 1), "hang": ("failed", 1)}
