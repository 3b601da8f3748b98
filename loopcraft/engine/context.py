"""``Context``: the object a workflow function receives. Every ``ctx.*`` call is a durable step.

Step keys are reserved synchronously when a method is *called* (not when its result is
awaited), so ``asyncio.gather(ctx.task(...), ctx.task(...))`` gets the same keys on every
replay. The work itself is done by the step kinds in :mod:`loopcraft.engine.steps`, against the
execution's :class:`~loopcraft.engine.steps.protocol.Runtime` seam.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel

from loopcraft.engine.budgets import check_budget
from loopcraft.engine.events import LoopNote
from loopcraft.engine.results import EXIT_STATUSES, StageResult
from loopcraft.engine.stats import parse_age
from loopcraft.engine.steps.chain import run_chain
from loopcraft.engine.steps.check import run_check
from loopcraft.engine.steps.gate import run_prompt
from loopcraft.engine.steps.merge import run_merge
from loopcraft.engine.steps.nested import run_nested
from loopcraft.engine.steps.parallel import run_parallel
from loopcraft.engine.steps.protocol import Runtime, Scope, WorkflowExit, idempotency_key
from loopcraft.engine.steps.score import run_score
from loopcraft.engine.steps.stage import LiveStage, live_stage
from loopcraft.engine.steps.task import run_task
from loopcraft.engine.steps.tool import run_tool
from loopcraft.engine.tasks import TaskSpec
from loopcraft.engine.verify import CheckResult, Ledger
from loopcraft.engine.worktrees import STRATEGIES
from loopcraft.errors import LoopcraftError

if TYPE_CHECKING:
    from loopcraft.engine.definition import Workflow
    from loopcraft.engine.traces import TracePack

__all__ = ["Context", "StageResult", "TaskSpec", "WorkflowExit"]


class UI:
    """Human gates: each call persists a prompt and waits, durably, for its answer."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def _gate(
        self, kind: str, question: str, options: list[Any] | None, default: Any
    ) -> Coroutine[Any, Any, Any]:
        ctx = self._ctx
        pos, key = ctx._scope.reserve("prompt", kind)
        return run_prompt(ctx._exec, ctx._scope, pos, key, kind, question, options, default)

    def input(self, question: str, *, default: str | None = None) -> Coroutine[Any, Any, str]:
        return self._gate("input", question, None, default)

    def confirm(self, question: str, *, default: bool | None = None) -> Coroutine[Any, Any, bool]:
        return self._gate("confirm", question, None, default)

    def select(
        self, question: str, options: Sequence[str], *, default: str | None = None
    ) -> Coroutine[Any, Any, str]:
        return self._gate("select", question, list(options), default)

    def editor(self, question: str, *, default: str | None = None) -> Coroutine[Any, Any, str]:
        return self._gate("editor", question, None, default)


