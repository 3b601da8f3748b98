"""Stats benchmark: ``loopcraft stats`` (all workflows, every figure) over 10,000 recorded runs
of three workflows, each with four stages and two scores, a fifth of them with a journaled model
retry, in a real SQLite journal (target < 1 s)."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from loopcraft.engine.journal import Journal
from loopcraft.engine.stats import journal_stats

RUNS = 10_000
STAGES = ("plan", "worker", "check", "review")
STATUSES = ("completed",) * 7 + ("failed", "blocked", "budget_exceeded")


def _seed(path: Path) -> None:
    rng = random.Random(16)
    now = time.time()
    runs, steps, events = [], [], []
    for index in range(RUNS):
        rid = f"run-{index:05d}"
        status = rng.choice(STATUSES)
        created = now - rng.uniform(0, 20 * 86400)
        usage = {"input_tokens": rng.randint(1000, 90000), "output_tokens": rng.randint(100, 9000)}
        usage |= {"cache_read_tokens": usage["input_tokens"] // 2, "cost_usd": rng.uniform(0.01, 2.0)}
        error = {
            "failed": "stage worker failed",
            "blocked": "2 blocking findings",
            "budget_exceeded": "tokens=50000",
        }
        runs.append(
            (
                rid,
                f"wf-{index % 3}",
                "{}",
                status,
                error.get(status),
                created,
                created + 60,
                created + 60,
                json.dumps(usage),
            )
        )
        for pos, name in enumerate(STAGES):
            failed = status == "failed" and name == "worker"
            err = json.dumps({"type": "StageFailure", "message": "boom"}) if failed else None
            steps.append(
                (
                    rid,
                    f"root/{pos}:task:{name}",
                    f"root/{pos}",
                    "task",
                    name,
                    "failed" if failed else "completed",
                    '"ok"',
                    err,
                    json.dumps(usage),
                    created + pos,
                    created + pos + 5,
                    pos,
                )
            )
        if rng.random() < 0.2:
            attempts = [{"model": "m", "error_class": "rate_limit", "then": "retry"}]
            body = {"turn": 1, "attempts": attempts, "kind": "model_retries"}
            payload = {"key": "root/1:task:worker", "kind": "model_retries", "event": body}
            events.append((rid, 1, created, "stage_event", json.dumps(payload, separators=(",", ":"))))
        for pos, (name, value) in enumerate(
            (("turns", rng.randint(1, 4)), ("approvals", rng.randint(0, 3))), 4
        ):
            steps.append(
                (
                    rid,
                    f"root/{pos}:score:{name}",
                    f"root/{pos}",
                    "score",
                    name,
                    "completed",
                    json.dumps(value),
                    None,
                    None,
                    created,
                    created,
                    pos,
                )
            )
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO runs (id, workflow, inputs, status, error, created, updated, finished, usage) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            runs,
        )
        db.executemany(
            "INSERT INTO steps (run_id, key, pos, kind, name, status, output, error, usage, started, finished, seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            steps,
        )
        db.executemany("INSERT INTO events (run_id, seq, ts, type, payload) VALUES (?, ?, ?, ?, ?)", events)


async def _measure(path: Path) -> tuple[float, int]:
    journal = await Journal.open(path)
    await journal.close()
    _seed(path)
    journal = await Journal.open(path)
    try:
        started = time.perf_counter()
        entries = await journal_stats(journal)
        return time.perf_counter() - started, sum(e["runs"] for e in entries)
    finally:
        await journal.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        seconds, runs = asyncio.run(_measure(Path(tmp) / "loopcraft.db"))
    verdict = "ok" if seconds < 1.0 else "SLOW"
    print(
        f"   stats over {runs:,} runs ({len(STAGES)} stages + 2 scores each): {seconds * 1000:.0f} ms "
        f"(target < 1000 ms) {verdict}"
    )
