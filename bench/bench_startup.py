"""Start-up figures: ``loopcraft --help`` wall time and whether litellm got imported."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def _time_command(args: list[str], runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    help_s = _time_command([sys.executable, "-m", "loopcraft", "--help"])
    print(f"loopcraft --help: {help_s * 1000:.0f} ms median of 5 (target < 500 ms)")
    import_s = _time_command([sys.executable, "-c", "import loopcraft"])
    print(f"import loopcraft: {import_s * 1000:.0f} ms median of 5")
    probe = "import sys, loopcraft.cli; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    print(f"litellm imported by the CLI module: {out.stdout.strip()}")
