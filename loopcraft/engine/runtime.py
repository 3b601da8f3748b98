"""Executing one run of a workflow: the step protocol (check, run, record), scopes and step keys,
the stage graph's parent tracking, events, and the run's final status.

Replay: a run is re-executed from the top; a step found in the journal returns its recorded
output (or re-raises its recorded error) without running; the first unrecorded step runs for
real. A recorded step whose kind or name differs from the code's is a
:class:`NonDeterminismError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopcraft.config import Config
from loopcraft.engine import worktrees
from loopcraft.engine.artifacts import RunFiles, write_durably
from loopcraft.engine.budgets import (
    RunBudget,
    current_budget,
    enter_budget,
    leave_budget,
    merge_budget,
    nested_budget,
)
from loopcraft.engine.context import Context, WorkflowExit, _idempotency_key
from loopcraft.engine.control import RunControl, RunKilled
from loopcraft.engine.definition import Workflow
from loopcraft.engine.events import (
    EngineEvent,
    EventBus,
    PromptAnswered,
    PromptPending,
    RunStatus,
    StageAdded,
    StageEvent,
    StageStatus,
    UsageEvent,
    is_persisted,
)
from loopcraft.engine.gates import normalize_answer
from loopcraft.engine.graph import GRAPH_KINDS, USAGE_KINDS
from loopcraft.engine.journal import Journal, StepRow
from loopcraft.engine.leases import Lease, LeaseLost, new_owner_id
from loopcraft.engine.results import StageResult
from loopcraft.engine.tasks import (
    CORRECTION_PREFIX,
    StageFailure,
    TaskRequest,
    TaskRunner,
    TaskSession,
    TaskSpec,
    build_prompt,
    resolve_reads,
    run_agent_task,
    shape_output,
    stage_result,
)
from loopcraft.errors import LoopcraftError
from loopcraft.models.types import Usage

if TYPE_CHECKING:
    from loopcraft.engine.discovery import WorkflowCatalog

log = logging.getLogger(__name__)

STAGE_KINDS = GRAPH_KINDS  # steps that are stages: graph nodes, with events and parent edges
# Open steps a run's end settles (a gate awaiting its answer keeps waiting: it can still be answered).
SETTLED_STATES = frozenset({"running", "paused", "budget_exceeded", "cancelled"})
_KEY_UNSAFE = str.maketrans({"/": "_", ":": "_"})


class NonDeterminismError(LoopcraftError):
    """The workflow code no longer makes the calls the journal recorded."""

    exit_code = 1


class StepError(LoopcraftError):
    """A step failed (now or in the recorded past); the same error on every replay."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        name: str = "",
        error_type: str = "",
        run_status: str = "failed",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.error_type = error_type
        self.run_status = run_status


@dataclass
class Scope:
    """A step-key namespace: ``path`` plus a call counter, and the stage-graph frontier."""

    path: str
    depth: int = 0
    counter: int = 0
    frontier: list[str] = field(default_factory=list)

    def reserve(self, kind: str, name: str) -> tuple[str, str]:
        """Synchronously take the next position; returns (position, key)."""
        pos = f"{self.path}/{self.counter}"
        self.counter += 1
        safe = name.translate(_KEY_UNSAFE)
        return pos, f"{pos}:{kind}:{safe}" if safe else f"{pos}:{kind}"

    def child(self, key: str, *, depth: int | None = None, frontier: list[str] | None = None) -> Scope:
        return Scope(key, self.depth if depth is None else depth, 0, list(frontier or []))

    def settle(self, key: str, parents: list[str]) -> None:
        self.frontier = [k for k in self.frontier if k not in parents] + [key]


class LiveStage:
    """A long-lived stage: one agent session prompted several times from workflow code."""

    def __init__(self, execution: Execution, scope: Scope, pos: str, key: str, spec: TaskSpec) -> None:
        self._exec = execution
        self._scope = scope.child(key)
        self.key = key
        self.spec = spec
        self.session: TaskSession | None = None
        # what this stage's earlier prompts recorded (the session's usage is a running total)
        self.charged = Usage()

    def prompt(self, text: str) -> Awaitable[StageResult]:
        pos, key = self._scope.reserve("stage_prompt", self.spec.name)
        return self._exec.run_stage_prompt(self, pos, key, text)

    def steer(self, text: str) -> None:
        if self.session is not None:
            self.session.steer(text)

    def follow_up(self, text: str) -> None:
        if self.session is not None:
            self.session.follow_up(text)

    def close(self) -> None:
        """End the stage's session: no steering or control reaches it any more."""
        if self.session is not None:
            self._exec.live.pop(self.key, None)
            self._exec.control.detach(self.key)
            self.session.close()
            self.session = None


