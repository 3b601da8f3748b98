"""Shared checks for the model-client tests (no tests here)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from loopcraft.models.types import CompletionResult, Delta, DeltaCallback


async def cancel_mid_stream(start: Callable[[DeltaCallback], Awaitable[CompletionResult]]) -> list[Delta]:
    """Start a call with ``start(on_delta)``, cancel it at its first delta, check that the
    cancellation lands within a second; the deltas that arrived."""
    got: list[Delta] = []
    streaming = asyncio.Event()

    def on_delta(delta: Delta) -> None:
        got.append(delta)
        streaming.set()

    task = asyncio.create_task(start(on_delta))
    await asyncio.wait_for(streaming.wait(), 30)
    loop = asyncio.get_running_loop()
    cancelled_at = loop.time()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert loop.time() - cancelled_at < 1.0
    return got
