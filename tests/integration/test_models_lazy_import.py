"""The first litellm import happens off the event loop, so runs and the TUI keep ticking."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import asyncio, time
from loopcraft.models.litellm_loader import load_litellm_async

async def main():
    gaps = []
    async def ticker():
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    module = await load_litellm_async()
    took = time.perf_counter() - started
    tick.cancel()
    assert module.__name__ == "litellm"
    assert (await load_litellm_async()) is module
    print(f"{took:.3f} {max(gaps):.3f} {len(gaps)}")

asyncio.run(main())
"""


def test_first_import_does_not_block_the_loop() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    took, worst_gap, ticks = out.stdout.split()
    # The import takes seconds; the loop kept running through it (the GIL allows short stalls).
    assert float(took) > 0.5
    assert int(ticks) > 10
    assert float(worst_gap) < float(took) / 2
