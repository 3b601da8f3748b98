"""The ``parallel`` step: specs and awaitables run concurrently (bounded), results in order."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any

from loopcraft.engine.events import StageAdded
from loopcraft.engine.journal import StepRow
from loopcraft.engine.names import segment_name
from loopcraft.engine.steps.protocol import (
    Runtime,
    Scope,
    branch_parents,
    check_step,
    recorded_error,
    run_structural,
)
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
        branches: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            if isinstance(item, TaskSpec):
                cpos, ckey = inner.reserve("task", item.name)
                if fail_fast:
                    _raise_recorded_failure(rt, cpos, ckey, item.name)
                jobs.append(run_task(rt, scope, cpos, ckey, item, parents=parents))
                branches.append({"key": ckey, "name": item.name, "kind": "task"})
            elif inspect.isawaitable(item):
                jobs.append(item)
                branches.append(_awaitable_branch(item, index))
            else:
                raise LoopcraftError(f"ctx.parallel: {item!r} is neither a ctx.spec(...) nor an awaitable")
        await _record_branches(rt, row, {"branches": branches, "concurrency": max(1, limit)})

        failed: list[BaseException] = []  # fail_fast: once a branch failed, no other one starts

        async def limited(job: Awaitable[Any]) -> Any:
            try:
                async with semaphore:
                    if failed:
                        raise asyncio.CancelledError
                    if not isinstance(job, asyncio.Future):  # a ctx call: after the parallel's parents
                        branch_parents.set((scope, parents))
                    try:
                        return await job
                    except Exception as exc:
                        if fail_fast:
                            failed.append(exc)
                        raise
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


async def _record_branches(rt: Runtime, row: StepRow, info: dict[str, Any]) -> None:
    """Journal the group's branches (as the parallel step's output: a structural step's output is
    never replayed) and name the group to listeners, so a graph shows branches not started yet as
    queued and the group as ``parallel · 3 branches · 2 at a time``."""
    if row.output != info:
        row.output = info
        await rt.journal.finish_step(row)
    rt.emit(StageAdded(rt.run_id, row.key, row.name, "parallel", list(row.parents), info=info))


def _awaitable_branch(item: Any, index: int) -> dict[str, Any]:
    """A branch given as an awaitable of another ``ctx`` call: its step key, kind and name read from
    the (not yet started) step coroutine's arguments; unnamed when it is some other awaitable."""
    key = _reserved_key(item)
    if key is None:
        return {"key": None, "name": f"branch {index + 1}", "kind": "task"}
    segment = key.rsplit("/", 1)[-1]
    kind = segment.split(":", 2)[1] if segment.count(":") else "task"
    return {"key": key, "name": segment_name(segment) or kind, "kind": kind}


def _reserved_key(item: Any, depth: int = 0) -> str | None:
    """The step key a not-yet-started ``ctx`` call coroutine reserved, looking through wrappers that
    take the call as an argument (``as_verdict(ctx.task(...))``): a coroutine whose locals hold it."""
    if depth > 4 or not inspect.iscoroutine(item) or inspect.getcoroutinestate(item) != inspect.CORO_CREATED:
        return None
    local = inspect.getcoroutinelocals(item)
    found = local.get("key")
    if isinstance(found, str):
        return found
    return next((k for v in local.values() if (k := _reserved_key(v, depth + 1)) is not None), None)


def _raise_recorded_failure(rt: Runtime, pos: str, key: str, name: str) -> None:
    """Fail fast on replay before launching siblings when a branch's failure is already recorded."""
    row = check_step(rt, pos, key, "task", name)
    if row is not None and row.status == "failed":
        raise recorded_error(row)
