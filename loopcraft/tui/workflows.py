"""The app's side of the workflow engine: owns the ``Engine``, turns its events into pane
updates, and implements the ``/workflow`` commands (also used by the agent's ``workflow``
tool, so both do exactly the same thing)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from rich.text import Text
from textual.css.query import NoMatches
from textual.widget import Widget

from loopcraft.engine.graph import check_outcome, verdict_outcome
from loopcraft.engine.journal import CLOSED_RUN_STATES
from loopcraft.engine.names import short_id, step_path
from loopcraft.errors import LoopcraftError, NotFoundError, error_line
from loopcraft.tui import commands
from loopcraft.tui.notices import RunNotices, flag_notice
from loopcraft.tui.panes.graph import GraphModel, GraphPane, model_from_graph
from loopcraft.tui.panes.prompts import PendingPrompt, PromptsPane
from loopcraft.tui.panes.runs import ACTIVE_STATES, STATUS_STYLE, RunsPane, format_elapsed, live_elapsed
from loopcraft.tui.panes.transcript import RoundRow, TranscriptPane

FLUSH_S = 0.05  # engine events are applied to the panes in batches, at most this often
FOLLOW_S = 1.0  # the journal is re-read this often: runs changed by other processes (a CLI kill)

if TYPE_CHECKING:
    from pathlib import Path

    from loopcraft.agent.tools.base import Tool
    from loopcraft.config import Config
    from loopcraft.engine.results import RunInfo
    from loopcraft.engine.service import Engine
    from loopcraft.tui.chat_session import ChatSession
    from loopcraft.tui.prompt_input import PromptInput

W = TypeVar("W", bound=Widget)


class LoopcraftApp(Protocol):
    """What the controller needs of the app (a protocol, so this module does not import the app)."""

    root: Path
    config: Config
    chat: ChatSession

    @property
    def log(self) -> Any: ...

    @property
    def input(self) -> PromptInput: ...

    @property
    def focused(self) -> Widget | None: ...

    def query_one(self, selector: str, expect_type: type[W]) -> W: ...

    def run_worker(self, work: Any, *, group: str = ..., exit_on_error: bool = ...) -> Any: ...

    def bell(self) -> None: ...

    def set_interval(self, interval: float, callback: Any = ...) -> Any: ...

    def push_screen(self, screen: Any, callback: Any = ...) -> Any: ...

    def notify(self, message: str, *, title: str = ..., severity: Any = ...) -> None: ...

    def show_side(self) -> None: ...

    def show_hints(self, *, attached: bool = False) -> None: ...

    def refresh_workflow_status(self, active_runs: int, pending_prompts: int) -> None: ...

    async def show_error(self, message: str) -> None: ...

    async def show_info(self, message: str, kind: str = "info") -> None: ...


class _Pane(Generic[W]):
    """A read-only attribute: the app's pane with this id, e.g. ``_Pane("runs", RunsPane)``."""

    def __init__(self, pane_id: str, kind: type[W]) -> None:
        self.selector = f"#{pane_id}"
        self.kind = kind

    def __get__(self, controller: WorkflowController, owner: type | None = None) -> W:
        return controller.app.query_one(self.selector, self.kind)


