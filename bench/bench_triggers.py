"""Trigger benchmarks: event-to-run-start latency (an event recorded the way ``loopcraft event``
does, on its own connection, until ``serve`` has created its run; target < 250 ms) and the inbox's
throughput (events per second recorded, and turned into runs)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["LOOPCRAFT_TRUST"] = "1"

from loopcraft.config import Config
from loopcraft.engine.service import db_path
from loopcraft.triggers.inbox import Inbox
from loopcraft.triggers.serve import Server

LATENCY_EVENTS = 30
THROUGHPUT_EVENTS = 300

QUICK = """
from loopcraft import Context, workflow


@workflow
async def quick(ctx: Context, target: str = "") -> str:
    return target
"""


def _repo(root: Path) -> None:
    (root / ".git").mkdir()
    (root / ".loopcraft" / "workflows").mkdir(parents=True)
    (root / ".loopcraft" / "workflows" / "quick.py").write_text(QUICK)
    (root / ".loopcraft" / "triggers.toml").write_text(
        'max_concurrent_runs = 1000\n[[trigger]]\nworkflow = "quick"\nwebhook = "job"\n'
    )


def _started(path: Path) -> dict[str, float]:
    """Each event's time from being recorded to its run's creation, in seconds."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        rows = conn.execute(
            "SELECT e.id, r.created - e.created FROM inbox_events e JOIN inbox_dispatch d ON d.event_id = e.id "
            "JOIN runs r ON r.id = d.run_id"
        ).fetchall()
    finally:
        conn.close()
    return {r[0]: r[1] for r in rows}


async def _bench(root: Path) -> dict[str, float]:
    _repo(root)
    server = Server(root, Config(model="scripted/none"), out=open(os.devnull, "w"))  # noqa: SIM115
    task = asyncio.ensure_future(server.run())
    inbox = Inbox(db_path(root))
    while server.inbox is None or inbox.serve_owner() is None:  # noqa: ASYNC110 (another connection)
        await asyncio.sleep(0.01)
    for _ in range(LATENCY_EVENTS):
        event_id, _ = inbox.record("job", {}, source="cli")
        while event_id not in _started(db_path(root)):  # noqa: ASYNC110
            await asyncio.sleep(0.002)
    latencies = sorted(_started(db_path(root)).values())
    t0 = time.perf_counter()
    ids = [inbox.record("job", {"n": i}, source="cli")[0] for i in range(THROUGHPUT_EVENTS)]
    recorded_s = time.perf_counter() - t0
    while len(_started(db_path(root))) < LATENCY_EVENTS + THROUGHPUT_EVENTS:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    runs_s = time.perf_counter() - t0
    while server.watchers:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    server.stop.set()
    await task
    inbox.close()
    assert len(ids) == THROUGHPUT_EVENTS
    return {
        "p50_ms": statistics.median(latencies) * 1e3,
        "p95_ms": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] * 1e3,
        "recorded_per_s": THROUGHPUT_EVENTS / recorded_s,
        "runs_per_s": THROUGHPUT_EVENTS / runs_s,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            res = asyncio.run(_bench(Path(tmp).resolve()))
        finally:
            os.chdir(cwd)
    print(f"triggers_event_to_run_start_p50_ms (target < 250): {res['p50_ms']:.1f}")
    print(f"triggers_event_to_run_start_p95_ms: {res['p95_ms']:.1f}")
    print(f"triggers_inbox_recorded_per_s: {res['recorded_per_s']:.0f}")
    print(f"triggers_inbox_events_to_runs_per_s: {res['runs_per_s']:.0f}")


if __name__ == "__main__":
    main()
