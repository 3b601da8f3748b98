"""Executing one run of a workflow: its lifecycle only — load the journal, hold the lease (heartbeat),
pump control commands, call the workflow function, settle the steps still open when it ends, and
record the run's final status. Events go out through :meth:`Execution.emit`.

The step protocol (check the journal, run, record) is :mod:`loopcraft.engine.steps.protocol`; each
step kind is its own module under :mod:`loopcraft.engine.steps`. :class:`Execution` implements the
:class:`~loopcraft.engine.steps.protocol.Runtime` seam they use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopcraft.config import Config
from loopcraft.engine import worktrees
from loopcraft.engine.activity import load_waits
from loopcraft.engine.artifacts import RunFiles, write_durably
from loopcraft.engine.budgets import RunBudget, current_budget
from loopcraft.engine.context import Context
from loopcraft.engine.control import RunControl, RunKilled
from loopcraft.engine.definition import Workflow
from loopcraft.engine.events import (
    EngineEvent,
    EventBus,
    RunStatus,
    StageAdded,
    StageStatus,
    UsageEvent,
    event_json,
    is_persisted,
)
from loopcraft.engine.graph import USAGE_KINDS
from loopcraft.engine.journal import Journal, StepRow
from loopcraft.engine.leases import Lease, LeaseLost, new_owner_id
from loopcraft.engine.run_writer import RunWriter
from loopcraft.engine.steps.protocol import (
    STAGE_KINDS,
    NonDeterminismError,
    Scope,
    StepError,
    WorkflowExit,
    spent_total,
)
from loopcraft.engine.steps.stage import LiveStage, read_transcript, sent_prompt_state
from loopcraft.engine.tasks import StageFailure, TaskRunner, TaskSession
from loopcraft.engine.watchdog import Watchdog
from loopcraft.errors import LoopcraftError
from loopcraft.models.types import Usage

if TYPE_CHECKING:
    from loopcraft.engine.discovery import WorkflowCatalog

__all__ = [
    "Execution",
    "LiveStage",
    "NonDeterminismError",
    "Scope",
    "StepError",
    "read_transcript",
    "sent_prompt_state",
    "spent_total",
]

log = logging.getLogger(__name__)

# Open steps a run's end settles (a gate awaiting its answer keeps waiting: it can still be answered).
SETTLED_STATES = frozenset({"running", "paused", "budget_exceeded", "cancelled"})
CLOSED_WHILE = {
    "awaiting_input": "waiting for an answer; the app (or command) running it was closed — "
    "answer with `loopcraft answer`, then `loopcraft resume`",
    "paused": "paused; the app (or command) running it was closed — continue with `loopcraft resume`",
}
"""A run cancelled while only waiting ends as needs_human with these reasons, not as crashed."""


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
        steps: list[StepRow] | None = None,
    ) -> None:
        self._loaded = steps  # the run's step rows, when the resumer has read (and checked) them
        self.lease = lease or Lease(journal, run_id, new_owner_id(), config.engine.lease_seconds)
        self.recorded: dict[str, StepRow] = {}
        self.writer = RunWriter(journal, self.lease, self.recorded)
        self.journal: Journal = self.writer  # type: ignore[assignment]
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
        self.live: dict[str, TaskSession] = {}  # stage key -> running agent session (for control)
        self.usage = Usage()
        self.seq = 0
        self._event_seq = 0
        self.last_session: Path | None = None
        self.pending_prompts: set[str] = set()
        self._announced: set[str] = set()  # stage keys a StageAdded named in this execution
        self._shown: dict[str, str] = {}  # stage key -> the last status an event gave it
        self.answer_signal = asyncio.Event()
        self.watchdog = Watchdog(self)
        self.limit_waits: dict[str, tuple[float, str]] = {}  # limit waits journaled by an earlier execution

    @property
    def paused(self) -> bool:
        return self.control.run_paused

    # -- events ----------------------------------------------------------------------------

    def emit(self, event: EngineEvent) -> None:
        if isinstance(event, StageStatus):
            self._shown[event.key] = event.status
        if not isinstance(event, RunStatus | UsageEvent):
            self.watchdog.saw(event)
        self.bus.publish(event)
        if is_persisted(event):  # written with the run's next step (see RunWriter)
            self._event_seq += 1
            self.writer.add_event((self.run_id, self._event_seq, time.time(), event.type, event_json(event)))

    async def flush(self) -> None:
        await self.writer.flush()

    # -- the run ---------------------------------------------------------------------------

    async def execute(self) -> None:
        """Run (or replay) the workflow to its end and record the run's final status."""
        loaded, self._loaded = self._loaded, None
        for row in loaded if loaded is not None else await self.journal.load_steps(self.run_id):
            self.recorded[row.pos] = row
            self.seq = max(self.seq, row.seq)
        self._event_seq = await self.journal.max_event_seq(self.run_id)
        # an earlier execution left steps or events: this one resumes the run
        resumed = bool(self.recorded) or self._event_seq > 0
        if resumed:
            self.limit_waits = await load_waits(self.journal, self.run_id)
            await self.watchdog.load()
        if not self.lease.expires:  # not claimed by the engine yet
            await self.lease.claim()
        heartbeat = asyncio.ensure_future(self._heartbeat())
        pump = asyncio.ensure_future(self.control.pump())
        watch = asyncio.ensure_future(self.watchdog.run())
        try:
            await self.control.start(self.recorded.values())
            await self.set_status("running", resumed=resumed)
            log.info("run %s (%s) started", self.run_id, self.workflow.name)
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
            usage = spent_total(list(self.recorded.values())).to_dict()
            await self.lease.release(
                status=status, output=output, error=error, usage=usage, finished=time.time()
            )
            self.emit(UsageEvent(self.run_id, None, {}, usage))
            self.emit(RunStatus(self.run_id, status, self.workflow.name, error))
            log.log(
                logging.INFO if status == "completed" else logging.WARNING,
                "run %s (%s) ended %s%s",
                self.run_id,
                self.workflow.name,
                status,
                f": {error}" if error else "",
            )
        except BaseException as exc:
            # Stopped abnormally (crash, Engine.close): give the lease up so the run can be
            # resumed at once; its status stays live, so it shows as crashed, except a run that
            # was only waiting (at a gate, or paused) when closed: that one reads as needs_human.
            if not self.lease.lost:
                with contextlib.suppress(Exception):
                    await self.lease.release(**await self._closed_while_waiting(exc))
            raise
        finally:
            heartbeat.cancel()
            pump.cancel()
            watch.cancel()
            for session in self.live.values():
                session.close()
            await self.flush()

    async def _call_workflow(self) -> tuple[str, Any, str | None]:
        scope = Scope("root")
        ctx = self.context(scope, self.inputs)
        try:
            value = await self.workflow.fn(ctx, **self.workflow.call_kwargs(self.inputs))
            output = self.files.store_output("output", self.workflow.validate_output(value))
            limit = self.budget.exceeded(counts=False)
            if limit is not None:  # the last call overshot a budget smaller than it (output kept)
                why = f"run budget exceeded ({limit}) by its last stage's model call"
                return "budget_exceeded", output, why
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
        for row in list(self.recorded.values()):  # kept in step with the journal: no reload
            if row.status in ("completed", "failed") or (states is not None and row.status not in states):
                continue
            shown = row.status
            row.status, row.finished = final, time.time()
            row.error = {"type": "Killed" if final == "failed" else "Stopped", "message": message}
            row.error["run_status"] = run_status
            await self.journal.finish_step(row)
            if row.kind in STAGE_KINDS and self._shown.get(row.key, shown) != final:
                self.announce(row)
                self.emit(
                    StageStatus(self.run_id, row.key, final, row.model, message, row.started, row.finished)
                )
                if row.usage:
                    self.emit(UsageEvent(self.run_id, row.key, row.usage, self.usage.to_dict()))

    def announce(self, row: StepRow) -> None:
        """Name a stage to listeners (once per execution): a resumed run's stages keep their names."""
        if row.key not in self._announced:
            self._announced.add(row.key)
            self.emit(StageAdded(self.run_id, row.key, row.name, row.kind, row.parents, grants=row.grants))

    def keep_spent(self, row: StepRow, session: Any, base: Usage | None = None) -> Usage | None:
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

    async def _closed_while_waiting(self, exc: BaseException) -> dict[str, object]:
        """The fields a run stopped by ``exc`` keeps: needs_human (with what to do, and what its
        stages spent so far) when it was cancelled (the app or CLI closed) while waiting at a gate
        or paused; else none."""
        if not isinstance(exc, asyncio.CancelledError):
            return {}
        row = await self.journal.get_run(self.run_id)
        if row is None or row.status not in CLOSED_WHILE:
            return {}
        usage = spent_total(await self.journal.load_steps(self.run_id)).to_dict()
        return {"status": "needs_human", "error": CLOSED_WHILE[row.status], "usage": usage}

    async def set_status(self, status: str, *, resumed: bool = False) -> None:
        if status == "running" and self.control.run_paused:
            status = "paused"
        await self.journal.update_run(self.run_id, status=status)
        self.emit(RunStatus(self.run_id, status, self.workflow.name, None, resumed))

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

    def context(self, scope: Scope, inputs: dict[str, Any]) -> Context:
        """The ``ctx`` a workflow function (the run's, or a nested one's) is called with."""
        return Context(self, scope, inputs)