class WorkflowController:
    """Engine + panes. ``open()`` after the first paint; ``close()`` on exit."""

    def __init__(self, app: LoopcraftApp, engine: Engine | None = None) -> None:
        self.app = app
        self.engine: Engine | None = engine
        self.graphs: dict[str, GraphModel] = {}
        self.selected: str | None = None  # the run the graph shows (it follows the newest run)
        self.picked: str | None = None  # the run the user chose (F2/Enter, attach, status RUN)
        self.attached: tuple[str, str] | None = None
        self._unsubscribe: Any = None
        self._events: list[Any] = []
        self._outcomes: set[str] = set()  # runs with a finished check or task: reread outcomes
        self._wake = asyncio.Event()
        self._follow: Any = None  # the timer of :meth:`_follow_journal`
        self._closing = False  # close() began: a tick still in flight must not touch the panes
        self.notices = RunNotices()  # what the chat said of each run's lifecycle
        self._sourced: set[str] = set()  # runs whose trigger (or none) has been looked up

    # ----- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        if self.engine is None:
            from loopcraft.engine.service import Engine

            self.engine = await Engine.open(self.app.root, self.app.config, client=self.app.chat._client)
        self._unsubscribe = self.engine.bus.subscribe(self._on_event)
        self.app.run_worker(self._pump(), group="workflow-events", exit_on_error=False)
        runs = await self.engine.runs()
        self.runs_pane.set_runs(runs)
        await self._read_sources(runs)
        if runs:
            self.app.show_side()
            await self.select(runs[0].id, picked=False)
        for prompt in await self._pending_prompts():
            await self.prompts_pane.add(prompt)
        self._status()
        self._follow = self.app.set_interval(FOLLOW_S, self._follow_journal)

    async def _follow_journal(self) -> None:
        """Re-read runs and pending prompts from the journal: another process (``loopcraft kill``,
        ``loopcraft answer``, a headless run) changes them without an event on this engine's bus."""
        if self.engine is None or self._closing:
            return
        try:
            runs = await self.engine.runs()
            pending = await self._pending_prompts()
        except Exception as exc:  # a busy or closing journal: try again next tick
            self.app.log.warning(f"re-reading the journal failed: {exc!r}")
            return
        try:
            await self._show_journal(runs, pending)
        except NoMatches:  # the app closed while the journal was read: its panes are gone
            return

    async def _show_journal(self, runs: list[RunInfo], pending: list[PendingPrompt]) -> None:
        if self._closing:
            return
        await self._read_sources(runs)
        for run in runs:
            known = self.runs_pane.runs.get(run.id)
            if known is None or (known.status, known.updated) != (run.status, run.updated):
                await self._run_changed(run)
                self._retitle(run.id)
        live = {p.prompt_id for p in pending}
        for prompt_id in [i for i in self.prompts_pane.pending if i not in live]:
            await self.prompts_pane.resolve(prompt_id)
        for prompt in pending:
            await self._offer(prompt)
        self._status()

    async def _read_sources(self, runs: list[Any]) -> None:
        """Look up which trigger started each run not looked up yet (the trigger inbox records it
        before the run exists, so once is enough) and mark those runs in the runs pane."""
        new = {run.id for run in runs} - self._sourced
        if not new or self.engine is None:
            return
        from loopcraft.triggers.inbox import run_sources

        try:
            sources = await asyncio.to_thread(run_sources, self.engine.journal.path)
        except LoopcraftError as exc:  # a busy inbox: try again next tick
            self.app.log.warning(f"reading the trigger inbox failed: {exc}")
            return
        self._sourced |= new
        self.runs_pane.set_sources({rid: s["trigger"] for rid, s in sources.items() if rid in new})

    async def _offer(self, prompt: PendingPrompt) -> None:
        """Show a newly pending prompt (once) and call the user to it."""
        if await self.prompts_pane.add(prompt):
            self.app.show_side()
            self.app.bell()
            self.app.notify(
                f"{prompt.question}  (F4 to answer)", title="loopcraft needs you", severity="warning"
            )

    async def close(self) -> None:
        self._closing = True
        if self._follow is not None:
            self._follow.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.engine is not None:
            await self.engine.close()

    @property
    def eng(self) -> Engine:
        if self.engine is None:
            raise LoopcraftError("the workflow engine is not open")
        return self.engine

    # ----- panes ---------------------------------------------------------------------------

    runs_pane = _Pane("runs", RunsPane)
    graph_pane = _Pane("graph", GraphPane)
    prompts_pane = _Pane("prompts", PromptsPane)
    transcript_pane = _Pane("transcript", TranscriptPane)

    def _status(self) -> None:
        self.app.refresh_workflow_status(self.runs_pane.active_count(), len(self.prompts_pane.pending))

    def total_cost(self) -> float:
        return sum(float(run.cost or 0.0) for run in self.runs_pane.runs.values())

    def completion_values(self) -> dict[str, list[str]]:
        names = self.eng.workflows().names() if self.engine else []
        return {"workflow": names, "run": [r.id for r in self.runs_pane.runs.values()]}

    async def select(self, run_id: str, *, picked: bool = True) -> None:
        """Show ``run_id``'s graph (loaded from the journal, then kept live by events). ``picked``:
        the user chose it, so answers go to it; the graph following the newest run is no choice
        (and moving off the chosen run forgets it)."""
        self.selected = run_id
        if picked:
            self.picked = run_id
        elif self.picked != run_id:
            self.picked = None
        try:
            graph = await self.eng.graph(run_id)
            model = model_from_graph(run_id, graph)
        except Exception:
            model = self.graphs.get(run_id) or GraphModel(run_id)
        live = self.graphs.get(run_id)
        if live is not None:  # events may have arrived before the journal load finished
            for key, node in live.nodes.items():
                model.nodes.setdefault(key, node)
        self.graphs[run_id] = model
        run = self.runs_pane.runs.get(run_id)
        model.hold(run is not None and run.status == "needs_human")
        self.graph_pane.show(model, _graph_title(run) if run else short_id(run_id))
        if run is not None:
            self._retitle(run_id)
        self.runs_pane.select(run_id)

    def _graph(self, run_id: str) -> GraphModel:
        return self.graphs.setdefault(run_id, GraphModel(run_id))

    # ----- events --------------------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        """Called by the engine for every event: queue it. :meth:`_pump` applies the queue in
        batches, at most every ``FLUSH_S``, so 16 streaming stages cost a few UI updates a
        second rather than thousands, and never hold up the app's own message queue (keys)."""
        self._events.append(event)
        self._wake.set()

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(FLUSH_S)
            self._wake.clear()
            try:
                await self._drain()
            except Exception as exc:  # the panes must keep following the engine whatever happens
                self.app.log.error(f"applying engine events failed: {exc!r}")

    async def _drain(self) -> None:
        events, self._events = self._events, []
        refresh: set[str] = set()
        attached: list[Any] = []
        for event in events:
            try:
                await self._apply(event, refresh, attached)
            except Exception as exc:  # a rendering problem must never break the engine
                self.app.log.error(f"event handling failed: {exc!r}")
        if attached:
            await self.transcript_pane.on_stage_events(attached)
        for run_id in refresh:
            await self._refresh_run(run_id)
            if self.selected is None or self.selected == run_id:
                self._retitle(run_id)
        outcomes, self._outcomes = self._outcomes, set()
        if self.selected in outcomes:
            await self._reread_outcomes(self.selected)
        self._status()

    async def _reread_outcomes(self, run_id: str) -> None:
        """Checks' outcomes, verdicts and parallel branches are in the journal's step outputs (events
        carry no outputs): copy them into the live graph."""
        try:
            graph = await self.eng.graph(run_id)
        except LoopcraftError:
            return
        model = self._graph(run_id)
        for item in graph.walk():
            node = model.nodes.get(item.key)
            if node is not None and item.info and node.info != item.info:
                node.info = dict(item.info)
        self._graph_changed(run_id)

    async def _apply(self, event: Any, refresh: set[str], attached: list[Any]) -> None:
        """Fold one engine event into the panes (run rows are refreshed once per batch)."""
        kind = getattr(event, "type", "")
        run_id = event.run_id
        if kind in ("run_status", "usage"):
            refresh.add(run_id)
        elif kind == "stage_added":
            node = self._graph(run_id).add(
                event.key, event.name, event.kind, event.parents, getattr(event, "info", None)
            )
            node.grants = list(getattr(event, "grants", None) or [])
            self._graph_changed(run_id)
        elif kind == "stage_status":
            node = self._graph(run_id).set_status(event.key, event.status, event.model, event.error)
            self._graph_changed(run_id)
            if event.status in ("completed", "failed") and node.kind in ("check", "task"):
                self._outcomes.add(run_id)
            if self.attached == (run_id, event.key):
                self.transcript_pane.set_title(event.status)
                if event.status == "failed" and event.error:
                    await self.transcript_pane.show_failure(event.error)
        elif kind == "stage_event":
            inner = event.event
            self._graph(run_id).saw_activity(event.key, getattr(inner, "kind", ""), inner)
            if getattr(inner, "kind", "") == "usage":
                total = inner.total
                self._graph(run_id).add_usage(event.key, total.total_tokens, total.cost_usd)
                self._graph_changed(run_id)
            if self.attached == (run_id, event.key):
                attached.append(inner)
        elif kind == "prompt_pending":
            prompt = PendingPrompt(
                event.prompt_id,
                run_id,
                event.key,
                event.kind,
                event.question,
                event.options,
                getattr(event, "default", None),
                self._workflow_of(run_id),
            )
            await self._offer(prompt)
        elif kind == "prompt_answered":
            await self.prompts_pane.resolve(event.prompt_id)
        elif kind == "stage_flag":
            self._graph(run_id).set_flag(event.key, event.flag, event.detail, event.until)
            self._graph_changed(run_id)
            await self.app.show_info(*flag_notice(self.stage_label(run_id, event.key), event))
        elif kind in ("budget_notice", "heartbeat"):
            await self.app.show_info(event.line, "warning" if kind == "budget_notice" else "info")

    def _graph_changed(self, run_id: str) -> None:
        if self.selected == run_id:
            self.graph_pane.mark_dirty()

    async def _refresh_run(self, run_id: str) -> None:
        try:
            run = await self.eng.get_run(run_id)
        except NotFoundError:
            return
        await self._run_changed(run)

    async def _run_changed(self, run: Any) -> None:
        before = self.runs_pane.runs.get(run.id)
        self.runs_pane.update_run(run)
        notice = self.notices.on_status(run, before.status if before is not None else None)
        if notice is not None:  # said once per change, however it is noticed (event or journal)
            await self.app.show_info(*notice)
        if run.status in CLOSED_RUN_STATES:  # its gates can take no answer: never offer them
            await self.prompts_pane.drop_run(run.id)
            if run.id in self.graphs:
                self.graphs[run.id].run_ended(run.status)
                self._graph_changed(run.id)
        elif run.id in self.graphs:  # needs_human: nobody executes it, its gates' clocks stop
            self.graphs[run.id].hold(run.status == "needs_human")
            self._graph_changed(run.id)
        self._status()

    def _retitle(self, run_id: str) -> None:
        run = self.runs_pane.runs.get(run_id)
        if run is not None and self.selected == run_id:
            self.graph_pane.set_title(_graph_title(run), _run_outcome(run))

    def _workflow_of(self, run_id: str) -> str:
        run = self.runs_pane.runs.get(run_id)
        return str(run.workflow) if run is not None else ""

    def stage_label(self, run_id: str, key: str) -> str:
        """A stage as people read it: ``demo › demo-review › synthesis``."""
        return step_path(key, self._workflow_of(run_id) or None)

    async def _pending_prompts(self) -> list[PendingPrompt]:
        rows = await self.eng.prompts()
        return [
            PendingPrompt(
                p.id,
                p.run_id,
                p.step_key,
                p.kind,
                p.question,
                p.options,
                p.default,
                self._workflow_of(p.run_id),
            )
            for p in rows
        ]

    # ----- operations (shared by /workflow and the agent's workflow tool) ----------------

    def list_text(self) -> str:
        from loopcraft.engine.workflow_tool import list_text

        return list_text(self.eng)

    async def run(self, name: str, inputs: dict[str, Any]) -> str:
        try:
            run_id = await self.eng.start(name, inputs)
        except LoopcraftError as exc:
            if str(exc).startswith("unknown workflow"):  # the app read the list at start
                raise LoopcraftError(
                    f"{exc}; a workflow file added since? /workflow reload re-reads them"
                ) from exc
            raise
        self.notices.started_here(run_id)
        await self.show_run(run_id)
        return run_id

    async def show_run(self, run_id: str) -> None:
        """A run started here (by /workflow or the agent's tool): into the panes, selected."""
        self.app.show_side()
        await self._refresh_run(run_id)
        await self.select(run_id, picked=False)

    async def start_and_say(self, name: str, inputs: dict[str, Any]) -> None:
        run_id = await self.run(name, inputs)
        await self.app.show_info(
            f"started {name} as run {short_id(run_id)} (F3: graph, Enter on a stage attaches)"
        )

    def ask_inputs(self, name: str, given: dict[str, Any]) -> bool:
        """Open the input form when ``name`` lacks required inputs (the run starts on Submit);
        False when nothing is missing, or the workflow is unknown (starting it says so)."""
        from loopcraft.tui.input_form import InputForm, missing_required

        try:
            workflow = self.eng.workflows().get(name)
        except LoopcraftError:
            return False
        if not missing_required(workflow, given):
            return False

        async def answered(inputs: dict[str, Any] | None) -> None:
            if inputs is None:
                await self.app.show_info(f"cancelled: {name} was not started")
                return
            try:
                await self.start_and_say(name, inputs)
            except LoopcraftError as exc:
                await self.app.show_error(str(exc))

        self.app.push_screen(InputForm(workflow, given), answered)
        return True

    def _run_or_selected(self, run_id: str | None) -> str:
        chosen = run_id or self.selected or (self.attached[0] if self.attached else None)
        if chosen is None:
            raise LoopcraftError("no run selected: give a run id (/workflow status lists them)")
        return self._full_id(chosen)

    def _full_id(self, prefix: str) -> str:
        """A run's id from its id, a unique prefix of it, or its short handle (``3ef009``)."""
        if prefix in self.runs_pane.runs:
            return prefix
        matches = [rid for rid in self.runs_pane.runs if rid.startswith(prefix) or short_id(rid) == prefix]
        return matches[0] if len(matches) == 1 else prefix

    async def status_text(self, run_id: str | None = None) -> str:
        if run_id is None:
            runs = await self.eng.runs()
            self.runs_pane.set_runs(runs)
            if not runs:
                return "no runs yet: /workflow run NAME starts one"
            return "\n".join(_run_line(run) for run in runs[:20])
        run = await self.eng.get_run(self._full_id(run_id))
        self.runs_pane.update_run(run)
        if self.selected != run.id:
            await self.select(run.id)
        self.picked = run.id  # naming a run picks it: a bare answer goes to it
        model = self.graphs.get(run.id)
        lines = [_run_line(run)]
        if run.error:
            lines.append(error_line(run.error))
        if model is not None:
            counts = ", ".join(f"{n} {state}" for state, n in sorted(model.counts().items()))
            lines.append(f"stages: {counts or 'none yet'}")
        if run.output is not None and run.status == "completed":
            lines.append(f"output: {str(run.output)[:500]}")
        return "\n".join(lines)

    async def attach(self, run_id: str, key: str | None = None) -> str:
        run_id = self._full_id(run_id)
        await self.select(run_id)
        model = self.graphs[run_id]
        if key is None:
            key = _default_stage(model)
            if key is None:
                raise LoopcraftError(f"run {short_id(run_id)} has no stages yet; try again in a moment")
        elif key not in model.nodes:
            matches = [k for k, n in model.nodes.items() if n.name == key or k.endswith(key)]
            if len(matches) != 1:
                names = ", ".join(n.name for n in model.nodes.values())
                raise NotFoundError(f"no single stage {key!r} in run {short_id(run_id)}; stages: {names}")
            key = matches[0]
        entries = await self.eng.stage_transcript(run_id, key)
        self.attached = (run_id, key)
        node = model.nodes[key]
        await self.transcript_pane.attach(
            run_id,
            key,
            entries,
            node.status,
            label=self.stage_label(run_id, key),
            run_label=short_id(run_id),
            error=node.error,
        )
        self.app.input.add_class("attached")
        self.app.show_hints(attached=True)
        return key

    def _attach_target(self, args: list[str]) -> tuple[str, str | None]:
        """``[RUN] [STAGE]``: one word is a run when it names one, else a stage of the selected run."""
        if len(args) == 2:
            return args[0], args[1]
        if args and (self._full_id(args[0]) in self.runs_pane.runs or self.selected is None):
            return args[0], None
        return self._run_or_selected(None), (args[0] if args else None)

    async def show_round(self, run_id: str, key: str) -> None:
        """Group ``key``'s review round (its checks and reviewers) as a table in the transcript pane."""
        model = self.graphs.get(run_id)
        group = model.nodes.get(key) if model is not None else None
        if model is None or group is None:
            return
        if self.attached is not None:
            await self.detach()
        rows: list[RoundRow] = []
        for child in model.children(key):
            for member in [child, *model.children(child.key)] if child.kind == "parallel" else [child]:
                row = _round_row(member)
                if row is not None:
                    rows.append(row)
        await self.transcript_pane.show_round(
            run_id, key, self.stage_label(run_id, key), short_id(run_id), rows, group.summary or ""
        )

    async def detach(self) -> None:
        focused = self.app.focused
        inside = focused is not None and self.transcript_pane in focused.ancestors_with_self
        self.attached = None
        await self.transcript_pane.detach()
        self.app.input.remove_class("attached")
        self.app.show_hints()
        if inside:  # the pane is hidden now: back to the prompt, not to no focus at all
            self.app.input.focus()

    async def pause(self, run_id: str | None = None) -> str:
        rid = self._run_or_selected(run_id)
        await self.eng.pause(rid)
        return rid

    async def resume(self, run_id: str | None = None, message: str | None = None) -> str:
        """Resume a paused run (a command to its owner) or a stopped one (re-run here, in the
        background: the engine's ``resume`` returns when such a run ends)."""
        rid = self._run_or_selected(run_id)
        run = await self.eng.get_run(rid)
        if run.status == "completed":
            raise LoopcraftError(f"run {short_id(rid)} is already completed; nothing to resume")
        if run.status == "killed":  # said now, not after "resuming run …"
            raise LoopcraftError(f"run {short_id(rid)} was killed; killed runs cannot be resumed")

        async def resume() -> None:
            try:
                await self.eng.resume(rid, message)
            except LoopcraftError as exc:
                await self.app.show_error(f"resume {short_id(rid)}: {exc}")

        self.app.run_worker(resume(), group="resume", exit_on_error=False)
        await self.select(rid)
        return rid

    async def interrupt(self, run_id: str | None = None) -> str:
        rid = self._run_or_selected(run_id)
        await self.eng.interrupt(rid)
        return rid

    async def kill(self, run_id: str | None = None) -> tuple[str, str]:
        """Kill the run (waiting a few seconds for it to stop); returns its id and status."""
        rid = self._run_or_selected(run_id)
        info = await self.eng.kill(rid)
        await self._run_changed(info)
        return rid, info.status

    async def steer(self, run_id: str, key: str | None, text: str) -> None:
        await self.eng.steer(self._full_id(run_id), key, text)

    async def steer_attached(self, text: str, *, follow_up: bool = False) -> None:
        """Send ``text`` to the attached stage: steering (Enter) or a follow-up (Alt+Enter)."""
        assert self.attached is not None
        run_id, key = self.attached
        try:
            if follow_up:
                await self.eng.follow_up(run_id, key, text)
            else:
                await self.steer(run_id, key, text)
        except LoopcraftError as exc:
            await self.app.show_error(str(exc))
            return
        await self.transcript_pane.view.add(_steer_note(text, follow_up=follow_up))

    def target_prompt(self, prompt_id: str | None = None) -> PendingPrompt:
        """The prompt an answer is for: the named one; else the picked or attached run's
        (oldest) prompt; else the only pending one of a live run. Several runs waiting and none
        chosen (the graph showing the newest run is no choice), or the only one in a crashed
        run: an error listing them, never a guess."""
        pending = list(self.prompts_pane.pending.values())
        if prompt_id:
            found = self.prompts_pane.pending.get(prompt_id)
            if found is None:
                raise NotFoundError(f"no pending prompt {prompt_id!r}")
            return found
        if not pending:
            raise NotFoundError("no pending prompt")
        for run_id in (self.attached[0] if self.attached else None, self.picked):
            mine = [p for p in pending if p.run_id == run_id]
            if mine:
                return mine[0]
        live = [p for p in pending if self._live(p.run_id)]
        if len({p.run_id for p in pending}) == 1 and live:
            return live[0]
        raise LoopcraftError(which_prompt(pending))

    def _live(self, run_id: str) -> bool:
        """Can the run take an answer on its own (not crashed or ended)?"""
        run = self.runs_pane.runs.get(run_id)
        return run is None or run.status in ACTIVE_STATES or run.status == "needs_human"

    async def answer(self, answer: Any, prompt_id: str | None = None) -> tuple[PendingPrompt, Any]:
        """Answer the :meth:`target_prompt`; returns it and the typed answer the engine took."""
        if prompt_id and prompt_id not in self.prompts_pane.pending:
            await self._not_pending(prompt_id)
        prompt = self.target_prompt(prompt_id)
        try:
            value = await self.eng.answer(prompt.run_id, prompt.prompt_id, _coerce(prompt, answer))
        except LoopcraftError:
            if not any(p.id == prompt.prompt_id for p in await self.eng.prompts(prompt.run_id)):
                await self.prompts_pane.resolve(prompt.prompt_id)  # gone: answered elsewhere, or run ended
                self._status()
            raise
        await self.prompts_pane.resolve(prompt.prompt_id)
        self._status()
        return prompt, value

    async def _not_pending(self, prompt_id: str) -> None:
        """Why ``prompt_id`` takes no answer, in the CLI's words (answered already, its run ended)."""
        found = await self.eng.journal.get_prompt(prompt_id)
        if found is not None and found.status != "pending":
            raise LoopcraftError(f"prompt {found.id} is not pending: it was already answered")
        if found is not None:
            run = await self.eng.get_run(found.run_id)
            if run.status in CLOSED_RUN_STATES:
                raise LoopcraftError(
                    f"cannot answer run {short_id(run.id)}: it is {run.status}, so its gates take no answers"
                )
        raise NotFoundError(f"no pending prompt {prompt_id!r}")

    def focus_prompt(self, prompt_id: str | None = None) -> None:
        """Focus the answer widget of the :meth:`target_prompt` (F4, a bare /workflow answer)."""
        prompt = self.target_prompt(prompt_id)
        self.app.show_side()
        self.prompts_pane.focus_first(prompt.prompt_id)

    async def confirm_answer(self, prompt: PendingPrompt, value: Any) -> None:
        """Say in the chat what was answered, for which run."""
        shown = "yes" if value is True else "no" if value is False else str(value)
        run = self.runs_pane.runs.get(prompt.run_id)
        name = f"{run.workflow} " if run is not None else ""
        after = ""
        if run is not None and run.status == "needs_human":  # no one runs it: it waits for a resume
            after = f"; continue it with /workflow resume {short_id(prompt.run_id)}"
        await self.app.show_info(
            f"answered {prompt.question!r} → {shown} · run {name}{short_id(prompt.run_id)}{after}"
        )

    async def reload(self) -> str:
        catalog = self.eng.workflows(reload=True)
        broken = f", {len(catalog.errors)} broken" if catalog.errors else ""
        return f"{len(catalog.list())} workflows loaded{broken}"

    # ----- /workflow commands ------------------------------------------------------------

    async def command(self, cmd: commands.ParsedCommand) -> None:
        app = self.app
        sub = cmd.name.split(" ", 1)[1]
        if sub == "list":
            await app.show_info(self.list_text(), "help")
        elif sub == "run":
            inputs = commands.parse_inputs(cmd.args[1:], commands.get_spec(cmd.name).usage)
            if not self.ask_inputs(cmd.args[0], inputs):
                await self.start_and_say(cmd.args[0], inputs)
        elif sub == "status":
            await app.show_info(await self.status_text(cmd.arg(0)), "help")
        elif sub == "attach":
            run_id, stage = self._attach_target(cmd.args)
            key = await self.attach(run_id, stage)
            label = self.stage_label(self._full_id(run_id), key)
            status = self.graphs[self._full_id(run_id)].nodes[key].status
            run = self.runs_pane.runs.get(self._full_id(run_id))
            live = status in ("running", "awaiting_input", "paused", "pending") and (
                run is None or run.status in ACTIVE_STATES
            )
            doing = "typing steers it" if live else f"it is {status.replace('_', ' ')}: its transcript only"
            await app.show_info(f"attached to {label}: {doing}; /workflow detach returns to the chat")
        elif sub == "detach":
            await self.detach()
            await app.show_info("detached: typing talks to the chat agent again")
        elif sub == "pause":
            await app.show_info(
                f"pausing run {short_id(await self.pause(cmd.arg(0)))} at its next safe point"
            )
        elif sub == "resume":
            await app.show_info(
                f"resuming run {short_id(await self.resume(cmd.arg(0), cmd.options.get('message')))}"
            )
        elif sub == "interrupt":
            await app.show_info(f"interrupting run {short_id(await self.interrupt(cmd.arg(0)))}")
        elif sub == "kill":
            rid, status = await self.kill(cmd.arg(0))
            await app.show_info(
                f"killed run {short_id(rid)}"
                if status == "killed"
                else f"kill sent to run {short_id(rid)} ({status})"
            )
        elif sub == "answer":
            if not cmd.args:  # focus the prompt's card, and say so: the next keys answer it
                prompt = self.target_prompt(cmd.options.get("prompt"))
                self.focus_prompt(prompt.prompt_id)
                await app.show_info(
                    f"answering {prompt.question!r} (run {short_id(prompt.run_id)}) in the prompts pane: "
                    "y / n (select: ↑↓ Enter; text: type, Enter); F5 goes back to the prompt"
                )
                return
            prompt, value = await self.answer(" ".join(cmd.args), cmd.options.get("prompt"))
            await self.confirm_answer(prompt, value)
        elif sub == "reload":
            await app.show_info(await self.reload())
        elif sub == "promote":
            from loopcraft.engine.promote import promote

            run = await self.eng.get_run(self._full_id(cmd.arg(0) or ""))
            path = promote(app.root, run, cmd.arg(1) or "", force=cmd.arg(2) == "force")
            self.eng.workflows(reload=True)
            await app.show_info(f"wrote {path}; /workflow run {cmd.arg(1)} request=… runs it")

    async def on_prompt_answer(self, message: PromptsPane.Answer) -> None:
        try:
            prompt, value = await self.answer(message.answer, message.prompt.prompt_id)
        except LoopcraftError as exc:
            await self.app.show_error(str(exc))
            return
        await self.confirm_answer(prompt, value)
        self.app.input.focus()

    def agent_tool(self) -> Tool:
        """The engine's ``workflow`` tool, with this controller as its human side."""
        from loopcraft.engine.workflow_tool import WorkflowTool, session_remaining

        agent = self.app.config.agent
        limits: dict[str, float | None] = {"tokens": agent.max_tokens, "dollars": agent.max_dollars}

        def remaining() -> dict[str, float]:
            spent = self.app.chat.usage
            return session_remaining(limits, spent.total_tokens, spent.cost_usd)

        return WorkflowTool(self.eng, _ToolHost(self), remaining=remaining)


