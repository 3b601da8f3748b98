"""Test doubles for the engine's tests: a scripted :class:`TaskRunner` standing in for the agent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopcraft.config import Config
from loopcraft.engine.service import Engine
from loopcraft.engine.tasks import TaskOutcome, TaskRequest
from loopcraft.models.types import Usage

Answer = str | Callable[[str | None], str] | BaseException


@dataclass
class FakeSession:
    runner: FakeRunner
    request: TaskRequest
    prompts: list[str | None] = field(default_factory=list)
    started: bool = False  # a fake session never has a transcript to resume
    corrections: int = 0

    async def run(self, prompt: str | None) -> TaskOutcome:
        self.prompts.append(prompt)
        self.runner.calls.append((self.request.name, prompt))
        answers = self.runner.answers.get(self.request.name, ["ok:" + self.request.name])
        index = min(len(self.prompts) - 1, len(answers) - 1)
        answer = answers[index]
        if isinstance(answer, BaseException):
            raise answer
        text = answer(prompt) if callable(answer) else answer
        return TaskOutcome(text=text, usage=Usage(10, 5, cost_usd=0.001), model=self.request.model)

    def steer(self, text: str) -> None: ...
    def follow_up(self, text: str) -> None: ...
    def interrupt(self) -> None: ...
    def close(self) -> None: ...


@dataclass
class FakeRunner:
    """Answers by stage name: a list of texts (one per ``run`` call; the last one repeats)."""

    answers: dict[str, list[Answer]] = field(default_factory=dict)
    calls: list[tuple[str, str | None]] = field(default_factory=list)
    requests: list[TaskRequest] = field(default_factory=list)

    async def open(self, request: TaskRequest) -> FakeSession:
        self.requests.append(request)
        return FakeSession(self, request)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


async def open_engine(root: Path, runner: Any = None, config: Config | None = None, **kw: Any) -> Engine:
    return await Engine.open(
        root, config or Config(model="scripted/test"), runner=runner or FakeRunner(), **kw
    )
