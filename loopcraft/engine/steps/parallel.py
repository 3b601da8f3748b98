"""The ``parallel`` step: specs and awaitables run concurrently (bounded), results in order."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any

from loopcraft.engine.journal import StepRow
from loopcraft.engine.steps.protocol import Runtime, Scope, check_step, recorded_error, run_structural
from loopcraft.engine.steps.task import run_task
from loopcraft.engine.tasks import TaskSpec
from loopcraft.errors import LoopcraftError


async def run_parallel(
    rt: Runtime, scope: Scope, pos: str, key: str, items: list[Any], concurrency: int | None, fail_fast: bool
) -> list[Any]:
    limit = concurrency or rt.config.engine.default_concurrency
    semaphore = asyncio.Semaphore(max(1, limit))

    async def body(row: StepRow) -> list[Any]:
        inner = Scope(key, scope.depth, 0)
        parents = list(scope.frontier)
        jobs: list[Awaitable[Any]] = []
        for item in items:
            if isinstance(item, TaskSpec):
                cpos, ckey = inner.reserve("task", item.name)
                if fail_fast:
                    _raise_recorded_failure(rt, cpos, ckey, item.name)
                jobs.append(run_task(rt, scope, cpos, ckey, item, parents=parents))
            elif inspect.isawaitable(item):
                jobs.append(item)
            else:
                raise LoopcraftError(f"ctx.parallel: {item!r} is neither a ctx.spec(...) nor an awaitable")

        async def limited(job: Awaitable[Any]) -> Any:
            try:
                async with semaphore:
                    return await job
            finally:  # cancelled while waiting for a slot: never leave a coroutine unawaited
                if inspect.iscoroutine(job) and inspect.getcoroutinestate(job) == inspect.CORO_CREATED:
                    job.close()

        tasks = [asyncio.ensure_future(limited(job)) for job in jobs]
        if not fail_fast:
            results = await asyncio.gather(*tasks, return_exceptions=True)
            first = next((r for r in results if isinstance(r, BaseException)), None)
            if first is not None:
                raise first
            return list(results)
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    result: list[Any] = await run_structural(rt, scope, pos, key, "parallel", body)
    return result


def _raise_recorded_failure(rt: Runtime, pos: str, key: str, name: str) -> None:
    """Fail fast on replay before launching siblings when a branch's failure is already recorded."""
    row = check_step(rt, pos, key, "task", name)
    if row is not None and row.status == "failed":
        raise recorded_error(row)
