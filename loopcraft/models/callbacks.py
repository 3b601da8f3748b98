"""Calling a caller's callback that may be a plain function or a coroutine function."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def deliver(callback: Callable[[T], Awaitable[None] | None] | None, item: T) -> None:
    """Pass ``item`` to a sync or async ``callback`` (no-op without one), awaiting it when async."""
    if callback is None:
        return
    outcome = callback(item)
    if inspect.isawaitable(outcome):
        await outcome
