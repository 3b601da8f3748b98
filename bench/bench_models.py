"""Model-client figures: litellm's own cost per call through ``LiteLLMClient.complete``.

The overhead of a call is its wall time plus any work litellm leaves running on the event
loop after ``complete`` returns (it used to schedule its logging callbacks as background
tasks), minus the provider's own time: the scripted model's turn, timed directly on the
same messages. Histories of 10, 100 and 500 messages (tool-call turns), then a 200-turn
conversation whose history grows by one tool turn per call. Target: < 3 ms at 500.
CPU figures count litellm's worker threads too; wall and CPU differ when the machine is busy.

Measured with ``.venv/bin/python -m bench models`` on the 2-core dev VM with two other
CPU-bound jobs running; "before" is this same file run against ``loopcraft/`` of commit
64e37e6 (``git archive 64e37e6 loopcraft | tar -x -C /tmp/before``, then
``PYTHONPATH=/tmp/before python bench_models.py`` from outside the repo). Median of three
interleaved runs each, wall ms per call outside the provider:

    messages               10     100     500   200-turn growing
    before (litellm logs)  18.1   14.8    35.9  16.8
    after                   5.3    5.7     9.8   6.9

Before, litellm's success logging ran as a background task per call: it built a logging
payload, scanned every message for base64, priced the call again and deep-copied the
payload (messages included) to redact it. Now the client stops reading at the usage chunk
(see ``litellm_client._Stream.complete``) and litellm's duplicate pricing is off
(``litellm_loader._skip_litellm_pricing``). What remains is litellm's request path:
normalising every message (copies per call, so it still grows with history), running the
sync ``completion`` in a worker thread, and building the stream's chunk objects.

Issue 17 (same VM, interleaved, medians): 10 messages 3.4 -> 2.7 ms wall, 500 messages 4.5 -> 4.2
ms wall (4.5 -> 3.5 ms CPU): the client sizes the request only when it caps the output (one
``json.dumps`` of the list, not one per message) and skips litellm's MCP gateway check. Also
printed: the first call in a fresh process once litellm is imported (0.45 s of lazy imports, 26
ms after ``warm_litellm``) and bench_engine's 200-stage fan-out through litellm against its ideal.

Memory (tracemalloc, 200 streamed scripted calls on a 100-message history, results dropped,
after a full collection): 6 to 11 B retained per call, no litellm stream wrapper or chunk
(``CustomStreamWrapper``, ``ModelResponseStream``) left alive, so neither the client nor its
``CompletionResult`` keeps a stream. What litellm holds briefly: at the end of the provider
stream it schedules a cache-write task (a no-op without a cache) that references its stream
wrapper, i.e. every chunk and the logging object; about 40 KiB (10 to 500 messages) stay
alive until the event loop next runs, which is the one task "left running" above. The
loopback HTTP path (``openai_compatible`` against tests/fakes/openai_server.py, measured
by hand) keeps none either: about 0.5 KB per call on the client side, with no object type
growing.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import tracemalloc
from typing import Any

HISTORIES = (10, 100, 500)
ROUNDS = 7
CALLS_PER_ROUND = 15
GROWING_TURNS = 200
MEMORY_CALLS = 200
MEMORY_HISTORY = 100
MODEL = "scripted/bench-models"
NOOP_PARAMETERS = {"type": "object", "properties": {"n": {"type": "integer"}}}


def _register() -> None:
    from loopcraft.models.scripted import Script, register_script

    turn = {"text": "Step done, moving on.", "tool_calls": [{"name": "noop", "arguments": {"n": 1}}]}
    register_script(MODEL.split("/", 1)[1], Script.model_validate({"pace": 0, "default": [turn] * 1000}))


def _tool_turn(i: int) -> list[dict[str, Any]]:
    call = {"id": f"call_{i}", "type": "function", "function": {"name": "noop", "arguments": f'{{"n": {i}}}'}}
    return [
        {"role": "assistant", "content": f"step {i}", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"call_{i}", "content": f"noop {i} ok " * 10},
    ]


def history(length: int) -> list[dict[str, Any]]:
    """A system prompt, a user task, then tool turns: ``length`` messages in all."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a careful coding agent. " * 20},
        {"role": "user", "content": "run the benchmark"},
    ]
    i = 0
    while len(messages) < length:
        messages.extend(_tool_turn(i))
        i += 1
    return messages[:length]


