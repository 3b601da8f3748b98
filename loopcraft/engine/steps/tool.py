"""The ``tool`` step: a durable side effect, run until it succeeds once; its JSON result replays."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any

from loopcraft.engine.journal import StepRow
from loopcraft.engine.steps.protocol import Runtime, Scope, idempotency_key, run_step
from loopcraft.engine.tasks import StageFailure


async def run_tool(
    rt: Runtime,
    scope: Scope,
    pos: str,
    key: str,
    name: str,
    fn: Callable[[], Any],
    retries: int,
    timeout: float | None,
) -> Any:
    async def attempt() -> Any:
        if inspect.iscoroutinefunction(fn):
            return await fn()
        result = await asyncio.to_thread(fn) if timeout is not None else fn()
        return await result if inspect.isawaitable(result) else result

    async def body(row: StepRow) -> Any:
        token = idempotency_key.set(f"{rt.run_id}:{key}")
        try:
            for index in range(retries + 1):
                row.attempts += 1
                try:
                    value = await asyncio.wait_for(attempt(), timeout) if timeout else await attempt()
                    break
                except TimeoutError:
                    if index == retries:
                        raise StageFailure(
                            f"ctx.tool {name!r} timed out after {timeout:g}s ({retries + 1} attempt(s))"
                        ) from None
                except Exception:
                    if index == retries:
                        raise
                await asyncio.sleep(min(2.0, 0.05 * 2**index))
        finally:
            idempotency_key.reset(token)
        try:
            return json.loads(json.dumps(value))
        except (TypeError, ValueError) as exc:
            raise StageFailure(
                f"ctx.tool {name!r} returned a value that cannot be journaled as JSON ({exc})"
            ) from None

    return await run_step(rt, scope, pos, key, "tool", name, body)