class _ToolHost:
    """The app's side of the workflow tool: runs shown in the panes, answers through them."""

    def __init__(self, controller: WorkflowController) -> None:
        self.wf = controller

    async def run_started(self, run_id: str) -> None:
        await self.wf.show_run(run_id)

    def pick_run(self, run_id: str | None) -> str:
        return self.wf._run_or_selected(run_id)

    async def status_text(self, run_id: str | None) -> str | None:
        return await self.wf.status_text(run_id)

    async def answer(self, answer: Any, prompt_id: str | None) -> str:
        prompt, value = await self.wf.answer(answer, prompt_id)
        await self.wf.confirm_answer(prompt, value)
        return f"answered prompt {prompt.prompt_id} ({prompt.question}) with {value!r}"

    async def resume(self, run_id: str, message: str | None) -> str:
        return await self.wf.resume(run_id, message)


def which_prompt(pending: list[PendingPrompt]) -> str:
    """Several runs wait and none is chosen: one short line per prompt, and how to pick one."""
    lines = [f"  run {short_id(p.run_id)} · prompt {p.prompt_id} · {_clip(p.question, 48)}" for p in pending]
    return (
        f"{len(pending)} prompts are pending in several runs; pick one: F2 to select its run, "
        "or /workflow answer --prompt ID VALUE\n" + "\n".join(lines)
    )


