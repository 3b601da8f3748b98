"""Running one workflow task: the :class:`TaskSpec`, the :class:`TaskRunner` seam to the agent,
prompt assembly (``previous``, ``reads``), structured output with corrective re-prompts, and
output handling (``output``, ``output_mode``, ``max_output``)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ValidationError

from loopcraft.engine.artifacts import RunFiles
from loopcraft.engine.budgets import as_budget_key
from loopcraft.engine.results import StageResult
from loopcraft.errors import LoopcraftError
from loopcraft.models.scripted import EXHAUSTED_MARK
from loopcraft.models.types import Usage

MAX_CORRECTIONS = 3
SCRIPTED = "scripted/"
CORRECTION_PREFIX = "Your answer did not match the schema:"


@dataclass
class TaskSpec:
    """Everything ``ctx.task`` accepts, as data (``ctx.spec`` builds one for ``parallel``/``chain``)."""

    name: str
    prompt: str | None = None
    context: Literal["fresh", "fork"] | str = "fresh"
    fork_from: str | None = None  # a session path or stage key to fork; default the last task's
    model: str | None = None
    effort: str | None = None  # off … max, for models whose string gives none
    fallback_models: list[str] | None = None
    tools: list[str] | None = None
    exclude_tools: list[str] | None = None
    schema: type[BaseModel] | None = None
    output: str | None = None
    output_mode: Literal["inline", "file-only"] = "inline"
    reads: list[str] = field(default_factory=list)
    previous: list[str] | str | None = None
    max_output: int | None = None
    worktree: bool = False
    keep_worktree: bool = False  # worktree=True: leave the folder in place when the stage ends
    workspace: str | None = None  # run in this folder (e.g. a loop's own worktree) instead of the run's
    worktree_base: str | None = None  # worktree=True: the branch or commit it starts from (default HEAD)
    budget: dict[str, Any] | None = None
    skills: list[str] | None = None  # preloaded into the first prompt; an unknown name fails the stage
    memory: bool = True  # AGENTS.md / CLAUDE.md in the system prompt
    system: str | None = None
    permissions: str | None = None
    # Extra permission rules for this stage (``{"tool", "pattern", "action"}``), matched after the
    # config's, so they win: e.g. deny ``write``/``edit`` everywhere but a few globs.
    permission_rules: list[dict[str, str]] | None = None
    # a grant: protected paths (workspace-relative, globs allowed) this stage's file tools and
    # sandboxed shell may write, and network for its shell (None: ``agent.sandbox_network``)
    allow_paths: list[str] | None = None
    sandbox_network: bool | None = None

    def __post_init__(self) -> None:
        if self.allow_paths is not None:
            self.allow_paths = grant_paths(self.name, self.allow_paths)
        if self.sandbox_network is not None and not isinstance(self.sandbox_network, bool):
            raise LoopcraftError(
                f"stage {self.name!r}: sandbox_network must be True or False, got {self.sandbox_network!r}"
            )

    @property
    def grants(self) -> list[str]:
        """The stage's grant as shown in the graph: its granted paths, then ``network``."""
        return [*(self.allow_paths or []), *(["network"] if self.sandbox_network else [])]

    def with_previous(self, text: str) -> TaskSpec:
        prev = [self.previous] if isinstance(self.previous, str) else list(self.previous or [])
        return replace(self, previous=[*prev, text])


def grant_paths(stage: str, paths: Any) -> list[str]:
    """``allow_paths`` checked: a list of workspace-relative paths (no ``..``, not absolute),
    normalised (``./x`` is ``x``); anything else is a one-line error naming the stage."""
    if isinstance(paths, str) or not isinstance(paths, list | tuple):
        raise LoopcraftError(
            f'stage {stage!r}: allow_paths must be a list of paths, e.g. allow_paths=["scripts/release.sh"]'
        )
    found: list[str] = []
    for raw in paths:
        text = raw.strip() if isinstance(raw, str) else ""
        parts = PurePosixPath(text).parts
        if not text or text.startswith(("/", "~")) or ".." in parts or "\0" in text:
            raise LoopcraftError(
                f"stage {stage!r}: allow_paths entry {raw!r} must be a path inside the workspace, "
                "relative to it, without `..`"
            )
        found.append(PurePosixPath(*parts).as_posix())
    return found


class StageFailure(LoopcraftError):
    """A stage ended without a usable result; ``run_status`` is what the run becomes if uncaught."""

    exit_code = 1

    def __init__(self, message: str, *, run_status: str = "failed") -> None:
        super().__init__(message)
        self.run_status = run_status


