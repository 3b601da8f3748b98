"""Test doubles for run-control tests: a task runner whose sessions work in small paced steps,
honour the safe point, interrupts and steering like the real agent does, and charge the run's
shared budget."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopcraft.config import Config, EngineConfig
from loopcraft.engine.service import Engine
from loopcraft.engine.tasks import TaskOutcome, TaskRequest
from loopcraft.models.types import Usage

STEP_USAGE = Usage(100, 10, cost_usd=0.01)


@dataclass
class SteppedSession:
    runner: SteppedRunner
    request: TaskRequest
    steers: list[str] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)
    done_steps: int = 0
    _task: asyncio.Task[Any] | None = None
    _interrupted: bool = False
    _started: bool = False

    @property
    def started(self) -> bool:
        return self._started

    @property
    def corrections(self) -> int:
        return 0

    async def run(self, prompt: str | None) -> TaskOutcome:
        self._started = True
        self._interrupted = False
        steps = self.runner.steps.get(self.request.name, self.runner.default_steps)
        budget = self.request.shared_budget
        while self.done_steps < steps:
            if budget is not None and budget.exceeded():
                return self._outcome("budget_exceeded", f"budget exceeded: {budget.exceeded()}")
            self._task = asyncio.ensure_future(asyncio.sleep(self.runner.pace))
            self.runner.model_calls.append(self.request.name)
            try:
                await self._task
            except asyncio.CancelledError:
                if self._interrupted:
                    self.runner.cancelled.append(self.request.name)
                    return self._outcome("interrupted", "interrupted by the user")
                raise
            self.done_steps += 1
            if budget is not None:
                budget.charge(STEP_USAGE)
            if self.request.safe_point is not None:
                await self.request.safe_point()
        return self._outcome("completed", "")

    def _outcome(self, status: str, reason: str) -> TaskOutcome:
        extra = "".join(f" +steer:{s}" for s in self.steers) + "".join(
            f" +follow:{f}" for f in self.follow_ups
        )
        usage = Usage(STEP_USAGE.input_tokens * self.done_steps, STEP_USAGE.output_tokens * self.done_steps)
        return TaskOutcome(
            text=f"{self.request.name} done{extra}",
            status=status,
            reason=reason,
            usage=usage,
            model=self.request.model,
        )

    def steer(self, text: str) -> None:
        self.steers.append(text)

    def follow_up(self, text: str) -> None:
        self.follow_ups.append(text)

    def interrupt(self) -> None:
        self._interrupted = True
        if self._task is not None:
            self._task.cancel()

    def close(self) -> None: ...


@dataclass
class SteppedRunner:
    """Each stage works ``steps[name]`` (default ``default_steps``) paced steps."""

    steps: dict[str, int] = field(default_factory=dict)
    default_steps: int = 3
    pace: float = 0.02
    model_calls: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    sessions: dict[str, SteppedSession] = field(default_factory=dict)

    async def open(self, request: TaskRequest) -> SteppedSession:
        session = SteppedSession(self, request)
        self.sessions[request.name] = session
        return session


def fast_config(**engine: Any) -> Config:
    values = {"poll_seconds": 0.02, "heartbeat_seconds": 0.2, "lease_seconds": 2.0, **engine}
    return Config(model="scripted/test", engine=EngineConfig(**values))


async def open_control_engine(root: Path, runner: Any = None, config: Config | None = None) -> Engine:
    return await Engine.open(root, config or fast_config(), runner=runner or SteppedRunner())


async def wait_for(predicate: Any, timeout: float = 5.0, step: float = 0.01) -> None:
    """Poll an async or sync predicate until it is true (fails the test on timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)
