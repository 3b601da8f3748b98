"""Start-up figures: ``loopcraft --help`` wall time, whether litellm got imported, and the
headless start: how long ``loopcraft run hello`` takes to finish its first model call.

The headless figure spawns ``python -m loopcraft run hello --model scripted/fast`` in a fresh
git repo (a one-turn script with no pacing) and reads the scripted model's call log, which is
written when the provider stream ends: from spawning the process to that timestamp is "first
model call finished". litellm's import (a background thread, started before typer, config and
the engine) is most of it, so it is printed alone too (wall and CPU, in a fresh interpreter).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 5
FAST_SCRIPT = "pace: 0\ndefault:\n  - text: 'Hello, world.'\n"
LITELLM_PROBE = (
    "import os, time; os.environ['LITELLM_LOCAL_MODEL_COST_MAP'] = 'True'; "
    "w, c = time.perf_counter(), time.process_time(); import litellm; "
    "print(time.perf_counter() - w, time.process_time() - c)"
)


def _time_command(args: list[str], runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _env(**extra: str) -> dict[str, str]:
    """A fresh home, no Ollama probe, bytecode caching on (as for any user)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "LITELLM_LOCAL_MODEL_COST_MAP")
    }
    return {**env, "LOOPCRAFT_HOME": tempfile.mkdtemp(), "LOOPCRAFT_NO_OLLAMA_PROBE": "1", **extra}


def _fast_repo() -> Path:
    root = Path(tempfile.mkdtemp(prefix="bench-startup-")) / "repo"
    (root / ".loopcraft" / "scripts").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".loopcraft" / "scripts" / "fast.yaml").write_text(FAST_SCRIPT)
    return root


def first_model_call(runs: int = RUNS) -> tuple[float, float]:
    """Median seconds from spawning ``loopcraft run hello`` to its first model call finished,
    and to the command's exit (after one warm-up launch that fills the bytecode cache)."""
    root = _fast_repo()
    first, total = [], []
    for run in range(runs + 1):
        log = root.parent / f"calls-{run}.jsonl"
        env = _env(LOOPCRAFT_TRUST="1", LOOPCRAFT_SCRIPTED_CALL_LOG=str(log))
        command = [sys.executable, "-m", "loopcraft", "run", "hello", "--model", "scripted/fast"]
        started = time.time()
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        ended = time.time()
        if done.returncode != 0 or not log.is_file():
            raise RuntimeError(f"loopcraft run hello failed: {done.stderr[-1000:]}")
        if run:
            first.append(json.loads(log.read_text().splitlines()[0])["ts"] - started)
            total.append(ended - started)
    return statistics.median(first), statistics.median(total)


def litellm_import(runs: int = 3) -> tuple[float, float]:
    """Median wall and CPU seconds of ``import litellm`` alone, in a fresh interpreter."""
    walls, cpus = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", LITELLM_PROBE], capture_output=True, text=True, check=True
        )
        wall, cpu = (float(x) for x in out.stdout.split())
        walls.append(wall)
        cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    help_s = _time_command([sys.executable, "-m", "loopcraft", "--help"])
    print(f"loopcraft --help: {help_s * 1000:.0f} ms median of 5 (target < 500 ms)")
    import_s = _time_command([sys.executable, "-c", "import loopcraft"])
    print(f"import loopcraft: {import_s * 1000:.0f} ms median of 5")
    probe = "import sys, loopcraft.cli; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    print(f"litellm imported by the CLI module: {out.stdout.strip()}")
    first, total = first_model_call()
    print(
        f"loopcraft run hello, first scripted model call finished: {first:.2f} s after spawning "
        f"(target < 1.5 s; median of {RUNS}); the command exits after {total:.2f} s"
    )
    wall, cpu = litellm_import()
    print(f"import litellm alone (fresh interpreter): {wall:.2f} s wall, {cpu:.2f} s CPU (median of 3)")
