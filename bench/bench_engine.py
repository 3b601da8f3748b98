"""Engine benchmarks: overhead per durable step, resume time for a 10,000-step run, and 200
parallel scripted stages at concurrency 50 against the ideal wall time."""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from loopcraft import Context, workflow
from loopcraft.config import Config
from loopcraft.engine.service import Engine
from loopcraft.engine.tasks import TaskOutcome, TaskRequest

NOOP_STEPS = 2_000
RESUME_STEPS = 10_000
PARALLEL_STAGES = 200
CONCURRENCY = 50


class _InstantSession:
    started = False
    corrections = 0

    async def run(self, prompt: str | None) -> TaskOutcome:
        return TaskOutcome(text="ok")

    def steer(self, text: str) -> None: ...
    def follow_up(self, text: str) -> None: ...
    def interrupt(self) -> None: ...
    def close(self) -> None: ...


class InstantRunner:
    """A task runner whose agent answers at once: what is left is the engine's own cost."""

    async def open(self, request: TaskRequest) -> _InstantSession:
        return _InstantSession()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def step_overhead(root: Path) -> dict[str, float]:
    tool_times: list[float] = []
    task_times: list[float] = []

    @workflow(name="noop")
    async def noop(ctx: Context) -> int:
        for i in range(NOOP_STEPS):
            t0 = time.perf_counter()
            await ctx.tool(f"noop-{i}", lambda: None)
            tool_times.append(time.perf_counter() - t0)
        for i in range(NOOP_STEPS // 4):
            t0 = time.perf_counter()
            await ctx.task(f"task-{i}", prompt="x")
            task_times.append(time.perf_counter() - t0)
        return len(tool_times)

    engine = await Engine.open(root, Config(model="scripted/none"), runner=InstantRunner())
    engine.register(noop)
    await engine.run("noop", {})
    await engine.close()
    return {
        "tool_p50_ms": statistics.median(tool_times) * 1e3,
        "tool_p95_ms": _percentile(tool_times, 0.95) * 1e3,
        "task_p50_ms": statistics.median(task_times) * 1e3,
        "task_p95_ms": _percentile(task_times, 0.95) * 1e3,
    }


async def resume_time(root: Path) -> dict[str, float]:
    state = {"fail": True}

    @workflow(name="long")
    async def long(ctx: Context) -> int:
        for i in range(RESUME_STEPS):
            await ctx.tool(f"s{i}", lambda: 1)
        if state["fail"]:
            raise RuntimeError("stop before the end")
        return RESUME_STEPS

    engine = await Engine.open(root, Config(model="scripted/none"), runner=InstantRunner())
    engine.register(long)
    t0 = time.perf_counter()
    info = await engine.run("long", {})
    record = time.perf_counter() - t0
    await engine.close()
    state["fail"] = False
    t0 = time.perf_counter()
    engine = await Engine.open(root, Config(model="scripted/none"), runner=InstantRunner())
    engine.register(long)
    resumed = await engine.resume(info.id)
    elapsed = time.perf_counter() - t0
    await engine.close()
    assert resumed.status == "completed", resumed.error
    return {"record_s": record, "resume_s": elapsed}


async def parallel_stages(root: Path, *, direct: bool = False) -> dict[str, float]:
    """200 scripted stages at concurrency 50; ``direct`` plays the script in-process (no litellm),
    which leaves the engine's and the agent's own cost."""
    from loopcraft.models.scripted import Script, Turn, register_script

    pace, chunk, text = 0.05, 10, "x" * 40
    register_script("bench", Script(pace=pace, chunk_size=chunk, default=[Turn(text=text)]))
    stage_time = math.ceil(len(text) / chunk) * pace

    @workflow(name="fan")
    async def fan(ctx: Context) -> int:
        results = await ctx.parallel(
            *[ctx.spec(f"s{i}", prompt="go") for i in range(PARALLEL_STAGES)], concurrency=CONCURRENCY
        )
        return len(results)

    config = Config(model="scripted/bench")
    runner = None
    if direct:
        from bench.bench_agent import _DirectScriptClient
        from loopcraft.engine.agent_runner import AgentTaskRunner

        runner = AgentTaskRunner(config, client=_DirectScriptClient())
    engine = await Engine.open(root, config, runner=runner)
    engine.register(fan)
    from loopcraft.models.litellm_loader import load_litellm

    load_litellm()  # import cost is not the engine's
    t0 = time.perf_counter()
    info = await engine.run("fan", {})
    wall = time.perf_counter() - t0
    await engine.close()
    assert info.status == "completed", info.error
    ideal = math.ceil(PARALLEL_STAGES / CONCURRENCY) * stage_time
    return {"wall_s": wall, "ideal_s": ideal, "ratio": wall / ideal}


def _run(fn: Any) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            return asyncio.run(fn(Path(tmp)))
        finally:
            os.chdir(cwd)


def main() -> None:
    over = _run(step_overhead)
    print(f"engine_step_overhead_p50_ms (ctx.tool no-op, target < 1): {over['tool_p50_ms']:.3f}")
    print(f"engine_step_overhead_p95_ms (ctx.tool no-op): {over['tool_p95_ms']:.3f}")
    print(f"engine_task_overhead_p50_ms (instant agent): {over['task_p50_ms']:.3f}")
    res = _run(resume_time)
    print(f"engine_record_{RESUME_STEPS}_steps_s: {res['record_s']:.2f}")
    print(f"engine_resume_{RESUME_STEPS}_steps_s (target < 2): {res['resume_s']:.3f}")
    par = _run(parallel_stages)
    print(f"engine_parallel_{PARALLEL_STAGES}_at_{CONCURRENCY}_wall_s: {par['wall_s']:.2f}")
    print(f"engine_parallel_{PARALLEL_STAGES}_at_{CONCURRENCY}_ideal_s: {par['ideal_s']:.2f}")
    print(f"engine_parallel_wall_over_ideal: {par['ratio']:.2f}")
    own = _run(lambda root: parallel_stages(root, direct=True))
    print(f"engine_parallel_{PARALLEL_STAGES}_at_{CONCURRENCY}_no_litellm_wall_s: {own['wall_s']:.2f}")
    print(f"engine_parallel_no_litellm_wall_over_ideal: {own['ratio']:.2f}")


if __name__ == "__main__":
    main()