async def _drain() -> None:
    """Wait until every other task on the loop (litellm's leftovers) has finished."""
    me = asyncio.current_task()
    while others := [t for t in asyncio.all_tasks() if t is not me and not t.done()]:
        await asyncio.wait(others)


def _request(messages: list[dict[str, Any]]) -> Any:
    from loopcraft.models.types import CompletionRequest, function_tool

    tools = [function_tool("noop", "does nothing", NOOP_PARAMETERS)]
    return CompletionRequest(model=MODEL, messages=messages, tools=tools, stage="bench")


class _Clock:
    """Wall and process-CPU seconds (CPU counts litellm's worker threads too)."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def per_call(self, calls: int) -> tuple[float, float]:
        return (time.perf_counter() - self.wall) / calls, (time.process_time() - self.cpu) / calls


async def _provider_seconds(messages: list[dict[str, Any]], calls: int) -> tuple[float, float]:
    """The scripted model's own time for one turn on ``messages`` (no litellm)."""
    from loopcraft.models.scripted import stream_turn

    clock = _Clock()
    for _ in range(calls):
        async for _chunk in stream_turn(MODEL, messages, {}, {"metadata": {"stage": "bench"}}):
            pass
    return clock.per_call(calls)


async def _call_seconds(client: Any, messages: list[dict[str, Any]], calls: int) -> tuple[float, float, int]:
    """Wall and CPU per call including litellm's leftover tasks; how many tasks it left behind."""
    request = _request(messages)
    await _drain()
    left = 0
    clock = _Clock()
    for _ in range(calls):
        await client.complete(request)
        left += sum(1 for t in asyncio.all_tasks() if not t.done()) - 1
    await _drain()
    return (*clock.per_call(calls), left // calls)


async def overhead_ms(client: Any, length: int) -> tuple[float, float, int]:
    """Median per-call overhead outside the provider at ``length`` messages: wall ms, CPU ms, tasks left."""
    messages = history(length)
    await _call_seconds(client, messages, 5)  # warm up this shape
    gc.collect()
    walls, cpus, left = [], [], 0
    for _ in range(ROUNDS):
        wall, cpu, left = await _call_seconds(client, messages, CALLS_PER_ROUND)
        provider_wall, provider_cpu = await _provider_seconds(messages, CALLS_PER_ROUND)
        walls.append(wall - provider_wall)
        cpus.append(cpu - provider_cpu)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000, left


async def growing_ms(client: Any, turns: int) -> tuple[float, float]:
    """Mean per-call overhead over a conversation growing by one tool turn a call: wall ms, CPU ms."""
    messages = history(2)
    gc.collect()
    wall = cpu = 0.0
    for i in range(turns):
        call_wall, call_cpu, _ = await _call_seconds(client, messages, 1)
        provider_wall, provider_cpu = await _provider_seconds(messages, 1)
        wall += call_wall - provider_wall
        cpu += call_cpu - provider_cpu
        messages.extend(_tool_turn(i))
    return wall / turns * 1000, cpu / turns * 1000


def _live_streams() -> int:
    """litellm stream wrappers and streamed chunks still alive (after a full collection)."""
    from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper
    from litellm.types.utils import ModelResponseStream

    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, CustomStreamWrapper | ModelResponseStream))


