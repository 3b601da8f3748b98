"""TUI figures: time to first paint, keypress-to-screen latency while 16 stages stream,
and memory after a 10,000-message transcript. Prints ``name: value`` lines."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

FIRST_PAINT = """
import time
t0 = time.perf_counter()
import asyncio, sys
from pathlib import Path
from loopcraft.config import Config
from loopcraft.tui.app import LoopcraftApp

async def main():
    app = LoopcraftApp(Path(sys.argv[1]), Config(), "scripted/demo", background=False)
    async with app.run_test(size=(160, 45)) as pilot:
        while app.first_paint_at is None:
            await pilot.pause(0.01)
        print(app.first_paint_at - t0, "litellm" in sys.modules)

asyncio.run(main())
"""

BENCH_WORKFLOW = """
from loopcraft import Context, workflow

@workflow(description="16 streaming stages")
async def bench16(ctx: Context) -> str:
    results = await ctx.parallel(*[ctx.spec(f"stream-{i}", prompt="stream", model="scripted/bench")
                                   for i in range(16)], concurrency=16)
    return str(len(results))
"""


def _repo() -> Path:
    root = Path(tempfile.mkdtemp(prefix="bench-tui-")) / "repo"
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def first_paint(runs: int = 3) -> tuple[float, bool]:
    samples, leaked = [], False
    env = {**os.environ, "LOOPCRAFT_HOME": tempfile.mkdtemp(), "LOOPCRAFT_NO_OLLAMA_PROBE": "1"}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", FIRST_PAINT, str(_repo())],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.split()
        samples.append(float(out[0]))
        leaked = leaked or out[1] == "True"
    return statistics.median(samples), leaked


async def keypress_latency(presses: int = 60) -> tuple[float, float, int]:
    from loopcraft.config import Config
    from loopcraft.models.scripted import Script, register_script
    from loopcraft.tui.app import LoopcraftApp

    register_script(
        "bench",
        Script.model_validate(
            {"pace": 0.01, "chunk_size": 8, "default": [{"text": "streaming words " * 150}]}
        ),
    )
    root = _repo()
    (root / ".loopcraft" / "workflows").mkdir(parents=True)
    (root / ".loopcraft" / "workflows" / "bench16.py").write_text(BENCH_WORKFLOW)
    app = LoopcraftApp(root, Config(), "scripted/demo", background=False)
    latencies: list[float] = []
    async with app.run_test(size=(160, 45)) as pilot:
        controller = await app.open_workflows()
        run_id = await controller.run("bench16", {})
        while len(controller.graphs[run_id].nodes) < 16 or not any(
            n.status == "running" for n in controller.graphs[run_id].nodes.values()
        ):
            await pilot.pause(0.05)
        await controller.attach(run_id, "stream-0")
        app.input.focus()
        for index in range(presses):
            char = "abcdefghij"[index % 10]
            before = len(app.input.value)
            started = time.perf_counter()
            await pilot.press(char)
            while len(app.input.value) == before:  # noqa: ASYNC110 - polling the widget is the point
                await asyncio.sleep(0)
            await pilot.pause()  # let the screen refresh
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
        running = sum(1 for n in controller.graphs[run_id].nodes.values() if n.status == "running")
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    return statistics.median(latencies), p95, running


async def transcript_memory(messages: int = 10_000) -> tuple[float, float, int, float]:
    from loopcraft.config import Config
    from loopcraft.tui.app import LoopcraftApp
    from loopcraft.tui.chat import AssistantMessage, UserMessage

    app = LoopcraftApp(_repo(), Config(), "scripted/demo", background=False)
    async with app.run_test(size=(160, 45)) as pilot:
        tracemalloc.start()
        started = time.perf_counter()
        for start in range(0, messages, 500):  # appended in batches, as when a transcript loads
            batch = [
                UserMessage(f"question {i}") if i % 2 == 0 else AssistantMessage(f"answer **{i}**")
                for i in range(start, start + 500)
            ]
            await app.chat_view.add_many(batch)
        await pilot.pause()
        elapsed = time.perf_counter() - started
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        mounted = len(app.chat_view.blocks())
    return current / 1e6, peak / 1e6, mounted, elapsed


def main() -> None:
    os.environ.setdefault("LOOPCRAFT_NO_OLLAMA_PROBE", "1")
    os.environ.setdefault("LOOPCRAFT_HOME", tempfile.mkdtemp())
    paint, leaked = first_paint()
    print(f"time to first paint: {paint * 1000:.0f} ms median of 3, from first import (target < 500 ms)")
    print(f"litellm imported before first paint: {leaked}")
    median, p95, running = asyncio.run(keypress_latency())
    print(
        f"keypress-to-screen latency, 16 stages streaming: p50 {median * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms (target p95 < 50 ms; {running} stages still streaming at the end)"
    )
    current, peak, mounted, elapsed = asyncio.run(transcript_memory())
    print(
        f"memory after 10,000-message transcript: {current:.1f} MB live, {peak:.1f} MB peak "
        f"(tracemalloc), {mounted} blocks mounted, {elapsed:.1f} s to append"
    )


if __name__ == "__main__":
    main()