class Context:
    """The durable handle a workflow uses to run stages (see DESIGN.md, "Public workflow API")."""

    def __init__(self, execution: Runtime, scope: Scope, inputs: dict[str, Any]) -> None:
        self._exec = execution
        self._scope = scope
        self.inputs = inputs
        self.ui = UI(self)

    # -- facts -------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self._exec.run_id

    @property
    def workspace(self) -> Path:
        return self._exec.workspace

    @property
    def run_dir(self) -> Path:
        return self._exec.files.dir

    @property
    def artifacts_dir(self) -> Path:
        return self._exec.files.artifacts_dir

    @property
    def depth(self) -> int:
        return self._scope.depth

    @property
    def idempotency_key(self) -> str:
        """Inside a ``ctx.tool`` function: ``<run id>:<step key>``, stable across retries and resumes."""
        key = idempotency_key.get()
        if key is None:
            raise LoopcraftError("ctx.idempotency_key is only available inside a ctx.tool function")
        return key

    # -- stages ------------------------------------------------------------------------------

    def spec(self, name: str, prompt: str | None = None, **options: Any) -> TaskSpec:
        """A task description for ``parallel``/``chain`` (nothing runs, no key is reserved)."""
        return TaskSpec(name=name, prompt=prompt, **options)

    def task(self, name: str, prompt: str | None = None, **options: Any) -> Coroutine[Any, Any, StageResult]:
        """Run one agent session to completion as a durable stage."""
        spec = TaskSpec(name=name, prompt=prompt, **options)
        pos, key = self._scope.reserve("task", name)
        return run_task(self._exec, self._scope, pos, key, spec)

    def chain(self, specs: Sequence[TaskSpec]) -> Coroutine[Any, Any, list[StageResult]]:
        """Run tasks one after another, each given the previous one's output."""
        pos, key = self._scope.reserve("chain", "")
        return run_chain(self._exec, self._scope, pos, key, list(specs))

    def parallel(
        self, *items: TaskSpec | Awaitable[Any], concurrency: int | None = None, fail_fast: bool = True
    ) -> Coroutine[Any, Any, list[Any]]:
        """Run specs (and/or awaitables from other ``ctx`` calls) concurrently; results in order."""
        pos, key = self._scope.reserve("parallel", "")
        return run_parallel(self._exec, self._scope, pos, key, list(items), concurrency, fail_fast)

    def workflow(
        self,
        other: Workflow | str,
        *,
        budget: dict[str, Any] | None = None,
        label: str | None = None,
        **inputs: Any,
    ) -> Coroutine[Any, Any, Any]:
        """Run another workflow as a nested stage of this run. ``budget`` (tokens, dollars, seconds,
        stages) limits that child's stages, parallel ones included, on top of the run's budget.
        ``label`` names this call in the graph and the journal (``turn-2``) instead of the workflow's
        name, so a loop's repeated calls read as its turns."""
        check_budget(budget)
        name = label or (other if isinstance(other, str) else other.name)
        pos, key = self._scope.reserve("workflow", name)
        return run_nested(self._exec, self._scope, pos, key, other, inputs, budget, label=label)

    def merge(self, result: StageResult | str, *, strategy: str = "merge") -> Coroutine[Any, Any, str]:
        """Merge a ``worktree=True`` stage's branch (or a branch named by ``result``, e.g. a loop's
        worktree from ``open_worktree``) into the main work tree's current branch (a durable step:
        replay never merges twice); ``strategy`` is "merge" or "squash". Returns the new HEAD commit.
        A conflict aborts the merge, leaves the main tree as it was and raises an error naming the
        files."""
        branch = result if isinstance(result, str) else result.branch
        if not branch:
            raise LoopcraftError("ctx.merge: the result has no branch; run the task with worktree=True")
        if strategy not in STRATEGIES:
            raise LoopcraftError(
                f"ctx.merge: unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}"
            )
        pos, key = self._scope.reserve("merge", branch)
        return run_merge(self._exec, self._scope, pos, key, branch, strategy)

    def tool(
        self, name: str, fn: Callable[[], Any], *, retries: int = 0, timeout: float | None = None
    ) -> Coroutine[Any, Any, Any]:
        """A durable side effect: ``fn()`` (sync or async) runs until it succeeds once; its JSON result is
        journaled and replayed. ``ctx.idempotency_key`` is available inside ``fn``."""
        pos, key = self._scope.reserve("tool", name)
        return run_tool(self._exec, self._scope, pos, key, name, fn, retries, timeout)

    def check(
        self, name: str, cmd: str, *, timeout: float = 600.0, cwd: str | Path | None = None
    ) -> Coroutine[Any, Any, CheckResult]:
        """An external check as a durable step: ``cmd`` run by the shell in the workspace (or ``cwd``,
        e.g. a stage's worktree); returns a :class:`CheckResult`. A timeout is a failed check."""
        if timeout <= 0:
            raise LoopcraftError(f"ctx.check {name!r}: timeout must be positive, got {timeout}")
        pos, key = self._scope.reserve("check", name)
        return run_check(self._exec, self._scope, pos, key, name, cmd, timeout, Path(cwd) if cwd else None)

    def score(self, name: str, value: float) -> Coroutine[Any, Any, float]:
        """Record a numeric metric on the run (durable, once per name; ``loopcraft stats`` reads it)."""
        pos, key = self._scope.reserve("score", name)
        return run_score(self._exec, self._scope, pos, key, name, value)

    def traces(
        self,
        workflow: str,
        *,
        failed: int = 5,
        expensive: int = 2,
        since: str | None = None,
        folder: str = "traces",
    ) -> Coroutine[Any, Any, TracePack]:
        """The data of a trace review, as a durable step: ``workflow``'s stats and the transcripts of
        its ``failed`` most recent unsuccessful runs and ``expensive`` costliest others (``since``: an
        age such as ``7d``), written as files under ``artifacts_dir / folder`` (see
        :mod:`loopcraft.engine.traces`); this run is never among them."""
        from loopcraft.engine.traces import TracePack, collect_traces

        rt = self._exec
        name, source = workflow, None
        if rt.catalog is not None:
            try:
                found = rt.catalog.get(workflow)
                name, source = found.name, found.source
            except LoopcraftError:
                pass  # a workflow no longer defined: its runs can still be reviewed

        async def collect() -> Any:
            cutoff = time.time() - parse_age(since, "since") if since else None
            pack = await collect_traces(
                rt.journal,
                rt.files.root,
                name,
                self.artifacts_dir / folder,
                failed=failed,
                expensive=expensive,
                since=cutoff,
                exclude=self.run_id,
                source=source,
            )
            return pack.model_dump(mode="json")

        pos, key = self._scope.reserve("tool", "traces")
        step = run_tool(rt, self._scope, pos, key, "traces", collect, 0, None)

        async def typed() -> TracePack:
            return TracePack.model_validate(await step)

        return typed()

    def ledger(self, name: str = "ledger.json") -> Ledger:
        """The run's ledger (``ledger.json`` in the run folder); a resumed run continues the same one."""
        run_id = self.run_id

        def note(key: str, kind: str, line: str) -> None:
            self._exec.emit(LoopNote(run_id, key, kind, line))

        return Ledger(self.run_dir / name, on_note=note)

    def stage(self, name: str, **options: Any) -> LiveStage:
        """A long-lived stage: ``await stage.prompt(text)`` as many times as you like; ``steer``/``follow_up``."""
        spec = TaskSpec(name=name, **options)
        pos, key = self._scope.reserve("stage", name)
        return live_stage(self._exec, self._scope, pos, key, spec)

    def exit(self, status: str, reason: str = "") -> NoReturn:
        """End the run now with ``status`` (completed, blocked, needs_human, failed, budget_exceeded, cancelled)."""
        if status not in EXIT_STATUSES:
            raise LoopcraftError(
                f"ctx.exit: unknown status {status!r}; use one of {', '.join(EXIT_STATUSES)}"
            )
        raise WorkflowExit(status, reason)

    def structured(self, result: StageResult, schema: type[BaseModel]) -> BaseModel:
        """``result.structured`` checked to be a ``schema`` instance (a convenience for typed code)."""
        if not isinstance(result.structured, schema):
            raise LoopcraftError(f"stage result has no {schema.__name__} output")
        return result.structured