async def memory(client: Any, length: int, calls: int) -> tuple[float, int, int]:
    """Streamed calls with results dropped: bytes still allocated per call once litellm's leftover
    tasks ran, bytes one call leaves held until the loop runs again, stream objects left alive."""
    request = _request(history(length))
    await client.complete(request)  # warm this shape
    await _drain()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        await client.complete(request)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base  # litellm's cache task still holds its stream
        for _ in range(calls - 1):
            await client.complete(request)
        await _drain()
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return retained / calls, held, _live_streams()


FIRST_CALL_PROBE = """
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[2])
from bench.bench_models import _register, _request, history
from loopcraft.config import Config
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.litellm_loader import load_litellm, warm_litellm

async def main():
    _register()
    litellm = load_litellm()
    if sys.argv[1] == "warm":
        warm_litellm(litellm)
    started = time.perf_counter()
    await LiteLLMClient(Config()).complete(_request(history(10)))
    print(time.perf_counter() - started)

asyncio.run(main())
"""


def first_call_ms(warm: bool, runs: int = 3) -> float:
    """Median ms of the first call in a fresh process once litellm is imported: what litellm
    still loads lazily on it, unless :func:`warm_litellm` (the headless preload) did it first."""
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", FIRST_CALL_PROBE, "warm" if warm else "cold", root],
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(out.stdout.split()[-1]) * 1000)
    return statistics.median(samples)


def parallel_ratio(runs: int = 3) -> tuple[float, float, float]:
    """200 paced scripted stages at concurrency 50 (bench_engine's fan-out) through litellm: median
    wall seconds, the ideal, and their ratio, after litellm is imported and warmed."""
    from bench.bench_engine import _run, parallel_stages
    from loopcraft.models.litellm_loader import load_litellm, warm_litellm

    warm_litellm(load_litellm())
    results = [_run(parallel_stages) for _ in range(runs)]
    wall = statistics.median(r["wall_s"] for r in results)
    ideal = results[0]["ideal_s"]
    return wall, ideal, wall / ideal


async def _run() -> None:
    from loopcraft.config import Config
    from loopcraft.models.litellm_client import LiteLLMClient

    _register()
    client = LiteLLMClient(Config())
    await _call_seconds(client, history(10), 10)  # import litellm, warm its caches
    for length in HISTORIES:
        wall, cpu, left = await overhead_ms(client, length)
        print(
            f"litellm overhead per call outside the provider, {length} messages: {wall:.2f} ms (target < 3 ms at 500)"
        )
        print(f"litellm CPU per call outside the provider, {length} messages: {cpu:.2f} ms")
        print(f"litellm tasks left running after complete(), {length} messages: {left}")
    wall, cpu = await growing_ms(client, GROWING_TURNS)
    span = f"{GROWING_TURNS}-turn growing conversation (2..{2 * GROWING_TURNS} messages)"
    print(f"litellm overhead per call, {span}: {wall:.2f} ms")
    print(f"litellm CPU per call, {span}: {cpu:.2f} ms")
    per_call, held, alive = await memory(client, MEMORY_HISTORY, MEMORY_CALLS)
    what = f"{MEMORY_CALLS} streamed calls, {MEMORY_HISTORY} messages"
    print(f"memory retained per call after {what}: {per_call:.0f} B (tracemalloc, results dropped)")
    print(
        f"memory one call holds until the event loop runs again (litellm's cache task): {held / 1024:.1f} KiB"
    )
    print(f"litellm stream objects alive after {what}: {alive}")


def main() -> None:
    asyncio.run(_run())
    cold, warm = first_call_ms(warm=False), first_call_ms(warm=True)
    print(
        f"first call once litellm is imported: {cold:.0f} ms; after warm_litellm (the headless "
        f"preload does it in its thread): {warm:.0f} ms (median of 3 fresh processes)"
    )
    wall, ideal, ratio = parallel_ratio()
    print(
        f"200 parallel scripted stages at concurrency 50 through litellm: {wall:.2f} s against "
        f"{ideal:.2f} s ideal = {ratio:.2f}x (target < 1.5x; median of 3)"
    )


if __name__ == "__main__":
    main()
