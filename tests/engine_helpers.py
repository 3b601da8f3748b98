"""Shared helpers for the engine's integration tests: a model client that dies on a chosen call, standing in
for the process crashing in the middle of a run, and a helper that starts a run and lets it crash so."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopcraft.config import Config
from loopcraft.engine.definition import Workflow
from loopcraft.engine.service import Engine
from loopcraft.models.litellm_client import LiteLLMClient
from loopcraft.models.types import CompletionRequest, CompletionResult, DeltaCallback


class Crash(BaseException):
    """Stands in for the process dying: a BaseException, so no ``except Exception`` in the engine stops it."""


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


async def crashed_run(root: Path, config: Config, wf: Workflow, crash_on_call: int) -> tuple[Engine, str]:
    """Start ``wf`` on an engine whose model client dies on call ``crash_on_call``, wait for the Crash
    to surface, and return the engine (still open: the caller closes it as it needs) and the run id."""
    engine = await Engine.open(root, config, client=CrashingClient(LiteLLMClient(config), crash_on_call))
    engine.register(wf)
    run_id = await engine.start(wf.name, {})
    with pytest.raises(Crash):
        await engine.wait(run_id)
    return engine, run_id