@dataclass
class TaskOutcome:
    """What one agent run (one prompt to completion) produced."""

    text: str
    status: str = "completed"  # completed | budget_exceeded | blocked | interrupted | failed
    reason: str = ""
    usage: Usage = field(default_factory=Usage)  # the stage session's total so far
    model: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    limit: Any = None  # blocked by a rate or usage limit: its LimitHit (models, reset time)


@dataclass
class TaskRequest:
    run_id: str
    key: str
    name: str
    workspace: Path
    session_path: Path
    model: str
    fallback_models: list[str]
    tools: list[str] | None = None
    exclude_tools: list[str] | None = None
    fork_from: Path | None = None
    budget: dict[str, Any] | None = None
    permissions: str | None = None
    permission_rules: list[dict[str, str]] | None = None
    system: str | None = None
    skills: list[str] | None = None
    memory: bool = True
    on_event: Callable[[Any], Any] | None = None
    safe_point: Callable[[], Awaitable[None]] | None = None  # run control: pauses wait here
    shared_budget: Any = None  # the run's budget (an agent Budget every stage charges)
    guard: Callable[[], None] | None = None  # raises once the run's lease is lost (fencing transcript writes)
    # Confirms with the journal that this process still owns the run (raises LeaseLost otherwise);
    # awaited before each mutating tool of the stage, so a run taken over makes no more side effects.
    lease_check: Callable[[], Awaitable[None]] | None = None
    allow_paths: list[str] = field(default_factory=list)  # the stage's grant (see TaskSpec)
    sandbox_network: bool | None = None


class TaskSession(Protocol):
    """One agent session of a stage: started fresh or reopened from its transcript."""

    @property
    def started(self) -> bool: ...  # a prompt was already given (a resumed session)

    @property
    def corrections(self) -> int: ...  # schema corrective prompts already sent

    async def run(self, prompt: str | None) -> TaskOutcome: ...  # None: continue where it stopped

    def steer(self, text: str) -> None: ...

    def follow_up(self, text: str) -> None: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


class DelegatingSession:
    """A :class:`TaskSession` that wraps another and hands every call on to it (``inner``): the base
    of session wrappers, which override only what they change (run control, limit waits, one prompt of
    a long-lived stage)."""

    def __init__(self, inner: TaskSession) -> None:
        self.inner = inner

    @property
    def started(self) -> bool:
        return self.inner.started

    @property
    def corrections(self) -> int:
        return self.inner.corrections

    async def run(self, prompt: str | None) -> TaskOutcome:
        return await self.inner.run(prompt)

    def steer(self, text: str) -> None:
        self.inner.steer(text)

    def follow_up(self, text: str) -> None:
        self.inner.follow_up(text)

    def interrupt(self) -> None:
        self.inner.interrupt()

    def close(self) -> None:
        self.inner.close()


class TaskRunner(Protocol):
    """Opens agent sessions for stages (the real one binds :class:`loopcraft.agent.loop.Agent`)."""

    async def open(self, request: TaskRequest) -> TaskSession: ...


# -- prompt assembly --------------------------------------------------------------------------


def resolve_reads(spec: TaskSpec, files: RunFiles) -> list[Path]:
    """Paths of ``reads``; a missing one fails the stage before any model call."""
    found = []
    for name in spec.reads:
        path = files.resolve_read(name)
        if path is None:
            raise StageFailure(
                f"stage {spec.name!r} cannot start: required file {name!r} does not exist "
                f"(looked in the run's artifacts and the repository)"
            )
        found.append(path)
    return found


@functools.lru_cache(maxsize=256)
def schema_text(schema: type[BaseModel]) -> str:
    """A schema's JSON schema as text (computed once per model class: loops ask for it every turn)."""
    return json.dumps(schema.model_json_schema())


def build_prompt(spec: TaskSpec, reads: list[Path]) -> str:
    parts = [spec.prompt or f"Carry out the stage {spec.name!r}."]
    if reads:
        listed = "\n".join(f"- {p}" for p in reads)
        parts.append(f"Read these files before you answer (use the read tool):\n{listed}")
    previous = [spec.previous] if isinstance(spec.previous, str) else list(spec.previous or [])
    for index, text in enumerate(previous, 1):
        label = "Previous stage output" if len(previous) == 1 else f"Previous stage output {index}"
        parts.append(f"{label}:\n{text}")
    if spec.schema is not None:
        schema = schema_text(spec.schema)
        parts.append(f"Reply with only a JSON object matching this JSON schema, no prose:\n{schema}")
    return "\n\n".join(parts)


