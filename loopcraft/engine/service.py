"""The engine facade the CLI and the TUI use: open the journal, find workflows, start, wait for,
resume and inspect runs, answer prompts. One :class:`Engine` per process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from loopcraft.config import Config
from loopcraft.engine import worktrees
from loopcraft.engine.activity import apply_activity, load_activity
from loopcraft.engine.budgets import BudgetError, check_budget, merge_budget
from loopcraft.engine.control import BUDGET_RAISED, ControlError, RunStateError, find_stage, post
from loopcraft.engine.definition import Workflow
from loopcraft.engine.discovery import WorkflowCatalog, discover
from loopcraft.engine.events import EventBus, PromptAnswered
from loopcraft.engine.gates import normalize_answer
from loopcraft.engine.graph import Graph, build_graph, load_graph, settle_ended
from loopcraft.engine.journal import CLOSED_RUN_STATES, Journal, JournalError, PromptRow, RunRow, StepRow
from loopcraft.engine.leases import Lease, RunBusy, held, new_owner_id
from loopcraft.engine.names import short_id
from loopcraft.engine.results import FINAL_STATES, RunInfo
from loopcraft.engine.runtime import Execution, read_transcript
from loopcraft.engine.tasks import TaskRunner
from loopcraft.errors import LoopcraftError, NotFoundError
from loopcraft.models.client import ModelClient
from loopcraft.models.types import Usage
from loopcraft.paths import ensure_state_dir, state_dir

_LIVE_STATES = frozenset({"pending", "running", "awaiting_input", "paused"})


def db_path(root: Path) -> Path:
    """The journal file: ``LOOPCRAFT_DB`` if set, else ``.loopcraft/loopcraft.db`` in the repo."""
    env = os.environ.get("LOOPCRAFT_DB")
    return Path(env) if env else state_dir(root) / "loopcraft.db"


def _handles(rows: list[RunRow], shown: int = 5) -> str:
    """The candidates of an ambiguous handle by short handle (full ids if those collide)."""
    shorts = [short_id(r.id) for r in rows]
    names = shorts if len(set(shorts)) == len(shorts) else [r.id for r in rows]
    more = ", …" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


class Engine:
    """Runs workflows durably against one repository's journal."""

    def __init__(
        self, root: Path, config: Config, journal: Journal, runner: TaskRunner, client: ModelClient | None
    ) -> None:
        self.root = root
        self.config = config
        self.journal = journal
        self.runner = runner
        self.client = client
        self.bus = EventBus()
        self._catalog: WorkflowCatalog | None = None
        self._registered: dict[str, Workflow] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._executions: dict[str, Execution] = {}
        self.stop_at_gates = False  # headless without a terminal: a human gate ends the run (needs_human)

    @classmethod
    async def open(
        cls,
        root: Path,
        config: Config,
        *,
        client: ModelClient | None = None,
        runner: TaskRunner | None = None,
        busy_timeout: float = 5.0,
    ) -> Engine:
        """Open the repo's journal (created on first use). ``runner`` replaces the agent (tests)."""
        ensure_state_dir(root)  # first use: .loopcraft/ with its .gitignore
        journal = await Journal.open(
            db_path(root), busy_timeout=busy_timeout, synchronous=config.engine.synchronous
        )
        try:
            if runner is None:
                from loopcraft.engine.agent_runner import AgentTaskRunner

                agents = AgentTaskRunner(config, client)
                engine = cls(root, config, journal, agents, client)
                agents.extra_tools["workflow"] = engine.stage_workflow_tool
                return engine
            return cls(root, config, journal, runner, client)
        except BaseException:
            await journal.close()  # its worker thread must not outlive the event loop
            raise

    def stage_workflow_tool(self, request: Any) -> Any:
        """The ``workflow`` tool for a stage that opts in (``tools=[..., "workflow"]``): one level
        deeper than the stage's run, so nesting stops at ``engine.max_depth``."""
        from loopcraft.engine.workflow_tool import WorkflowTool

        return WorkflowTool(self, depth=self.depth_of(request.run_id))

    def depth_of(self, run_id: str) -> int:
        """How deep a run is: a dynamic run's recorded depth, 0 for a file workflow's run."""
        from loopcraft.engine.dynamic import is_dynamic

        execution = self._executions.get(run_id)
        if execution is None or not is_dynamic(execution.workflow.name):
            return 0
        return int((execution.inputs.get("spec") or {}).get("depth", 0))

    async def close(self) -> None:
        """Stop in-flight runs of this process (they stay resumable) and close the journal."""
        for task in list(self._tasks.values()):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        connectors = sys.modules.get("loopcraft.agent.mcp")  # loaded only when a stage had MCP servers
        if connectors is not None:
            await connectors.wait_closed()  # no MCP server outlives the engine
        await self.journal.close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- workflows -------------------------------------------------------------------------

    def workflows(self, *, reload: bool = False) -> WorkflowCatalog:
        """The workflows found on disk (loaded once; ``reload`` re-reads the files) plus registered ones."""
        if self._catalog is None or reload:
            self._catalog = discover(self.root, list(self._registered.values()))
        return self._catalog

    def register(self, *workflows: Workflow) -> None:
        """Make workflows defined in code available by name (they win over files)."""
        for wf in workflows:
            self._registered[wf.name] = wf
            if self._catalog is not None:
                self._catalog.add(wf)

    # -- runs ------------------------------------------------------------------------------

    async def start(
        self,
        name: str,
        inputs: dict[str, Any],
        *,
        model: str | None = None,
        cli_strings: bool = False,
        budget: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Validate, record the run and start it in the background; returns the run id.

        ``budget`` (tokens, dollars, seconds, stages) overrides the workflow's own ``budget=``;
        ``run_id`` is the id to use (chosen and recorded beforehand by the trigger inbox)."""
        wf = self.workflows().get(name)
        checked = wf.coerce_cli_inputs(inputs) if cli_strings else wf.validate_inputs(inputs)
        if model is not None:
            from loopcraft.models.spec import parse_model

            parse_model(model)
        run_budget = merge_budget(check_budget(wf.extras.get("budget")), check_budget(budget))
        run_id = run_id or new_run_id()
        await self.journal.create_run(run_id, wf.name, checked, model=model, budget=run_budget)
        lease = self._lease(run_id)
        await lease.claim()
        self._launch(run_id, wf.name, checked, model, lease, run_budget)
        return run_id

    async def find_run(self, run_id: str, *, damaged_ok: bool = False) -> RunRow:
        """A run's journal row, by id or unique prefix (:class:`NotFoundError` otherwise); a
        damaged row is a :class:`JournalError` unless ``damaged_ok`` (removing it)."""
        return await self._row(run_id, damaged_ok=damaged_ok)

    def run_info(self, row: RunRow) -> RunInfo:
        """What a journal row says of its run (a live run no process holds shows as crashed)."""
        return self._info(row)

    def runs_here(self, run_id: str) -> bool:
        """Whether this engine is running the run right now."""
        return run_id in self._tasks

    async def start_recorded(self, run_id: str) -> str:
        """Start a run already recorded as ``pending`` (a fork, a replay: its steps may be copied in
        beforehand, and replay like a resume's); returns the run id."""
        row = await self._row(run_id)
        lease = self._lease(row.id)
        await lease.claim()
        self._launch(row.id, row.workflow, row.inputs, row.model, lease, row.budget)
        return row.id

    async def start_dynamic(self, spec: dict[str, Any], *, budget: dict[str, Any] | None = None) -> str:
        """Record and start a dynamic run (``task``/``chain``/``parallel`` of the workflow tool):
        a real run whose workflow is ``dynamic:<short id>``, rebuilt from its inputs on resume."""
        from loopcraft.engine.dynamic import PREFIX, build_workflow

        run_id = new_run_id()
        name = PREFIX + short_id(run_id)
        wf = build_workflow(name, spec)
        checked = wf.validate_inputs({"spec": spec})
        run_budget = check_budget(budget)
        await self.journal.create_run(run_id, name, checked, budget=run_budget)
        lease = self._lease(run_id)
        await lease.claim()
        self._launch(run_id, name, checked, None, lease, run_budget)
        return run_id

    def workflow_of(self, name: str, inputs: dict[str, Any]) -> Workflow:
        """The workflow a run of ``name`` runs: a file's or registered one, or a dynamic run's
        generated one (rebuilt from the run's inputs)."""
        from loopcraft.engine.dynamic import build_workflow, is_dynamic

        if is_dynamic(name):
            return build_workflow(name, inputs.get("spec") or {})
        return self.workflows().get(name)

    async def run(self, name: str, inputs: dict[str, Any], **options: Any) -> RunInfo:
        """:meth:`start` (same options) and :meth:`wait` for the run's end."""
        return await self.wait(await self.start(name, inputs, **options))

    async def resume(
        self, run_id: str, message: str | None = None, *, budget: dict[str, Any] | None = None
    ) -> RunInfo:
        """Resume a run.

        A paused run owned by a live process (this one or another) is sent a resume command
        (``message`` steers the stopped stages) and its current state returned at once. Any other
        unfinished run is re-executed here from the top, replaying its journal, and awaited;
        exactly one of several concurrent resumers wins, the others get :class:`RunBusy`.
        ``budget`` raises the run's limits (a ``budget_exceeded`` run continues with it)."""
        row = await self._row(run_id)
        if row.status == "completed":
            raise RunStateError(
                f"run {row.id} is already completed; nothing to resume (`loopcraft show {row.id}` shows it)"
            )
        if row.status == "killed":
            raise RunStateError(f"run {row.id} was killed; killed runs cannot be resumed")
        if row.id in self._tasks or (row.status in _LIVE_STATES and held(row)):
            if budget:
                raise RunStateError(f"run {row.id} is running; raise its budget when it has stopped")
            stopped = any(r.status == "paused" for r in await self.journal.load_steps(row.id))
            if row.status == "paused" or stopped or message:
                await post(self.journal, row.id, "resume", message=message or "")
                self._poke(row.id)
                return self._info(row)
            if row.id in self._tasks:
                return await self.wait(row.id)
            raise RunBusy(f"run {row.id} is being run by {row.owner}; wait for it, or stop it first")
        steps = await self.intact_steps(row.id)  # a damaged step is never replayed
        self.workflow_of(row.workflow, row.inputs)
        run_budget = merge_budget(row.budget, check_budget(budget))
        try:  # checked before anything is written (a budget recorded by an older version may be bad)
            check_budget(run_budget, f"budget of run {row.id}")
        except BudgetError as exc:
            raise BudgetError(f"{exc}; resume it with a valid `--budget`") from None
        lease = self._lease(row.id)
        await lease.claim()
        if budget:
            await self.journal.update_run(row.id, budget=run_budget)
        if message:
            await post(self.journal, row.id, "steer", message=message)
        elif budget and row.status == "budget_exceeded":
            await post(self.journal, row.id, "steer", message=BUDGET_RAISED, only_stopped=True)
        await self.journal.update_run(row.id, error=None, finished=None)
        self._launch(
            row.id, row.workflow, row.inputs, row.model, lease, run_budget, check_budget(budget), steps
        )
        return await self.wait(row.id)

    async def wait(self, run_id: str) -> RunInfo:
        row = await self._row(run_id)
        task = self._tasks.get(row.id)
        if task is not None:
            await asyncio.shield(task)
        return await self.get_run(row.id)

    def _lease(self, run_id: str) -> Lease:
        return Lease(self.journal, run_id, new_owner_id(), self.config.engine.lease_seconds)

    def _launch(
        self,
        run_id: str,
        name: str,
        inputs: dict[str, Any],
        model: str | None,
        lease: Lease | None = None,
        budget: dict[str, Any] | None = None,
        raised: dict[str, Any] | None = None,
        steps: list[StepRow] | None = None,
    ) -> None:
        execution = Execution(
            journal=self.journal,
            bus=self.bus,
            config=self.config,
            runner=self.runner,
            workspace=self.root,
            run_id=run_id,
            workflow=self.workflow_of(name, inputs),
            inputs=inputs,
            run_model=model,
            catalog=self.workflows(),
            lease=lease,
            budget=budget,
            stop_at_gates=self.stop_at_gates,
            raised_budget=raised,
            steps=steps,
        )
        self._executions[run_id] = execution
        task = asyncio.ensure_future(execution.execute())
        self._tasks[run_id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._tasks.pop(run_id, None)
            self._executions.pop(run_id, None)

        task.add_done_callback(done)

    # -- inspection ------------------------------------------------------------------------

    async def _row(self, run_id: str, *, damaged_ok: bool = False) -> RunRow:
        """The run named by its id, or a unique prefix (3+ characters) of its id or its short handle;
        a damaged row is a :class:`JournalError` (exit 8) saying what is damaged, unless ``damaged_ok``."""
        row = await self.journal.get_run(run_id)
        matches: list[RunRow] = []
        if row is None:
            matches = await self.journal.find_runs(run_id) if len(run_id) >= 3 else []
            row = matches[0] if len(matches) == 1 else None
        if row is not None:
            if row.damage and not damaged_ok:
                raise JournalError(self._damaged(row.id, row.damage))
            return row
        if matches:
            raise LoopcraftError(
                f"run {run_id!r} is ambiguous: it matches {_handles(matches)}; give more of the id"
            )
        raise NotFoundError(f"unknown run {run_id!r}; `loopcraft runs` lists them")

    def _damaged(self, run_id: str, damage: list[str]) -> str:
        """The one line for a run whose journal rows cannot be read, and what to do about it."""
        return (
            f"run {run_id} is damaged in the journal {self.journal.path} ({'; '.join(damage)}); "
            f"restore the journal from a backup, or remove the run with `loopcraft rm {run_id}` "
            "(`loopcraft doctor --journal` checks the whole file)"
        )

    async def intact_steps(self, run_id: str) -> list[StepRow]:
        """The run's steps; a damaged one is a :class:`JournalError` naming the step and column."""
        steps = await self.journal.load_steps(run_id)
        bad = [f"step {s.key}: {', '.join(s.damage)}" for s in steps if s.damage]
        if bad:
            raise JournalError(self._damaged(run_id, bad))
        return steps

    def _info(self, row: RunRow) -> RunInfo:
        if row.damage:  # listed, never resumed: `show`/`resume` say what is damaged
            return RunInfo(
                id=row.id,
                workflow=row.workflow,
                status="damaged",
                inputs=row.inputs,
                output=None,
                error=f"damaged: {'; '.join(row.damage)}",
                created=row.created,
                updated=row.updated,
                elapsed=0.0,
                usage=Usage(),
                cost=0.0,
                model=row.model,
                damage=list(row.damage),
            )
        status = row.status
        if status in _LIVE_STATES and row.id not in self._tasks and not held(row):
            status = "crashed" if row.owner else status
        usage = Usage.from_dict(row.usage)
        end = row.finished or (row.updated if status in FINAL_STATES or status == "crashed" else time.time())
        return RunInfo(
            id=row.id,
            workflow=row.workflow,
            status=status,
            inputs=row.inputs,
            output=row.output,
            error=row.error,
            created=row.created,
            updated=row.updated,
            elapsed=max(0.0, end - row.created),
            usage=usage,
            cost=usage.cost_usd,
            model=row.model,
        )

    async def runs(self, limit: int = 50) -> list[RunInfo]:
        return [self._info(r) for r in await self.journal.list_runs(limit)]

    async def get_run(self, run_id: str) -> RunInfo:
        row = await self._row(run_id)
        info = self._info(row)
        if isinstance(row.output, dict) and set(row.output) == {"$file"}:
            info.output = json.loads(
                (state_dir(self.root) / "runs" / row.id / row.output["$file"]).read_text()
            )
        return info

    async def graph(self, run_id: str) -> Graph:
        from loopcraft.engine.artifacts import RunFiles

        row = await self._row(run_id)
        graph = await load_graph(self.journal, row.id, RunFiles(self.root, row.id))
        return apply_activity(graph, await load_activity(self.journal, row.id))

    async def live_view(self, run_id: str) -> tuple[RunInfo, Graph]:
        """The run and its graph as of now: while the run is unfinished (live in any process, or
        crashed), its open stages count what their transcripts say they spent so far."""
        info = await self.get_run(run_id)
        steps = await self.intact_steps(info.id)
        row = await self._row(info.id)
        if row.status in _LIVE_STATES:
            from loopcraft.engine.artifacts import RunFiles
            from loopcraft.engine.live_usage import with_live_usage
            from loopcraft.engine.steps.protocol import spent_total

            steps = with_live_usage(RunFiles(self.root, info.id), steps)
            info.usage = spent_total(steps)
            info.cost = info.usage.cost_usd
        graph = settle_ended(build_graph(info.id, steps), row.status, row.finished or row.updated)
        return info, apply_activity(graph, await load_activity(self.journal, info.id))

    async def stage_transcript(self, run_id: str, stage_key: str) -> list[dict[str, Any]]:
        """The stage's session entries (JSONL lines); the stage may be named by key or by name."""
        return read_transcript(await self.stage_transcript_path(run_id, stage_key))

    async def stage_transcript_path(self, run_id: str, stage_key: str) -> Path:
        """Where the stage's transcript is (it may not exist); named by key or by name."""
        row = await self._row(run_id)
        graph = await load_graph(self.journal, row.id)
        node = graph.find(stage_key)
        if node is None:
            names = ", ".join(sorted({n.name for n in graph.walk()})) or "none"
            raise NotFoundError(f"run {row.id} has no stage {stage_key!r}; stages: {names}")
        from loopcraft.engine.artifacts import RunFiles, session_key

        return RunFiles(self.root, row.id).session_path(session_key(node.kind, node.key))

    async def events(self, run_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
        row = await self._row(run_id)
        return await self.journal.events(row.id, after_seq)

    # -- run control (every command goes through the journal's mailbox) ---------------------

    async def _live_row(self, run_id: str, action: str) -> RunRow:
        """The run, which must be owned by a live process; else a ControlError and nothing changes."""
        row = await self._row(run_id)
        if row.id in self._tasks or (row.status in _LIVE_STATES and held(row)):
            return row
        status = self._info(row).status
        hint = (
            ""
            if status in ("completed", "killed")
            else f"; resume it with `loopcraft resume {short_id(row.id)}`"
        )
        raise RunStateError(f"cannot {action} run {row.id}: it is not running (status {status}){hint}")

    async def _stage_key(self, row: RunRow, stage: str | None, action: str, *, open_only: bool) -> str | None:
        if stage is None:
            return None
        from loopcraft.engine.control import control_key

        step = find_stage(await self.journal.load_steps(row.id), row.id, stage)
        if open_only and step.status not in ("running", "paused", "awaiting_input"):
            raise RunStateError(
                f"cannot {action} stage {step.name!r} of run {row.id}: it is {step.status}, not running"
            )
        return control_key(step)

    def _poke(self, run_id: str) -> None:
        execution = self._executions.get(run_id)
        if execution is not None:
            execution.control.poke()

    async def _send(
        self, run_id: str, kind: str, stage: str | None, action: str, message: str | None = None
    ) -> int:
        row = await self._live_row(run_id, action)
        key = await self._stage_key(row, stage, action, open_only=True)
        payload = {"message": message} if message is not None else {}
        mail_id = await post(self.journal, row.id, kind, stage_key=key, **payload)
        self._poke(row.id)
        return mail_id

    async def pause(self, run_id: str, stage: str | None = None) -> int:
        """Pause the run (or one stage) at its next safe point; returns the command's id."""
        return await self._send(run_id, "pause", stage, "pause")

    async def interrupt(self, run_id: str, stage: str | None = None) -> int:
        """Cancel the in-flight model call or tool now; the run (or stage) waits, resumable."""
        return await self._send(run_id, "interrupt", stage, "interrupt")

    async def steer(self, run_id: str, stage: str | None, message: str) -> int:
        """A message to a running stage (every live stage when ``stage`` is None), after its tool batch."""
        if not message.strip():
            raise ControlError("a steering message cannot be empty")
        return await self._send(run_id, "steer", stage, "steer", message)

    async def follow_up(self, run_id: str, stage: str | None, message: str) -> int:
        """A message given to a stage when it would otherwise stop."""
        if not message.strip():
            raise ControlError("a follow-up message cannot be empty")
        return await self._send(run_id, "follow_up", stage, "follow up", message)

    async def kill(self, run_id: str, *, wait: float = 5.0) -> RunInfo:
        """End the run for good: in-flight work is cancelled, it is never resumed.

        A run owned by a live process is sent a kill command (waited for up to ``wait`` seconds);
        a stopped one is marked killed here."""
        row = await self._row(run_id)
        if row.status in ("completed", "killed"):
            raise RunStateError(f"cannot kill run {row.id}: it is already {row.status}")
        if row.id in self._tasks or (row.status in _LIVE_STATES and held(row)):
            await post(self.journal, row.id, "kill")
            self._poke(row.id)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                task = self._tasks.get(row.id)
                if task is not None:
                    await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()))
                fresh = await self._row(row.id)
                if fresh.status == "killed":
                    break
                await asyncio.sleep(self.config.engine.poll_seconds / 2)
            return await self.get_run(row.id)
        lease = self._lease(row.id)
        await lease.claim(status="killed")
        await self.journal.close_open_steps(row.id, "the run was killed")
        await worktrees.discard_killed_run(self.root, row.id)
        await lease.release(status="killed", error="killed by the user", finished=time.time())
        return await self.get_run(row.id)

    # -- human gates (basics; run control builds on the mailbox) ---------------------------

    def stop_at_gate(self, run_id: str) -> bool:
        """Make a live run's waiting gate end it as ``needs_human`` (no one here can answer it,
        e.g. no editor for an editor gate); False when the run is not running here."""
        execution = self._executions.get(run_id)
        if execution is None:
            return False
        execution.stop_at_gates = True
        execution.answer_signal.set()  # the gate looks again at once
        return True

    async def prompts(self, run_id: str | None = None) -> list[PromptRow]:
        rid = (await self._row(run_id)).id if run_id else None
        return await self.journal.prompts(rid, pending_only=True)

    async def answer(self, run_id: str, prompt_id: str | None, value: Any) -> Any:
        """Answer a pending prompt (the only one when ``prompt_id`` is None); returns the typed answer."""
        row = await self._row(run_id)
        if row.status in CLOSED_RUN_STATES:
            raise RunStateError(
                f"cannot answer run {row.id}: it is {row.status}, so its gates take no answers"
            )
        pending = await self.journal.prompts(row.id, pending_only=True)
        if prompt_id is None:
            if not pending:
                raise NotFoundError(f"run {row.id} has no pending prompt: nothing to answer")
            if len(pending) != 1:
                raise NotFoundError(f"run {row.id} has {len(pending)} pending prompts; name one by id")
            prompt = pending[0]
        else:
            found = await self.journal.get_prompt(prompt_id)
            if found is None or found.run_id != row.id:
                raise NotFoundError(f"run {row.id} has no prompt {prompt_id!r}")
            prompt = found
        if prompt.status != "pending":
            raise RunStateError(f"prompt {prompt.id} is not pending: it was already answered")
        answer = normalize_answer(prompt.kind, value, prompt.options)
        if await self.journal.answer_prompt(prompt.id, answer):
            execution = self._executions.get(row.id)
            if execution is not None:
                execution.answer_signal.set()
            else:
                await post(self.journal, row.id, "answer", prompt_id=prompt.id)
                self.bus.publish(PromptAnswered(row.id, prompt.id, prompt.step_key, answer))
        else:
            raise RunStateError(
                f"prompt {prompt.id} is not pending: it was answered just now by someone else"
            )
        return answer
