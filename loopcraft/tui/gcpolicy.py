"""Garbage collection that stays out of the way of typing.

A full (generation 2) collection walks every long-lived object; with litellm, pydantic
and Textual loaded that is hundreds of thousands of objects and a 100-300 ms stall, every
few seconds while stages stream. The app therefore (1) freezes what startup allocated
(modules, classes, caches: :func:`gc.freeze` moves them out of the collector's view),
(2) turns off automatic full collections, and (3) runs them itself when the keyboard has
been quiet for a moment (and at least every ``max_interval_s`` regardless). Young
generations are still collected automatically, which frees nearly all garbage anyway.
"""

from __future__ import annotations

import gc
import time

NO_AUTOMATIC_FULL_COLLECTIONS = 1_000_000_000


class IdleCollector:
    """Owns the process's GC policy while the app runs; ``tick()`` every half second."""

    def __init__(
        self, *, idle_s: float = 1.0, min_interval_s: float = 10.0, max_interval_s: float = 60.0
    ) -> None:
        self.idle_s = idle_s
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self.last_input = time.monotonic()
        self.last_full = time.monotonic()
        self.full_collections = 0
        self._saved: tuple[int, int, int] | None = None

    def install(self) -> None:
        if self._saved is None:
            self._saved = gc.get_threshold()
            young, middle, _ = self._saved
            gc.set_threshold(young, middle, NO_AUTOMATIC_FULL_COLLECTIONS)
        gc.freeze()

    def freeze(self) -> None:
        """Freeze what exists now (call when a startup phase has finished loading)."""
        if self._saved is not None:
            gc.freeze()

    def uninstall(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None
            gc.unfreeze()

    def touched(self) -> None:
        """The user pressed a key."""
        self.last_input = time.monotonic()

    def due(self, now: float) -> bool:
        since_full = now - self.last_full
        idle = now - self.last_input >= self.idle_s
        return since_full >= self.max_interval_s or (idle and since_full >= self.min_interval_s)

    def tick(self) -> bool:
        """Run a full collection if one is due; True when it ran."""
        now = time.monotonic()
        if self._saved is None or not self.due(now):
            return False
        gc.collect()
        self.last_full = time.monotonic()
        self.full_collections += 1
        return True
