"""Run-control figures: interrupt latency (command posted -> in-flight model call cancelled) and
cross-process command pickup latency (posted by another process -> applied by the owner)."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loopcraft import Context, workflow
from loopcraft.config import Config, EngineConfig
from loopcraft.engine.service import Engine
from loopcraft.engine.tasks import TaskOutcome, TaskRequest

SAMPLES = 10


class _SlowSession:
    """A session whose 'model call' takes a minute unless interrupted; records when it was cancelled."""

    def __init__(self, runner: _Runner) -> None:
        self.runner = runner
        self.task: asyncio.Task[Any] | None = None
        self.runs = 0

    started = False
    corrections = 0

    async def run(self, prompt: str | None) -> TaskOutcome:
        self.runs += 1
        if self.runs > 1:
            return TaskOutcome(text="done")
        self.task = asyncio.ensure_future(asyncio.sleep(60))
        self.runner.calling.set()
        try:
            await self.task
        except asyncio.CancelledError:
            self.runner.cancelled_at = time.perf_counter()
            self.runner.cancelled.set()
            return TaskOutcome(text="", status="interrupted")
        return TaskOutcome(text="done")

    def steer(self, text: str) -> None: ...
    def follow_up(self, text: str) -> None: ...

    def interrupt(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def close(self) -> None: ...


class _Runner:
    def __init__(self) -> None:
        self.calling = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.cancelled_at = 0.0

    async def open(self, request: TaskRequest) -> _SlowSession:
        return _SlowSession(self)


@workflow(name="bench-slow")
async def slow(ctx: Context) -> str:
    return (await ctx.task("slow", prompt="x")).text


def _git_repo(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


async def _interrupt_latency(root: Path, sender: str | None) -> list[float]:
    """Seconds from posting an interrupt to the model call's cancellation (``sender``: another process)."""
    config = Config(model="scripted/bench", engine=EngineConfig(poll_seconds=0.1))
    samples = []
    for _ in range(SAMPLES):
        runner = _Runner()
        engine = await Engine.open(root, config, runner=runner)
        engine.register(slow)
        run_id = await engine.start("bench-slow", {})
        await runner.calling.wait()
        if sender is None:
            posted = time.perf_counter()
            await engine.interrupt(run_id)
        else:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                sender,
                str(engine.journal.path),
                run_id,
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await proc.communicate()
            posted = float(out.decode().strip())  # perf_counter is system-wide (CLOCK_MONOTONIC)
        await runner.cancelled.wait()
        samples.append(runner.cancelled_at - posted)
        await engine.kill(run_id)
        await engine.close()
    return samples


# Another process posts the command straight into the journal's mailbox and prints when it did.
_SENDER = """
import sqlite3, sys, time, json
conn = sqlite3.connect(sys.argv[1], timeout=5, isolation_level=None)
conn.execute("INSERT INTO mailbox (run_id, kind, payload, created) VALUES (?, 'interrupt', '{}', ?)",
             (sys.argv[2], time.time()))
print(time.perf_counter())
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = _git_repo(Path(tmp))
        local = asyncio.run(_interrupt_latency(root, None))
        remote = asyncio.run(_interrupt_latency(root, _SENDER))
    print(
        f"interrupt latency (command -> model call cancelled, same process): "
        f"p50 {statistics.median(local) * 1000:.1f} ms, max {max(local) * 1000:.1f} ms (target < 1 s)"
    )
    print(
        f"command pickup across processes (poll {0.1 * 1000:.0f} ms): p50 "
        f"{statistics.median(remote) * 1000:.1f} ms, max {max(remote) * 1000:.1f} ms (target < 250 ms)"
    )
