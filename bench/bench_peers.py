"""loopcraft side by side with DBOS and LangGraph on file-backed SQLite (``python -m bench peers``).

Every figure comes from a fresh process (:mod:`bench.peers_worker`), the systems interleaved and
their order rotated per repetition: no-op step overhead (p50/p95, total over 1,000 steps), resume
of a run that recorded 10,000 steps and was killed, steps re-run after a kill right after step
1,000 (durability), a 200 x 20 ms fan-out at concurrency 50 against the ideal, cold start (import
and open the store) and bytes per step. Each system runs at its defaults (journal mode and
synchronous read back and printed), plus loopcraft at synchronous=FULL. Needs the optional extra
``bench`` (``pip install -e '.[bench]'``); without it this prints one line and skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

SYSTEMS = ["loopcraft", "loopcraft-full", "dbos", "langgraph-graph", "langgraph-func"]
PEERS = ["dbos", "langgraph-graph", "langgraph-func"]
REPS = int(os.environ.get("BENCH_PEERS_REPS", "3"))  # steps, fan-out, cold start
RESUME_REPS = int(os.environ.get("BENCH_PEERS_RESUME_REPS", "1"))  # a resume takes seconds: less noise
RESUME_STEPS = 10_000
CRASH_AFTER = 1_000
IDEAL_FANOUT_S = 200 / 50 * 0.02


def _missing() -> list[str]:
    wanted = {
        "dbos": "dbos",
        "langgraph": "langgraph",
        "langgraph.checkpoint.sqlite": "langgraph-checkpoint-sqlite",
    }
    missing = []
    for module, dist in wanted.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(dist)
    return missing


def _args(system: str, measure: str, folder: Path, steps: int | None) -> tuple[list[str], dict[str, str]]:
    args = [sys.executable, "-m", "bench.peers_worker", system, measure, str(folder)]
    if steps is not None:
        args.append(str(steps))
    root = Path(__file__).resolve().parent.parent
    return args, {**os.environ, "PYTHONPATH": str(root), "LOOPCRAFT_TRUST": "1"}


def _record(jobs: list[tuple[str, Path, int]]) -> None:
    """Record runs that kill themselves at their next step: setup, not measured, so side by side."""
    procs = []
    for system, folder, steps in jobs:
        args, env = _args(system, "record", folder, steps)
        procs.append(
            subprocess.Popen(args, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    for proc in procs:
        proc.wait(timeout=600)


def _worker(system: str, measure: str, folder: Path, steps: int | None = None) -> dict[str, Any]:
    args, env = _args(system, measure, folder, steps)
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, cwd=folder)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{system} {measure} failed ({proc.returncode}): {proc.stderr.strip()[-600:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _rotated(rep: int) -> list[str]:
    shift = rep % len(SYSTEMS)
    return SYSTEMS[shift:] + SYSTEMS[:shift]


def _ran(folder: Path) -> list[int]:
    path = folder / "ran.log"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def collect(tmp: Path, say: Callable[[str], None]) -> dict[str, dict[str, list[float]]]:
    figures: dict[str, dict[str, list[float]]] = {s: {} for s in SYSTEMS}
    settings: dict[str, dict[str, str]] = {}

    def add(system: str, name: str, value: float) -> None:
        figures[system].setdefault(name, []).append(value)

    def fresh(system: str, label: str) -> Path:
        folder = tmp / f"{system}-{label}"
        folder.mkdir()
        return folder

    for rep in range(REPS):
        for system in _rotated(rep):
            out = _worker(system, "steps", fresh(system, f"steps{rep}"))
            settings[system] = {"journal_mode": out["journal_mode"], "synchronous": out["synchronous"]}
            for name in ("p50_ms", "p95_ms", "total_s", "bytes_per_step", "cold_s"):
                add(system, name, out[name])
        for system in _rotated(rep + 1):
            out = _worker(system, "fanout", fresh(system, f"fan{rep}"))
            add(system, "fanout_s", out["fanout_s"])
            add(system, "cold_s", out["cold_s"])
        say(f"   repetition {rep + 1}/{REPS}: steps, fan-out and cold start done")
    recorded = {system: fresh(system, "recorded") for system in SYSTEMS}
    crashed = {system: fresh(system, "crash") for system in SYSTEMS}
    _record(
        [(s, f, RESUME_STEPS) for s, f in recorded.items()]
        + [(s, f, CRASH_AFTER) for s, f in crashed.items()]
    )
    say(f"   runs of {RESUME_STEPS:,} and of {CRASH_AFTER:,} steps recorded, each killed at its next step")
    for rep in range(RESUME_REPS):
        for system in _rotated(rep):
            folder = tmp / f"{system}-resume{rep}"
            shutil.copytree(recorded[system], folder)
            add(system, "resume_s", _worker(system, "resume", folder)["resume_s"])
    for system in SYSTEMS:
        folder = crashed[system]
        before = len(_ran(folder))
        _worker(system, "resume", folder)
        again = [i for i in _ran(folder)[before:] if i < CRASH_AFTER]
        add(system, "rerun", float(len(again)))
    _SETTINGS.update(settings)
    return figures


_SETTINGS: dict[str, dict[str, str]] = {}

ROWS = [
    ("step p50 (ms)", "p50_ms", "{:.3f}"),
    ("step p95 (ms)", "p95_ms", "{:.3f}"),
    ("1,000 steps total (s)", "total_s", "{:.2f}"),
    (f"resume {RESUME_STEPS:,} steps (s)", "resume_s", "{:.2f}"),
    (f"steps re-run after kill at {CRASH_AFTER:,}", "rerun", "{:.0f}"),
    ("fan-out 200x20ms @50 / ideal", "fanout_ratio", "{:.2f}x"),
    ("cold start: import + open (s)", "cold_s", "{:.2f}"),
    ("bytes per step", "bytes_per_step", "{:.0f}"),
]


def _median(figures: dict[str, list[float]], key: str) -> float | None:
    if key == "fanout_ratio":
        value = _median(figures, "fanout_s")
        return None if value is None else value / IDEAL_FANOUT_S
    values = figures.get(key)
    return statistics.median(values) if values else None


def table(figures: dict[str, dict[str, list[float]]]) -> list[str]:
    widths = [34] + [16] * len(SYSTEMS)
    head = ["", *SYSTEMS]
    lines = ["".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    for label in ("journal_mode", "synchronous"):
        cells = [label] + [_SETTINGS.get(s, {}).get(label, "?") for s in SYSTEMS]
        lines.append("".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    for label, key, fmt in ROWS:
        base = _median(figures["loopcraft"], key)
        cells = [label]
        for system in SYSTEMS:
            value = _median(figures[system], key)
            if value is None:
                cells.append("-")
                continue
            text = fmt.format(value)
            if system in PEERS and base and key != "rerun":
                text += f" ({value / base:.1f}x)"
            cells.append(text)
        lines.append("".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    lines.append(
        "   (peer x: the peer's figure over loopcraft's at its defaults; above 1 means loopcraft is ahead, "
        "except re-runs, where 0 is right)"
    )
    return lines


def versions() -> str:
    names = ["dbos", "langgraph", "langgraph-checkpoint-sqlite"]
    found = [f"{n} {metadata.version(n)}" for n in names]
    import sqlite3

    return f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, " + ", ".join(found)


def main() -> None:
    missing = _missing()
    if missing:
        print(f"peers: skipped ({', '.join(missing)} not installed: pip install -e '.[bench]')")
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loopcraft-peers-") as tmp:
        figures = collect(Path(tmp), lambda line: print(line, flush=True))
    print(f"peers ({versions()}; {REPS} repetitions, median; {time.perf_counter() - started:.0f} s)")
    for line in table(figures):
        print(line)


if __name__ == "__main__":
    main()