class Execution:
    """One process's execution of one run (fresh or resumed)."""

    def __init__(
        self,
        *,
        journal: Journal,
        bus: EventBus,
        config: Config,
        runner: TaskRunner,
        workspace: Path,
        run_id: str,
        workflow: Workflow,
        inputs: dict[str, Any],
        run_model: str | None,
        catalog: WorkflowCatalog | None = None,
        lease: Lease | None = None,
        budget: dict[str, Any] | None = None,
        stop_at_gates: bool = False,
        raised_budget: dict[str, Any] | None = None,
    ) -> None:
        self.lease = lease or Lease(journal, run_id, new_owner_id(), config.engine.lease_seconds)
        self.journal = _Fenced(journal, self.lease)  # type: ignore[assignment]
        self.control = RunControl(self)
        self.budget = RunBudget(budget)
        self.raised_budget = raised_budget  # limits this resume raised (they lift nested budgets too)
        self.stop_at_gates = stop_at_gates  # headless with no human: a gate ends the run as needs_human
        self.bus = bus
        self.config = config
        self.runner = runner
        self.workspace = workspace
        self.run_id = run_id
        self.workflow = workflow
        self.inputs = inputs
        self.run_model = run_model
        self.catalog = catalog
        self.files = RunFiles(workspace, run_id)
        self.recorded: dict[str, StepRow] = {}
        self.live: dict[str, TaskSession] = {}  # stage key -> running agent session (for control)
        self.usage = Usage()
        self._seq = 0
        self._event_seq = 0
        self._event_buffer: list[tuple[str, int, float, str, dict[str, Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._last_session: Path | None = None
        self._pending_prompts: set[str] = set()
        self._announced: set[str] = set()  # stage keys a StageAdded named in this execution
        self._shown: dict[str, str] = {}  # stage key -> the last status an event gave it
        self.answer_signal = asyncio.Event()

    # -- events ----------------------------------------------------------------------------

    def emit(self, event: EngineEvent) -> None:
        if isinstance(event, StageStatus):
            self._shown[event.key] = event.status
        self.bus.publish(event)
        if is_persisted(event):
            self._event_seq += 1
            self._event_buffer.append(
                (self.run_id, self._event_seq, time.time(), event.type, event.payload())
            )
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.ensure_future(self._flush_events())

    async def _flush_events(self) -> None:
        while self._event_buffer:
            rows, self._event_buffer = self._event_buffer, []
            await self.journal.append_events(rows)

    async def flush(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        await self._flush_events()

    # -- the run ---------------------------------------------------------------------------

    async def execute(self) -> None:
        """Run (or replay) the workflow to its end and record the run's final status."""
        for row in await self.journal.load_steps(self.run_id):
            self.recorded[row.pos] = row
            self._seq = max(self._seq, row.seq)
        self._event_seq = await self.journal.max_event_seq(self.run_id)
        if not self.lease.expires:  # not claimed by the engine yet
            await self.lease.claim()
        heartbeat = asyncio.ensure_future(self._heartbeat())
        pump = asyncio.ensure_future(self.control.pump())
        try:
            await self.control.start(self.recorded.values())
            await self._set_status("running")
            try:
                status, output, error = await self._call_workflow()
            except asyncio.CancelledError:
                if not self.control.killed:
                    raise
                pump.cancel()  # no more commands: a second kill must not cancel the clean-up below
                status, output, error = "killed", None, "killed by the user"
                await self._settle(status)
                await worktrees.discard_killed_run(self.workspace, self.run_id)
            except LeaseLost as exc:
                log.warning("%s", exc)
                return
            else:
                await self._settle(status)
            usage = spent_total(await self.journal.load_steps(self.run_id)).to_dict()
            await self.lease.release(
                status=status, output=output, error=error, usage=usage, finished=time.time()
            )
            self.emit(UsageEvent(self.run_id, None, {}, usage))
            self.emit(RunStatus(self.run_id, status, self.workflow.name, error))
        except BaseException:
            # Stopped abnormally (crash, Engine.close): give the lease up so the run can be
            # resumed at once; its status stays live, so it shows as crashed.
            if not self.lease.lost:
                with contextlib.suppress(Exception):
                    await self.lease.release()
            raise
        finally:
            heartbeat.cancel()
            pump.cancel()
            for session in self.live.values():
                session.close()
            await self.flush()

    async def _call_workflow(self) -> tuple[str, Any, str | None]:
        scope = Scope("root")
        ctx = Context(self, scope, self.inputs)
        try:
            value = await self.workflow.fn(ctx, **self.workflow.call_kwargs(self.inputs))
            output = self.files.store_output("output", self.workflow.validate_output(value))
            return "completed", output, None
        except WorkflowExit as exc:
            return exc.status, None, exc.reason or None
        except RunKilled:
            raise asyncio.CancelledError from None
        except LeaseLost:
            raise  # not the workflow's failure: this process must stop writing (see ``execute``)
        except (StageFailure, StepError) as exc:
            return exc.run_status, None, str(exc)
        except LoopcraftError as exc:
            return "failed", None, str(exc)
        except Exception as exc:
            write_durably(self.files.dir / "error.txt", traceback.format_exc())
            first = (str(exc).splitlines() or [""])[0]
            return "failed", None, f"workflow raised {type(exc).__name__}: {first}"

    async def _settle(self, run_status: str) -> None:
        """The run ended: every step still open gets a final status that says why, and each stopped
        stage keeps the usage it had spent (see :meth:`_keep_spent`), so the run's total is right.

        A killed run's open steps (gates included) fail as killed; otherwise they become
        ``budget_exceeded`` (the run's budget ran out) or ``cancelled``, both re-run on resume; a
        gate still waiting for its answer stays ``awaiting_input``."""
        if run_status == "killed":
            final, message, states = "failed", "the run was killed", None
        else:
            final = "budget_exceeded" if run_status == "budget_exceeded" else "cancelled"
            message = f"stopped when the run ended {run_status}"
            states = SETTLED_STATES
        for fresh in await self.journal.load_steps(self.run_id):
            if fresh.status in ("completed", "failed") or (states is not None and fresh.status not in states):
                continue
            row = self.recorded.get(fresh.pos, fresh)
            row.status, row.finished = final, time.time()
            row.usage = row.usage or fresh.usage
            row.error = {"type": "Killed" if final == "failed" else "Stopped", "message": message}
            row.error["run_status"] = run_status
            await self.journal.finish_step(row)
            if row.kind in STAGE_KINDS and self._shown.get(row.key, fresh.status) != final:
                self._announce(row)
                self.emit(StageStatus(self.run_id, row.key, final, row.model, message))
                if row.usage:
                    self.emit(UsageEvent(self.run_id, row.key, row.usage, self.usage.to_dict()))

    def _announce(self, row: StepRow) -> None:
        """Name a stage to listeners (once per execution): a resumed run's stages keep their names."""
        if row.key not in self._announced:
            self._announced.add(row.key)
            self.emit(StageAdded(self.run_id, row.key, row.name, row.kind, row.parents))

    def _keep_spent(self, row: StepRow, session: Any, base: Usage | None = None) -> Usage | None:
        """A stage stopped without a result (failed, cancelled, budget, kill): keep what its agent spent
        (less ``base``, what the session's earlier prompts recorded); returns the session's total."""
        total = session.spent() if hasattr(session, "spent") else None
        if total is None:
            return None
        spent = total - base if base is not None else total
        if spent.total_tokens or spent.cost_usd:
            row.usage = spent.to_dict()
            self.usage = self.usage + spent
        return total

    async def _set_status(self, status: str) -> None:
        if status == "running" and self.control.run_paused:
            status = "paused"
        await self.journal.update_run(self.run_id, status=status)
        self.emit(RunStatus(self.run_id, status, self.workflow.name, None))

    async def _heartbeat(self) -> None:
        """Renew the lease; once it is lost, stop the run (this process may write nothing more)."""
        while True:
            await asyncio.sleep(self.config.engine.heartbeat_seconds)
            try:
                if not await self.lease.renew():
                    log.warning("run %s: lease lost; stopping this execution", self.run_id)
                    if self.control.task is not None:
                        self.control.task.cancel()
                    return
            except LoopcraftError:
                log.warning("heartbeat of run %s failed", self.run_id)

    # -- the step protocol -----------------------------------------------------------------

    def _check(self, pos: str, key: str, kind: str, name: str) -> StepRow | None:
        row = self.recorded.get(pos)
        if row is None:
            return None
        if row.kind != kind or row.name != name:
            raise NonDeterminismError(
                f"non-deterministic workflow in run {self.run_id}: step {pos} was recorded as {row.kind} "
                f"{row.name!r} but the code now calls {kind} {name!r}; restore the code the run started "
                "with, or start a new run"
            )
        return row

    async def step(
        self,
        scope: Scope,
        pos: str,
        key: str,
        kind: str,
        name: str,
        body: Callable[[StepRow], Awaitable[Any]],
        *,
        parents: list[str] | None = None,
        encode: Callable[[Any], Any] = lambda v: v,
        decode: Callable[[Any], Any] = lambda v: v,
        usage_of: Callable[[Any], Usage | None] = lambda v: None,
    ) -> Any:
        """Check, run, record. ``body(row)`` does the work; its value is ``encode``d into the journal."""
        row = self._check(pos, key, kind, name)
        if row is not None and row.status == "completed":
            value = decode(self.files.load_output(row.output))
            if row.usage:
                self.usage = self.usage + Usage.from_dict(row.usage)
                if kind in ("task", "stage_prompt", "workflow"):
                    self.current_budget().charge(Usage.from_dict(row.usage))
            if kind in USAGE_KINDS:
                self.current_budget().count_stage()
            if kind in STAGE_KINDS:
                scope.settle(key, row.parents)
            return value
        if row is not None and row.status == "failed":
            if row.usage and kind in USAGE_KINDS:
                self.usage = self.usage + Usage.from_dict(row.usage)
                self.current_budget().charge(Usage.from_dict(row.usage))
            if kind in STAGE_KINDS:
                scope.settle(key, row.parents)
            raise _recorded_error(row)
        is_stage = kind in STAGE_KINDS
        if row is not None and row.usage and kind in USAGE_KINDS:
            # stopped earlier having spent this (its agent's restored transcript does not charge the
            # run's budget): a raised budget on resume is the limit on the total, not on top of it
            self.current_budget().charge(Usage.from_dict(row.usage))
        await self.before_step(kind, name)
        if row is None:
            row = await self._start_row(pos, key, kind, name, scope.frontier if parents is None else parents)
        elif row.status != "running" or row.error is not None:  # stopped earlier: runs again, afresh
            row.status, row.error, row.finished = "running", None, None
            await self.journal.finish_step(row)
        if is_stage:
            self._announce(row)  # a step recorded by an earlier execution too (resume)
            self.emit(StageStatus(self.run_id, key, "running"))
        try:
            value = await body(row)
        except Exception as exc:
            await self._record_failure(row, exc)
            if is_stage:
                scope.settle(key, row.parents)
            if isinstance(exc, StepError | NonDeterminismError):
                raise
            raise _recorded_error(row) from exc
        encoded = encode(value)
        usage = usage_of(value)
        row.status, row.finished = "completed", time.time()
        row.output = self.files.store_output(key, encoded)
        if usage is not None:
            row.usage = usage.to_dict()
            self.usage = self.usage + usage
        await self.journal.finish_step(row)
        if is_stage:
            scope.settle(key, row.parents)
            self.emit(StageStatus(self.run_id, key, "completed", row.model))
            if usage is not None:
                self.emit(UsageEvent(self.run_id, key, row.usage or {}, self.usage.to_dict()))
        return decode(encoded)

    async def before_step(self, kind: str, name: str) -> None:
        """Control at a step boundary: wait while the run is paused; stop when its budget is spent."""
        await self.control.checkpoint()
        if kind in USAGE_KINDS:
            limit = self.current_budget().stage_allowed()
            if limit is not None:
                raise WorkflowExit("budget_exceeded", f"run budget exceeded ({limit}) before stage {name!r}")

    def current_budget(self) -> RunBudget:
        """The budget stages started here charge: the innermost nested workflow's, else the run's."""
        return current_budget(self.budget)

    async def _start_row(self, pos: str, key: str, kind: str, name: str, parents: list[str]) -> StepRow:
        """Journal a new running step at ``pos`` (the next in sequence)."""
        self._seq += 1
        row = StepRow(
            self.run_id,
            key,
            pos,
            kind,
            name,
            "running",
            started=time.time(),
            parents=list(parents),
            seq=self._seq,
        )
        self.recorded[pos] = row
        await self.journal.start_step(row)
        return row

    async def _record_failure(self, row: StepRow, exc: BaseException) -> None:
        if isinstance(exc, NonDeterminismError):
            return  # the code is wrong, not the step: never record it
        message = str(exc) if isinstance(exc, LoopcraftError) else f"{type(exc).__name__}: {exc}"
        row.status, row.finished = "failed", time.time()
        row.error = {
            "type": type(exc).__name__,
            "message": message,
            "run_status": getattr(exc, "run_status", "failed"),
        }
        await self.journal.finish_step(row)
        if row.kind in STAGE_KINDS:
            self.emit(StageStatus(self.run_id, row.key, "failed", row.model, message))

    # -- tasks -----------------------------------------------------------------------------

    def resolve_models(self, spec: TaskSpec) -> tuple[str, list[str]]:
        model = spec.model or self.run_model or self.config.model
        if model is None:
            try:
                from loopcraft.models.resolve import resolve_model

                model = resolve_model(config=self.config).model
            except ImportError:
                model = "scripted/demo"
        fallbacks = self.config.fallback_models if spec.fallback_models is None else spec.fallback_models
        if spec.effort is not None:
            from loopcraft.models.spec import model_with_effort

            model = model_with_effort(model, spec.effort)
            fallbacks = [model_with_effort(m, spec.effort) for m in fallbacks]
        return model, [m for m in fallbacks if m != model]

    def _fork_source(self, spec: TaskSpec) -> Path | None:
        if spec.context != "fork":
            return None
        if spec.fork_from is None:
            if self._last_session is None:
                raise StageFailure(f"stage {spec.name!r}: context='fork' but no earlier task session to fork")
            return self._last_session
        by_key = next(
            (r for r in self.recorded.values() if spec.fork_from in (r.key, r.name) and r.kind == "task"),
            None,
        )
        path = self.files.session_path(by_key.key) if by_key else Path(spec.fork_from)
        if not path.is_file():
            raise StageFailure(f"stage {spec.name!r}: cannot fork {spec.fork_from!r}: no such session")
        return path

    def _request(
        self, key: str, spec: TaskSpec, session_path: Path, workspace: Path | None = None
    ) -> TaskRequest:
        model, fallbacks = self.resolve_models(spec)
        if spec.worktree and workspace is None:
            raise StageFailure(f"stage {spec.name!r}: worktree=True is supported on ctx.task only")

        def on_event(event: Any) -> None:
            self.emit(StageEvent(self.run_id, key, getattr(event, "kind", type(event).__name__), event))

        return TaskRequest(
            run_id=self.run_id,
            key=key,
            name=spec.name,
            workspace=workspace or self.workspace,
            session_path=session_path,
            model=model,
            fallback_models=fallbacks,
            tools=spec.tools,
            exclude_tools=spec.exclude_tools,
            fork_from=self._fork_source(spec),
            budget=spec.budget,
            permissions=spec.permissions,
            system=spec.system,
            skills=spec.skills,
            on_event=on_event,
            safe_point=lambda: self.control.checkpoint(key),
            shared_budget=self.current_budget(),
            guard=self.lease.check,
            lease_check=self.lease.verify,
        )

    async def _task_body(self, key: str, spec: TaskSpec, row: StepRow) -> StageResult:
        reads = resolve_reads(spec, self.files)
        session_path = self.files.session_path(key)
        tree = await self._open_worktree(spec, row) if spec.worktree else None
        if tree is not None:
            reads = [worktrees.visible_read(tree, path) for path in reads]
        prompt = build_prompt(spec, reads)
        request = self._request(key, spec, session_path, tree.path if tree else None)
        row.model = request.model
        session = self.control.attach(key, await self.runner.open(request))
        self.live[key] = session
        try:
            outcome, structured, usage = await run_agent_task(spec, session, prompt)
        except BaseException as exc:
            self._keep_spent(row, session)
            if tree is not None and isinstance(exc, Exception):  # failed: keep its partial work on the branch
                with contextlib.suppress(LoopcraftError):
                    await worktrees.close_stage_worktree(
                        tree, self._commit_message(spec), keep=spec.keep_worktree
                    )
            raise
        finally:
            self.live.pop(key, None)
            self.control.detach(key)
            session.close()
        row.model = outcome.model or request.model
        text, written = shape_output(spec, outcome.text, self.files, self.config.engine.max_output)
        for path in written:
            await self.journal.add_artifact(self.run_id, key, path.name, str(path), path.stat().st_size)
        self._last_session = session_path
        result = stage_result(outcome, text, structured, usage, written, session_path)
        if tree is not None:
            message = self._commit_message(spec)
            result.diff = await worktrees.close_stage_worktree(tree, message, keep=spec.keep_worktree)
            result.branch = tree.branch
        return result

    async def _open_worktree(self, spec: TaskSpec, row: StepRow) -> worktrees.Worktree:
        """The stage's git worktree (reused on resume); same-named stages get ``-2``, ``-3``… suffixes."""
        same = [
            r for r in self.recorded.values() if r.kind == "task" and r.name == spec.name and r.seq < row.seq
        ]
        name = spec.name if not same else f"{spec.name}-{len(same) + 1}"
        return await worktrees.open_stage_worktree(self.workspace, self.run_id, name)

    def _commit_message(self, spec: TaskSpec) -> str:
        return f"loopcraft: run {self.run_id} stage {spec.name}"

    async def run_merge(self, scope: Scope, pos: str, key: str, branch: str, strategy: str) -> str:
        """Merge a worktree stage's branch into the main work tree (journaled: replay never merges twice)."""

        async def body(row: StepRow) -> str:
            message = f"loopcraft: merge {branch} (run {self.run_id})"
            return await worktrees.merge_stage_branch(self.workspace, branch, strategy, message)

        result: str = await self.step(scope, pos, key, "merge", branch, body)
        return result

    async def run_task(
        self, scope: Scope, pos: str, key: str, spec: TaskSpec, parents: list[str] | None = None
    ) -> StageResult:
        result: StageResult = await self.step(
            scope,
            pos,
            key,
            "task",
            spec.name,
            lambda row: self._task_body(key, spec, row),
            parents=parents,
            encode=lambda r: r.to_dict(),
            decode=lambda d: StageResult.from_dict(d, spec.schema),
            usage_of=lambda r: r.usage,
        )
        if result.session_path:
            self._last_session = Path(result.session_path)
        return result

    async def run_chain(self, scope: Scope, pos: str, key: str, specs: list[TaskSpec]) -> list[StageResult]:
        async def body(row: StepRow) -> list[StageResult]:
            inner = Scope(key, scope.depth, 0, scope.frontier)
            results: list[StageResult] = []
            for spec in specs:
                if results:
                    spec = spec.with_previous(results[-1].text)
                cpos, ckey = inner.reserve("task", spec.name)
                results.append(await self.run_task(inner, cpos, ckey, spec))
            scope.frontier = inner.frontier
            return results

        return await self._structural(scope, pos, key, "chain", body)

    async def _structural(
        self, scope: Scope, pos: str, key: str, kind: str, body: Callable[[StepRow], Awaitable[Any]]
    ) -> Any:
        """A grouping step (chain, parallel): journaled for determinism, its children hold the results."""
        row = self._check(pos, key, kind, "") or await self._start_row(pos, key, kind, "", scope.frontier)
        value = await body(row)
        if row.status != "completed":
            row.status, row.finished, row.error = "completed", time.time(), None
            await self.journal.finish_step(row)
        return value

    async def run_parallel(
        self, scope: Scope, pos: str, key: str, items: list[Any], concurrency: int | None, fail_fast: bool
    ) -> list[Any]:
        limit = concurrency or self.config.engine.default_concurrency
        semaphore = asyncio.Semaphore(max(1, limit))

        async def body(row: StepRow) -> list[Any]:
            inner = Scope(key, scope.depth, 0)
            parents = list(scope.frontier)
            jobs: list[Awaitable[Any]] = []
            for item in items:
                if isinstance(item, TaskSpec):
                    cpos, ckey = inner.reserve("task", item.name)
                    if fail_fast:
                        self._raise_recorded_failure(cpos, ckey, item.name)
                    jobs.append(self.run_task(scope, cpos, ckey, item, parents=parents))
                elif inspect.isawaitable(item):
                    jobs.append(item)
                else:
                    raise LoopcraftError(
                        f"ctx.parallel: {item!r} is neither a ctx.spec(...) nor an awaitable"
                    )

            async def limited(job: Awaitable[Any]) -> Any:
                try:
                    async with semaphore:
                        return await job
                finally:  # cancelled while waiting for a slot: never leave a coroutine unawaited
                    if inspect.iscoroutine(job) and inspect.getcoroutinestate(job) == inspect.CORO_CREATED:
                        job.close()

            tasks = [asyncio.ensure_future(limited(job)) for job in jobs]
            if not fail_fast:
                results = await asyncio.gather(*tasks, return_exceptions=True)
                first = next((r for r in results if isinstance(r, BaseException)), None)
                if first is not None:
                    raise first
                return list(results)
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

        return await self._structural(scope, pos, key, "parallel", body)

    def _raise_recorded_failure(self, pos: str, key: str, name: str) -> None:
        """Fail fast on replay before launching siblings when a branch's failure is already recorded."""
        row = self._check(pos, key, "task", name)
        if row is not None and row.status == "failed":
            raise _recorded_error(row)

    # -- nested workflows ------------------------------------------------------------------

    async def run_nested(
        self,
        scope: Scope,
        pos: str,
        key: str,
        other: Workflow | str,
        inputs: dict[str, Any],
        budget: dict[str, Any] | None = None,
    ) -> Any:
        if isinstance(other, str):
            if self.catalog is None:
                raise LoopcraftError(f"ctx.workflow({other!r}): no workflow catalog to look the name up in")
            wf = self.catalog.get(other)
        else:
            wf = other

        async def body(row: StepRow) -> Any:
            depth = scope.depth + 1
            if depth > self.config.engine.max_depth:
                raise StageFailure(
                    f"nested workflow {wf.name!r} would exceed the maximum depth "
                    f"({self.config.engine.max_depth}; engine.max_depth)"
                )
            checked = wf.validate_inputs(inputs)
            inner = scope.child(key, depth=depth)
            limits = merge_budget(wf.extras.get("budget"), budget)
            child = nested_budget(self.current_budget(), limits, f"workflow {wf.name!r}", self.raised_budget)
            token = enter_budget(child) if child is not None else None
            try:
                value = await wf.fn(Context(self, inner, checked), **wf.call_kwargs(checked))
            finally:
                if token is not None:
                    leave_budget(token)
            inside = [r for r in self.recorded.values() if r.key.startswith(key + "/")]
            row.usage = spent_total(inside).to_dict()  # its own stages only, not concurrent siblings'
            return wf.validate_output(value)

        return await self.step(
            scope, pos, key, "workflow", wf.name, body, decode=lambda d: wf.output_adapter.validate_python(d)
        )

    # -- durable side effects --------------------------------------------------------------

    async def run_tool(
        self,
        scope: Scope,
        pos: str,
        key: str,
        name: str,
        fn: Callable[[], Any],
        retries: int,
        timeout: float | None,
    ) -> Any:
        async def attempt() -> Any:
            if inspect.iscoroutinefunction(fn):
                return await fn()
            result = await asyncio.to_thread(fn) if timeout is not None else fn()
            return await result if inspect.isawaitable(result) else result

        async def body(row: StepRow) -> Any:
            token = _idempotency_key.set(f"{self.run_id}:{key}")
            try:
                for index in range(retries + 1):
                    row.attempts += 1
                    try:
                        value = await asyncio.wait_for(attempt(), timeout) if timeout else await attempt()
                        break
                    except TimeoutError:
                        if index == retries:
                            raise StageFailure(
                                f"ctx.tool {name!r} timed out after {timeout:g}s ({retries + 1} attempt(s))"
                            ) from None
                    except Exception:
                        if index == retries:
                            raise
                    await asyncio.sleep(min(2.0, 0.05 * 2**index))
            finally:
                _idempotency_key.reset(token)
            try:
                return json.loads(json.dumps(value))
            except (TypeError, ValueError) as exc:
                raise StageFailure(
                    f"ctx.tool {name!r} returned a value that cannot be journaled as JSON ({exc})"
                ) from None

        return await self.step(scope, pos, key, "tool", name, body)

    # -- human gates -----------------------------------------------------------------------

    async def run_prompt(
        self,
        scope: Scope,
        pos: str,
        key: str,
        kind: str,
        question: str,
        options: list[Any] | None,
        default: Any,
    ) -> Any:
        async def body(row: StepRow) -> Any:
            prompt = await self.journal.create_prompt(self.run_id, key, kind, question, options, default)
            while prompt.status != "answered":
                if self.stop_at_gates:
                    await self.journal.set_step_status(self.run_id, pos, "awaiting_input")
                    self.emit(PromptPending(self.run_id, prompt.id, key, kind, question, options))
                    raise WorkflowExit(
                        "needs_human",
                        f"waiting for an answer to {question!r}: `loopcraft answer {self.run_id} "
                        f"{prompt.id} VALUE`, then `loopcraft resume {self.run_id}`",
                    )
                if prompt.id not in self._pending_prompts:
                    self._pending_prompts.add(prompt.id)
                    await self.journal.set_step_status(self.run_id, pos, "awaiting_input")
                    await self.journal.update_run(self.run_id, status="awaiting_input")
                    self.emit(StageStatus(self.run_id, key, "awaiting_input"))
                    self.emit(RunStatus(self.run_id, "awaiting_input", self.workflow.name, None))
                    self.emit(PromptPending(self.run_id, prompt.id, key, kind, question, options))
                self.answer_signal.clear()
                try:
                    await asyncio.wait_for(self.answer_signal.wait(), self.config.engine.poll_seconds)
                except TimeoutError:
                    pass
                fresh = await self.journal.get_prompt(prompt.id)
                assert fresh is not None
                prompt = fresh
            self._pending_prompts.discard(prompt.id)
            answer = normalize_answer(kind, prompt.answer, options)
            self.emit(PromptAnswered(self.run_id, prompt.id, key, answer))
            if not self._pending_prompts:
                await self._set_status("running")
            return answer

        return await self.step(scope, pos, key, "prompt", kind, body)

    # -- long-lived stages -----------------------------------------------------------------

    def live_stage(self, scope: Scope, pos: str, key: str, spec: TaskSpec) -> LiveStage:
        self._check(pos, key, "stage", spec.name)
        return LiveStage(self, scope, pos, key, spec)

    async def run_stage_prompt(self, stage: LiveStage, pos: str, key: str, text: str) -> StageResult:
        async def body(row: StepRow) -> StageResult:
            session_path = self.files.session_path(stage.key)
            started, corrections = False, 0
            if stage.session is None:  # first prompt this process sends: the transcript may hold it
                request = self._request(stage.key, stage.spec, session_path)
                row.model = request.model
                stage.session = self.control.attach(stage.key, await self.runner.open(request))
                self.live[stage.key] = stage.session
                earlier = [
                    r
                    for r in self.recorded.values()
                    if r.kind == "stage_prompt" and r.pos.startswith(stage.key + "/") and r.pos != pos
                ]
                stage.charged = spent_total(earlier)
                started, corrections = sent_prompt_state(read_transcript(session_path), len(earlier))
            prompt = (
                text
                if not stage.spec.previous
                else build_prompt(
                    TaskSpec(name=stage.spec.name, prompt=text, previous=stage.spec.previous), []
                )
            )
            try:
                outcome, structured, usage = await run_agent_task(
                    TaskSpec(name=stage.spec.name, schema=stage.spec.schema),
                    _Prompted(stage.session, started, corrections),
                    prompt,
                )
            except BaseException:  # stopped (budget, kill, failure): keep what this prompt spent
                total = self._keep_spent(row, stage.session, stage.charged)
                if total is not None:
                    stage.charged = total
                raise
            row.model = outcome.model or row.model
            usage, stage.charged = usage - stage.charged, usage
            out, written = shape_output(stage.spec, outcome.text, self.files, self.config.engine.max_output)
            return stage_result(outcome, out, structured, usage, written, session_path)

        return await self.step(
            stage._scope,
            pos,
            key,
            "stage_prompt",
            stage.spec.name,
            body,
            encode=lambda r: r.to_dict(),
            decode=lambda d: StageResult.from_dict(d, stage.spec.schema),
            usage_of=lambda r: r.usage,
        )


def spent_total(rows: list[StepRow]) -> Usage:
    """What a run's stages spent, finished or not: the sum of its task and stage-prompt steps' usage."""
    return sum((Usage.from_dict(r.usage) for r in rows if r.kind in USAGE_KINDS and r.usage), Usage())


def _recorded_error(row: StepRow) -> StepError:
    """The :class:`StepError` a failed step raises, now and on every replay (from its journal row)."""
    err = row.error or {}
    return StepError(
        err.get("message", f"step {row.key} failed"),
        kind=row.kind,
        name=row.name,
        error_type=err.get("type", ""),
        run_status=err.get("run_status", "failed"),
    )


def read_transcript(path: Path) -> list[dict[str, Any]]:
    """A stage transcript's entries, header included, up to the first torn or malformed line."""
    if not path.is_file():
        return []
    entries = []
    # "\n" only: str.splitlines() would also split at U+2028/U+2029/U+0085 inside JSON strings
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            break
    return entries


def sent_prompt_state(entries: list[dict[str, Any]], earlier: int) -> tuple[bool, int]:
    """Whether a long-lived stage's next prompt (after ``earlier`` journaled ones) is already in its
    transcript, and how many schema corrections followed it there.

    Durable facts only: a prompt appended before a crash but whose step was never recorded makes
    the transcript hold more prompts than the journal has steps; the turn is then resumed, not
    prompted again. Only what follows a fork belongs to the stage (as for ordinary tasks)."""
    forks = [i for i, e in enumerate(entries) if e.get("type") == "status" and e.get("status") == "forked"]
    own = entries[forks[-1] + 1 :] if forks else entries
    prompts = [
        str(e["message"].get("content") or "")
        for e in own
        if e.get("type") == "message" and e.get("source") == "prompt"
    ]
    sent = [i for i, p in enumerate(prompts) if not p.startswith(CORRECTION_PREFIX)]
    if len(sent) <= earlier:
        return False, 0
    end = sent[earlier + 1] if len(sent) > earlier + 1 else len(prompts)
    return True, end - sent[earlier] - 1


@dataclass
class _Prompted:
    """A session view for one prompt of a long-lived stage: resumes a half-done turn, else prompts anew."""

    session: TaskSession
    started: bool = False
    corrections: int = 0

    async def run(self, prompt: str | None) -> Any:
        return await self.session.run(prompt)

    def steer(self, text: str) -> None:
        self.session.steer(text)

    def follow_up(self, text: str) -> None:
        self.session.follow_up(text)

    def interrupt(self) -> None:
        self.session.interrupt()

    def close(self) -> None:
        pass  # the stage's session outlives its prompts


_WRITES = frozenset(
    {
        "update_run",
        "start_step",
        "finish_step",
        "set_step_status",
        "set_stage_status",
        "close_open_steps",
        "append_events",
        "add_artifact",
        "consume_mail",
        "create_prompt",
    }
)


class _Fenced:
    """The journal as one execution sees it: every write first checks that the run's lease is held."""

    def __init__(self, journal: Journal, lease: Lease) -> None:
        self._journal = journal
        self._lease = lease

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._journal, name)
        if name not in _WRITES:
            return attr

        async def fenced(*args: Any, **kwargs: Any) -> Any:
            await self._lease.ensure()
            return await attr(*args, **kwargs)

        return fenced
