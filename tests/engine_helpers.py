"""Shared helpers for the engine's integration tests: a model client that dies on a chosen call, standing in
for the process crashing in the middle of a run."""

from __future__ import annotations

from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.types import CompletionRequest, CompletionResult, DeltaCallback


class Crash(BaseException):
    """Stands in for the process dying (a BaseException, so no ``except Exception`` in the engine stops it)."""


class CrashingClient:
    """Passes calls to ``inner`` and raises :class:`Crash` on call number ``crash_on_call`` (1-based)."""

    def __init__(self, inner: LiteLLMClient, crash_on_call: int) -> None:
        self.inner, self.crash_on_call, self.calls = inner, crash_on_call, 0

    async def complete(
        self, request: CompletionRequest, on_delta: DeltaCallback | None = None
    ) -> CompletionResult:
        self.calls += 1
        if self.calls == self.crash_on_call:
            raise Crash()
        return await self.inner.complete(request, on_delta)
