"""What runs and stages return, run/stage states, and the exit code of each final run status."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from loopcraft.engine.names import short_id
from loopcraft.models.types import Usage

RunState = Literal[
    "pending",
    "running",
    "paused",
    "awaiting_input",
    "completed",
    "failed",
    "blocked",
    "needs_human",
    "budget_exceeded",
    "cancelled",
    "killed",
    "crashed",
]
StageState = Literal[
    "pending",
    "running",
    "awaiting_input",
    "paused",
    "completed",
    "failed",
    "skipped",
    "budget_exceeded",  # stopped when the run's budget ran out (re-run on resume)
    "cancelled",  # stopped when the run ended otherwise (re-run on resume)
]

FINAL_STATES = frozenset(
    {"completed", "failed", "blocked", "needs_human", "budget_exceeded", "cancelled", "killed"}
)
EXIT_STATUSES = ("completed", "blocked", "needs_human", "failed", "budget_exceeded", "cancelled")

# Exit codes of `loopcraft run/resume` by the run's final status (documented in the CLI help).
EXIT_CODES: dict[str, int] = {
    "completed": 0,
    "failed": 1,
    # 2: bad input (LoopcraftError default): unknown option, invalid workflow inputs, config error
    "blocked": 3,
    # 4: unknown thing (NotFoundError): workflow, run, stage, prompt
    "needs_human": 5,
    "awaiting_input": 5,
    "budget_exceeded": 6,
    "cancelled": 7,
    "killed": 7,
    "paused": 7,
    "crashed": 8,
    "damaged": 8,  # its journal row cannot be read (`loopcraft doctor --journal`)
    "pending": 8,
    "running": 8,
}


def exit_code_for(status: str) -> int:
    """The process exit code for a run that ended in ``status``."""
    return EXIT_CODES.get(status, 1)


@dataclass
class StageResult:
    """What ``ctx.task`` returns."""

    text: str = ""
    structured: Any = None
    artifacts: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    status: str = "completed"
    session_path: str | None = None
    branch: str | None = None  # worktree=True: the stage's branch (``loopcraft/<run>/<stage>``)
    diff: str | None = None  # worktree=True: the branch's changes as a unified diff
    worktree: str | None = None  # worktree=True, keep_worktree=True: the folder left in place

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["usage"] = self.usage.to_dict()
        structured = self.structured
        if hasattr(structured, "model_dump"):
            data["structured"] = structured.model_dump(mode="json")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], schema: Any = None) -> StageResult:
        structured = data.get("structured")
        if schema is not None and structured is not None:
            structured = schema.model_validate(structured)
        return cls(
            text=data.get("text", ""),
            structured=structured,
            artifacts=list(data.get("artifacts", [])),
            usage=Usage.from_dict(data.get("usage")),
            model=data.get("model"),
            attempts=list(data.get("attempts", [])),
            status=data.get("status", "completed"),
            session_path=data.get("session_path"),
            branch=data.get("branch"),
            diff=data.get("diff"),
            worktree=data.get("worktree"),
        )


@dataclass
class RunInfo:
    id: str
    workflow: str
    status: str
    inputs: dict[str, Any]
    output: Any
    error: str | None
    created: float
    updated: float
    elapsed: float
    usage: Usage
    cost: float
    model: str | None = None
    damage: list[str] = field(default_factory=list)  # status "damaged": what cannot be read

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.status)

    @property
    def short(self) -> str:
        """The run's short handle (accepted everywhere its id is)."""
        return short_id(self.id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["short"] = self.short
        data["usage"] = self.usage.to_dict()
        if not self.damage:
            del data["damage"]
        return data