# -- structured output ------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_structured(text: str, schema: type[BaseModel]) -> BaseModel:
    """The final text as ``schema``: the whole text, a fenced block, or the outermost braces."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    error: Exception | None = None
    for candidate in candidates:
        try:
            return schema.model_validate_json(candidate)
        except ValidationError as exc:
            error = exc
    raise ValueError(_schema_error(error) if error else "the answer is empty")


def _schema_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        return f"{loc}: {err['msg']}" if loc else err["msg"]
    return str(exc)


def correction_prompt(error: str) -> str:
    return (
        f"{CORRECTION_PREFIX} {error}. Reply with only JSON that matches the schema, "
        "with no prose and no code fences."
    )


# -- the whole task -----------------------------------------------------------------------------


def _outcome_failure(spec: TaskSpec, outcome: TaskOutcome) -> StageFailure:
    status = {"budget_exceeded": "budget_exceeded", "blocked": "blocked"}.get(outcome.status, "failed")
    reason = f": {as_budget_key(outcome.reason, spec.budget or ())}" if outcome.reason else ""
    return StageFailure(f"stage {spec.name!r} ended {outcome.status}{reason}", run_status=status)


def _unscripted(spec: TaskSpec, outcome: TaskOutcome) -> StageFailure | None:
    """A scripted model past the end of its script for this stage can never give the structured
    output: one line saying what to do, instead of corrective re-prompts answered the same way."""
    model = outcome.model or ""
    if not model.startswith(SCRIPTED) or EXHAUSTED_MARK not in outcome.text or spec.schema is None:
        return None
    return StageFailure(
        f"stage {spec.name!r} needs structured output ({spec.schema.__name__}) and the offline "
        f"{model} has no scripted answer for it: use a real model (--model PROVIDER/MODEL) or "
        'script one (README "The scripted model")'
    )


async def run_agent_task(spec: TaskSpec, session: TaskSession, prompt: str) -> tuple[TaskOutcome, Any, Usage]:
    """Drive the session to a final answer (schema-checked); returns outcome, structured, total usage."""
    outcome = await session.run(None if session.started else prompt)
    usage = outcome.usage
    if outcome.status != "completed":
        raise _outcome_failure(spec, outcome)
    if spec.schema is None:
        return outcome, None, usage
    corrections = session.corrections
    while True:
        unscripted = _unscripted(spec, outcome)
        if unscripted is not None:
            raise unscripted
        try:
            return outcome, parse_structured(outcome.text, spec.schema), usage
        except ValueError as exc:
            if corrections >= MAX_CORRECTIONS:
                raise StageFailure(
                    f"stage {spec.name!r} gave no valid structured output after "
                    f"{MAX_CORRECTIONS} corrections: {exc}"
                ) from None
            corrections += 1
            outcome = await session.run(correction_prompt(str(exc)))
            usage = outcome.usage
            if outcome.status != "completed":
                raise _outcome_failure(spec, outcome) from None


def shape_output(spec: TaskSpec, text: str, files: RunFiles, default_max: int) -> tuple[str, list[Path]]:
    """Apply ``output``/``output_mode``/``max_output``: returned text plus the files written."""
    written: list[Path] = []
    if spec.output:
        path = files.write_artifact(spec.output, text)
        written.append(path)
        if spec.output_mode == "file-only":
            return (
                f"[stage {spec.name!r} wrote its output ({len(text)} characters) to {path}; "
                "read that file for the content]"
            ), written
    limit = spec.max_output or default_max
    if len(text) > limit:
        name = spec.output or f"{spec.name}.overflow.md"
        path = written[0] if written else files.write_artifact(name, text)
        if not written:
            written.append(path)
        text = (
            text[:limit] + f"\n\n[output cut at {limit} of {len(text)} characters; "
            f"the full text is in {path}]"
        )
    return text, written


def stage_result(
    outcome: TaskOutcome, text: str, structured: Any, usage: Usage, written: list[Path], session_path: Path
) -> StageResult:
    return StageResult(
        text=text,
        structured=structured,
        artifacts=[str(p) for p in written],
        usage=usage,
        model=outcome.model,
        attempts=outcome.attempts,
        status="completed",
        session_path=str(session_path),
    )