def _clip(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _graph_title(run: Any) -> str:
    return f"{run.workflow} · {short_id(run.id)} · {run.status.replace('_', ' ')}"


def _run_outcome(run: Any) -> Text:
    """How a run ended, for the graph's header: ``blocked — the plan was not approved``."""
    if run.status in ACTIVE_STATES or (run.status == "completed" and not run.error):
        return Text("")
    style = STATUS_STYLE.get(run.status, "")
    text = Text(run.status.replace("_", " "), style=style)
    if run.error:
        text.append(f" — {run.error}")
    return text


def _round_row(node: Any) -> RoundRow | None:
    """A review round's row for a reviewer (its verdict) or a check (its outcome)."""
    check = check_outcome(node.info)
    if check is not None:
        return RoundRow(f"{node.name} (check)", check)
    verdict = node.info.get("verdict")
    if not verdict:
        return None
    word = (verdict_outcome(node.info) or "").split(" · ")[0]
    return RoundRow(node.name, word, int(verdict.get("blockers") or 0), str(verdict.get("top") or ""))


def _run_line(run: Any) -> str:
    return (
        f"{short_id(run.id)}  {run.workflow:<16} {run.status:<15} {format_elapsed(live_elapsed(run)):>8}  "
        f"${float(run.cost or 0.0):.4f}"
    )


def _default_stage(model: GraphModel) -> str | None:
    """The stage to attach to: a running one, else the last task."""
    tasks = [n for n in model.nodes.values() if n.kind in ("task", "stage") and n.status != "queued"]
    running = [n for n in tasks if n.status in ("running", "awaiting_input")]
    chosen = running[-1] if running else (tasks[-1] if tasks else None)
    return chosen.key if chosen else None


def _coerce(prompt: PendingPrompt, answer: Any) -> Any:
    """Typed answers: confirm takes yes/no words; select takes an option or its number."""
    if prompt.kind == "confirm" and isinstance(answer, str):
        word = answer.strip().lower()
        if word in ("y", "yes", "true", "1", "ok", "approve"):
            return True
        if word in ("n", "no", "false", "0", "reject"):
            return False
        raise LoopcraftError(f"answer yes or no to: {prompt.question}")
    if prompt.kind == "select" and isinstance(answer, str) and prompt.options:
        options = [str(o) for o in prompt.options]
        if answer in options:
            return prompt.options[options.index(answer)]
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return prompt.options[int(answer) - 1]
        raise LoopcraftError(f"choose one of: {', '.join(options)}")
    return answer


def _steer_note(text: str, *, follow_up: bool = False) -> Any:
    from loopcraft.tui.chat import UserMessage

    return UserMessage(f"({'follow-up' if follow_up else 'steer'}) {text}")


__all__ = ["ACTIVE_STATES", "WorkflowController"]
