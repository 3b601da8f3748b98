"""The engine facade the CLI and the TUI use: open the journal, find workflows, start, wait for,
resume and inspect runs, answer prompts. One :class:`Engine` per process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from loopcraft.config import Config
from loopcraft.engine.definition import Workflow
from loopcraft.engine.discovery import WorkflowCatalog, discover
from loopcraft.engine.events import EventBus, PromptAnswered
from loopcraft.engine.gates import normalize_answer
from loopcraft.engine.graph import Graph, load_graph
from loopcraft.engine.journal import Journal, PromptRow, RunRow
from loopcraft.engine.results import FINAL_STATES, RunInfo
from loopcraft.engine.runtime import Execution, owner_id
from loopcraft.engine.tasks import TaskRunner
from loopcraft.errors import LoopcraftError, NotFoundError
from loopcraft.models.client import ModelClient
from loopcraft.models.types import Usage
from loopcraft.paths import state_dir

_LIVE_STATES = frozenset({"pending", "running", "awaiting_input", "paused"})


def db_path(root: Path) -> Path:
    """The journal file: ``LOOPCRAFT_DB`` if set, else ``.loopcraft/loopcraft.db`` in the repo."""
    env = os.environ.get("LOOPCRAFT_DB")
    return Path(env) if env else state_dir(root) / "loopcraft.db"


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _owner_alive(owner: str | None) -> bool:
    """Whether the owning process still exists (only decidable on this host; else trust the lease)."""
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        journal = await Journal.open(db_path(root), busy_timeout=busy_timeout)
        if runner is None:
            from loopcraft.engine.agent_runner import AgentTaskRunner

            runner = AgentTaskRunner(config, client)
        return cls(root, config, journal, runner, client)

    async def close(self) -> None:
        """Stop in-flight runs of this process (they stay resumable) and close the journal."""
        for task in list(self._tasks.values()):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
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
        self, name: str, inputs: dict[str, Any], *, model: str | None = None, cli_strings: bool = False
    ) -> str:
        """Validate, record the run and start it in the background; returns the run id."""
        wf = self.workflows().get(name)
        checked = wf.coerce_cli_inputs(inputs) if cli_strings else wf.validate_inputs(inputs)
        if model is not None:
            from loopcraft.models.spec import parse_model

            parse_model(model)
        run_id = new_run_id()
        await self.journal.create_run(run_id, wf.name, checked, model=model)
        self._launch(run_id, wf.name, checked, model)
        return run_id

    async def run(
        self, name: str, inputs: dict[str, Any], *, model: str | None = None, cli_strings: bool = False
    ) -> RunInfo:
        return await self.wait(await self.start(name, inputs, model=model, cli_strings=cli_strings))

    async def resume(self, run_id: str) -> RunInfo:
        """Re-execute a run from the top, replaying its journal; a finished run is returned as is."""
        row = await self._row(run_id)
        if row.id in self._tasks:
            return await self.wait(row.id)
        if row.status == "completed":
            return self._info(row)
        if row.status == "killed":
            raise LoopcraftError(f"run {row.id} was killed; killed runs cannot be resumed")
        if (
            row.status in _LIVE_STATES
            and row.owner not in (None, owner_id())
            and _owner_alive(row.owner)
            and (row.lease_expires or 0) > time.time()
        ):
            raise LoopcraftError(f"run {row.id} is being run by {row.owner}; wait for it or stop it first")
        self.workflows().get(row.workflow)
        await self.journal.update_run(row.id, error=None, finished=None)
        self._launch(row.id, row.workflow, row.inputs, row.model)
        return await self.wait(row.id)

    async def wait(self, run_id: str) -> RunInfo:
        row = await self._row(run_id)
        task = self._tasks.get(row.id)
        if task is not None:
            await asyncio.shield(task)
        return await self.get_run(row.id)

    def _launch(self, run_id: str, name: str, inputs: dict[str, Any], model: str | None) -> None:
        execution = Execution(
            journal=self.journal,
            bus=self.bus,
            config=self.config,
            runner=self.runner,
            workspace=self.root,
            run_id=run_id,
            workflow=self.workflows().get(name),
            inputs=inputs,
            run_model=model,
            catalog=self.workflows(),
        )
        self._executions[run_id] = execution
        task = asyncio.ensure_future(execution.execute())
        self._tasks[run_id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._tasks.pop(run_id, None)
            self._executions.pop(run_id, None)

        task.add_done_callback(done)

    # -- inspection ------------------------------------------------------------------------

    async def _row(self, run_id: str) -> RunRow:
        row = await self.journal.get_run(run_id)
        if row is not None:
            return row
        matches = await self.journal.find_runs(run_id) if len(run_id) >= 4 else []
        if len(matches) == 1:
            return matches[0]
        hint = "; several runs start with that" if matches else "; `loopcraft runs` lists them"
        raise NotFoundError(f"unknown run {run_id!r}{hint}")

    def _info(self, row: RunRow) -> RunInfo:
        status = row.status
        if (
            status in _LIVE_STATES
            and row.id not in self._tasks
            and not (_owner_alive(row.owner) and (row.lease_expires or 0) > time.time())
        ):
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
        row = await self._row(run_id)
        return await load_graph(self.journal, row.id)

    async def stage_transcript(self, run_id: str, stage_key: str) -> list[dict[str, Any]]:
        """The stage's session entries (JSONL lines); the stage may be named by key or by name."""
        row = await self._row(run_id)
        graph = await load_graph(self.journal, row.id)
        node = graph.find(stage_key)
        if node is None:
            names = ", ".join(sorted({n.name for n in graph.walk()})) or "none"
            raise NotFoundError(f"run {row.id} has no stage {stage_key!r}; stages: {names}")
        from loopcraft.engine.artifacts import RunFiles

        path = RunFiles(self.root, row.id).session_path(node.key)
        if not path.is_file():
            return []
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                break
        return entries

    async def events(self, run_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
        row = await self._row(run_id)
        return await self.journal.events(row.id, after_seq)

    async def usage_by_workflow(self) -> dict[str, dict[str, Any]]:
        return await self.journal.usage_by_workflow()

    # -- human gates (basics; run control builds on the mailbox) ---------------------------

    async def prompts(self, run_id: str | None = None) -> list[PromptRow]:
        rid = (await self._row(run_id)).id if run_id else None
        return await self.journal.prompts(rid, pending_only=True)

    async def answer(self, run_id: str, prompt_id: str | None, value: Any) -> Any:
        """Answer a pending prompt (the only one when ``prompt_id`` is None); returns the typed answer."""
        row = await self._row(run_id)
        pending = await self.journal.prompts(row.id, pending_only=True)
        if prompt_id is None:
            if len(pending) != 1:
                raise NotFoundError(f"run {row.id} has {len(pending)} pending prompts; name one by id")
            prompt = pending[0]
        else:
            found = await self.journal.get_prompt(prompt_id)
            if found is None or found.run_id != row.id:
                raise NotFoundError(f"run {row.id} has no prompt {prompt_id!r}")
            prompt = found
        if prompt.status != "pending":
            raise LoopcraftError(f"prompt {prompt.id} was already answered")
        answer = normalize_answer(prompt.kind, value, prompt.options)
        if await self.journal.answer_prompt(prompt.id, answer):
            execution = self._executions.get(row.id)
            if execution is not None:
                execution.answer_signal.set()
            else:
                self.bus.publish(PromptAnswered(row.id, prompt.id, prompt.step_key, answer))
        return answer
