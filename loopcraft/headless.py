"""Headless presentation of the engine for ``loopcraft run/resume/runs/show/workflows``:
a live progress printer on the engine's event bus, final summaries, tables and JSON."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from loopcraft.config import Config
from loopcraft.engine.activity import ago, clock, flag_text
from loopcraft.engine.artifacts import session_key
from loopcraft.engine.events import (
    BudgetNotice,
    EngineEvent,
    Heartbeat,
    LoopNote,
    PromptPending,
    StageAdded,
    StageFlag,
    StageStatus,
)
from loopcraft.engine.gates import AnswerError
from loopcraft.engine.graph import Graph, GraphNode, check_outcome, display_status, parallel_name
from loopcraft.engine.names import short_id, step_names, step_path
from loopcraft.engine.results import RunInfo
from loopcraft.engine.service import Engine
from loopcraft.engine.steps.stage import TranscriptScan
from loopcraft.errors import LoopcraftError, error_line

ICONS = {
    "pending": "·",
    "running": "▶",
    "awaiting_input": "?",
    "paused": "‖",
    "completed": "✓",
    "failed": "✗",
    "skipped": "-",
    "blocked": "■",
    "needs_human": "?",
    "budget_exceeded": "$",
    "cancelled": "⊘",
    "killed": "⊘",
    "crashed": "!",
    "damaged": "!",
}


def _dump(data: Any, out: TextIO = sys.stdout) -> None:
    """Every ``--json`` output goes through here: :mod:`loopcraft.jsonout`'s convention."""
    from loopcraft.jsonout import dumps

    out.write(dumps(data) + "\n")


def _money(dollars: float) -> str:
    return f"${dollars:.4f}" if dollars < 1 else f"${dollars:.2f}"


def _elapsed(seconds: float) -> str:
    seconds = max(0.0, seconds)  # never "-0.0s" (clock steps, a start time never seen)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def stage_seconds(started: float | None, finished: float | None, now: float | None = None) -> float:
    """A stage's duration from its journal times (unfinished: until ``now``): the one measure
    ``run``, ``resume`` and ``show`` print, so a gate or a paused stage reads the same in all three."""
    if started is None:
        return 0.0
    return max(0.0, (finished if finished is not None else (now or time.time())) - started)


class ProgressPrinter:
    """Prints one line per stage start/finish, run status change and pending prompt; stages are
    named by their path below the run's workflow (``demo-review › synthesis``)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.names: dict[str, str] = {}
        self.started: dict[str, float] = {}

    def __call__(self, event: EngineEvent) -> None:
        line = self._line(event)
        if line:
            self.out.write(line + "\n")
            self.out.flush()

    def _name(self, key: str) -> str:
        return step_path(key) if step_names(key) else self.names.get(key, key)

    def _line(self, event: EngineEvent) -> str | None:
        if isinstance(event, StageAdded):
            self.names[event.key] = event.name
            return None
        if isinstance(event, StageStatus):
            name = self._name(event.key)
            if event.status == "running":
                # a resumed stage (a gate answered, a paused stage continued) keeps its first start
                start = event.started or self.started.get(event.key) or time.time()
                self.started[event.key] = start
                return f"  {ICONS['running']} {name}" + (f"  [{event.model}]" if event.model else "")
            # a stage waiting at a gate or paused keeps its start: its final line shows the whole time
            keep = event.status in ("awaiting_input", "paused")
            known = (self.started.get if keep else self.started.pop)(event.key, None)
            took = stage_seconds(event.started or known, event.finished)
            tail = f": {event.error}" if event.error else ""
            return f"  {ICONS.get(event.status, '?')} {name}  {event.status} {_elapsed(took)}{tail}"
        if isinstance(event, LoopNote):
            return f"  {event.line}"
        if isinstance(event, StageFlag):
            return self._flag_line(event)
        if isinstance(event, BudgetNotice):
            return f"  $ {event.line}"
        if isinstance(event, Heartbeat):
            return f"  · {event.line}"
        if isinstance(event, PromptPending):
            return (
                f"  ? {event.question}  (answer with: loopcraft answer {short_id(event.run_id)} "
                f"{event.prompt_id} VALUE)"
            )
        # run status changes are not printed: the summary at the end says how the run ended
        return None

    def _flag_line(self, event: StageFlag) -> str:
        name = self._name(event.key)
        if event.flag == "stalled":
            return f"  ! {name}  stalled: {event.detail}"
        if event.flag == "waiting" and event.until is not None:
            return f"  … {name}  waiting until {clock(event.until)} ({event.detail}); it continues on its own"
        return f"  {ICONS['running']} {name}  {event.detail or 'active again'}"


# the statuses a `loopcraft resume` can move on (blocked, failed, completed, killed cannot)
RESUME_HINTS = {
    "needs_human": "answer it (`loopcraft prompts`), then `loopcraft resume {id}`",
    "awaiting_input": "answer it (`loopcraft prompts`), then `loopcraft resume {id}`",
    "budget_exceeded": "loopcraft resume {id} --budget …",
    "paused": "loopcraft resume {id}",
    "crashed": "loopcraft resume {id}",
    "pending": "loopcraft resume {id}",
}


def summary_lines(info: RunInfo) -> list[str]:
    """The run's one summary line, its output and, when resuming can help, how; the error
    goes to stderr (:func:`print_summary`)."""
    head = (
        f"run {info.id} ({info.workflow}) {info.status} in {_elapsed(info.elapsed)} · "
        f"{info.usage.total_tokens:,} tokens · {_money(info.cost)}"
    )
    lines = [head]
    if info.output is not None:
        text = info.output if isinstance(info.output, str) else json.dumps(info.output, default=str)
        lines.append(f"output: {text}")
    hint = RESUME_HINTS.get(info.status)
    if hint:
        lines.append(f"resume with: {hint.format(id=info.short)}")
    return lines


def print_summary(info: RunInfo) -> None:
    """The summary on stdout; the run's error, if any, as one ``error:`` line on stderr."""
    print("\n".join(summary_lines(info)), flush=True)
    if info.error:
        print(error_line(info.error), file=sys.stderr, flush=True)


async def _finish(engine: Engine, info: RunInfo, as_json: bool) -> int:
    if as_json:
        _dump(info.to_dict())
    else:
        print_summary(info)
    return info.exit_code


GATE_MODES = ("auto", "ask", "wait", "stop")


def _read_line() -> asyncio.Future[str | None]:
    """One line from stdin on a daemon thread (never blocks the process's exit); None at EOF."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str | None] = loop.create_future()

    def deliver(value: str | None) -> None:
        if not future.done():
            future.set_result(value)

    def work() -> None:
        try:
            line = sys.stdin.readline() if sys.stdin is not None else ""
        except (OSError, ValueError):  # stdin closed or unreadable: the same as its end
            line = ""
        with contextlib.suppress(RuntimeError):  # the loop may be gone by then
            loop.call_soon_threadsafe(deliver, line.rstrip("\n") if line else None)

    threading.Thread(target=work, daemon=True).start()
    return future


class TerminalGates:
    """Asks each pending human gate in the terminal, one at a time, until a valid answer."""

    def __init__(self, engine: Engine, out: TextIO) -> None:
        self.engine = engine
        self.out = out
        self._lock = asyncio.Lock()
        self._unanswerable: set[str] = set()  # editor gates with no editor: the run stops at them
        self.stdin_closed = False  # stdin reached its end: every gate stops the run (needs_human)

    def __call__(self, event: EngineEvent) -> Any:
        if isinstance(event, PromptPending) and event.prompt_id not in self._unanswerable:
            return self.ask(event)
        return None

    def _stop(self, event: PromptPending, why: str, *, newline: bool = False) -> None:
        """End the run at this gate as needs_human (it stays answerable with ``loopcraft answer``)."""
        self.out.write(f"{chr(10) if newline else ''}  {why}; the run stops until the gate is answered\n")
        self.out.flush()
        self._unanswerable.add(event.prompt_id)
        self.engine.stop_at_gate(event.run_id)

    async def ask(self, event: PromptPending) -> None:
        async with self._lock:
            if self.stdin_closed:  # a later gate (another branch): stdin is still at its end
                self._stop(event, "no more input on stdin")
                return
            if event.kind == "editor":
                await self.edit(event)
                return
            options = event.options or []
            listing = "".join(f"\n    {i}. {o}" for i, o in enumerate(options, 1))
            hint = {"confirm": " [y/n]", "select": listing}.get(event.kind, "")
            while True:
                self.out.write(f"? {event.question}{hint}\n> ")
                self.out.flush()
                line = await _read_line()
                if line is None:  # stdin is at its end: nobody here can answer, the run stops
                    self.stdin_closed = True
                    self._stop(event, "no more input on stdin", newline=True)
                    return
                try:
                    await self.engine.answer(event.run_id, event.prompt_id, line)
                    return
                except AnswerError as exc:
                    self.out.write(f"  {exc}\n")
                except LoopcraftError:
                    return  # answered elsewhere meanwhile

    async def edit(self, event: PromptPending) -> None:
        """An editor gate: ``$VISUAL``/``$EDITOR`` on the default text; with no editor (or a
        failing one) say so and stop the run as needing input."""
        from loopcraft.editor import EditorError, edit_text

        prompt = await self.engine.journal.get_prompt(event.prompt_id)
        default = prompt.default if prompt is not None and isinstance(prompt.default, str) else ""
        self.out.write(f"? {event.question} (opening your editor…)\n")
        self.out.flush()
        try:
            text = await asyncio.to_thread(edit_text, default)
        except EditorError as exc:
            self._stop(event, str(exc))
            return
        try:
            await self.engine.answer(event.run_id, event.prompt_id, text)
        except LoopcraftError:
            return  # answered elsewhere meanwhile


def _gates(engine: Engine, gates: str, out: TextIO) -> None:
    """Set how human gates behave: ask in the terminal, wait for `loopcraft answer`, or stop."""
    if gates not in GATE_MODES:
        raise LoopcraftError(f"bad --gates {gates!r}: use one of {', '.join(GATE_MODES)}")
    if gates == "auto":
        gates = "ask" if sys.stdin.isatty() else "stop"
    engine.stop_at_gates = gates == "stop"
    if gates == "ask":
        engine.bus.subscribe(TerminalGates(engine, out))


def preflight_model(root: Path, config: Config, model: str | None) -> str | None:
    """Resolve the run's default model before anything is recorded; for a scripted model, find
    and validate its script. Returns the notice to show (offline demo model) or None; a bad
    model string or script raises its one-line error (exit code 2)."""
    from loopcraft.models.resolve import resolve_model
    from loopcraft.models.spec import parse_model

    resolved = resolve_model(flag=model, config=config)
    spec = parse_model(resolved.model)
    if spec.provider == "scripted":
        from loopcraft.models.scripted import load_script, script_path_for

        path = script_path_for(spec.model, config, root)
        if path is not None:
            load_script(path)
    return resolved.notice


def nested_note(engine: Engine, name: str) -> str | None:
    """For a workflow marked ``nested=True``, run on its own: what it is meant for."""
    workflow = engine.workflows().get(name)
    if not workflow.nested:
        return None
    return (
        f"{workflow.name} is a nested workflow, meant to be called from other workflows "
        "(ctx.workflow); it runs on its own here"
    )


async def run_workflow(
    root: Path,
    config: Config,
    name: str,
    inputs: dict[str, Any],
    *,
    model: str | None,
    as_json: bool,
    budget: dict[str, Any] | None = None,
    gates: str = "auto",
) -> int:
    """``loopcraft run``: start, show progress, wait, summarise; returns the exit code."""
    notice = preflight_model(root, config, model)
    async with await Engine.open(root, config) as engine:
        out = sys.stderr if as_json else sys.stdout
        engine.bus.subscribe(ProgressPrinter(out))
        _gates(engine, gates, out)
        run_id = await engine.start(name, inputs, model=model, cli_strings=True, budget=budget)
        if notice:  # shown once the run exists, so a bad-input error stays the only line
            print(f"note: {notice}", file=sys.stderr, flush=True)
        nested = nested_note(engine, name)
        if nested:
            print(f"note: {nested}", file=sys.stderr, flush=True)
        if not as_json:
            print(f"run {run_id} started: {name}", flush=True)
        return await _finish(engine, await engine.wait(run_id), as_json)


async def resume_run(
    root: Path,
    config: Config,
    run_id: str,
    *,
    as_json: bool,
    message: str | None = None,
    budget: dict[str, Any] | None = None,
    gates: str = "auto",
) -> int:
    """``loopcraft resume``: a run live in another process is sent a resume command; any other
    unfinished run is replayed from the journal and finished here."""
    async with await Engine.open(root, config) as engine:
        out = sys.stderr if as_json else sys.stdout
        engine.bus.subscribe(ProgressPrinter(out))
        _gates(engine, gates, out)
        info = await engine.resume(run_id, message, budget=budget)
        if info.status in ("running", "paused", "awaiting_input", "pending"):
            if as_json:
                _dump({"sent": "resume", **info.to_dict()})
            else:
                print(f"resume sent to run {info.id} (run by another process)")
            return 0
        return await _finish(engine, info, as_json)


# ----- run control ------------------------------------------------------------------------------


async def control_run(
    root: Path,
    config: Config,
    action: str,
    run_id: str,
    *,
    stage: str | None = None,
    message: str | None = None,
    as_json: bool = False,
) -> int:
    """``loopcraft pause|interrupt|kill|steer|follow-up``: post the command; returns the exit code."""
    async with await Engine.open(root, config) as engine:
        if action == "kill":
            info = await engine.kill(run_id)
            done = info.status == "killed"
            line = f"run {info.id} killed" if done else f"kill sent to run {info.id} (status {info.status})"
            result: dict[str, Any] = {"action": action, "run_id": info.id, "status": info.status}
        else:
            send = {"pause": engine.pause, "interrupt": engine.interrupt}.get(action)
            if send is not None:
                mail_id = await send(run_id, stage)
            elif action == "steer":
                mail_id = await engine.steer(run_id, stage, message or "")
            else:
                mail_id = await engine.follow_up(run_id, stage, message or "")
            info = await engine.get_run(run_id)
            target = f"stage {stage!r} of run {info.id}" if stage else f"run {info.id}"
            line = f"{action.replace('_', '-')} sent to {target}"
            result = {"action": action, "run_id": info.id, "stage": stage, "command": mail_id}
    if as_json:
        _dump(result)
    else:
        print(line)
    return 0


_KEY_VALUE = re.compile(r"^[A-Za-z_][\w-]*=")


def looks_key_value(text: str | None) -> bool:
    """Whether ``text`` reads like ``key=value`` (an ``--input`` habit, not an answer)."""
    return bool(text) and _KEY_VALUE.match(text or "") is not None


def answer_text(answer: Any) -> str:
    """An answer as one short line: yes/no for a confirm, else the value (cut at 60 characters)."""
    if isinstance(answer, bool):
        return "yes" if answer else "no"
    text = " ".join(str(answer).split()) if isinstance(answer, str) else json.dumps(answer, default=str)
    return text if len(text) <= 60 else text[:59] + "…"


async def answer_prompt(
    root: Path, config: Config, run_id: str, prompt_id: str | None, value: str, *, as_json: bool = False
) -> int:
    """``loopcraft answer``: record the answer durably (the owner, or the next resumer, uses it) and
    say what was answered and what happens next."""
    async with await Engine.open(root, config) as engine:
        row = await engine.find_run(run_id)
        pending = await engine.journal.prompts(row.id, pending_only=True)
        try:
            answer = await engine.answer(row.id, prompt_id, value)
        except LoopcraftError as exc:
            if looks_key_value(value) or looks_key_value(prompt_id):
                hint = f"answer takes RUN [PROMPT-ID] VALUE, not key=value, e.g. `loopcraft answer {short_id(row.id)} yes`"
                raise LoopcraftError(f"{exc}; {hint}", exit_code=exc.exit_code) from None
            raise
        prompt = await engine.journal.get_prompt(prompt_id) if prompt_id else pending[0]
        info = await engine.get_run(row.id)
    if as_json:
        _dump({"run_id": info.id, "answer": answer, "status": info.status})
        return 0
    question = prompt.question if prompt is not None else "the prompt"
    said = f"answered {question!r} → {answer_text(answer)} · run {info.short}"
    if info.status in ("running", "awaiting_input", "paused"):
        print(f"{said}; it continues in the process that runs it")
    else:
        print(f"{said}; resume with: loopcraft resume {info.short}")
    return 0


async def print_prompts(root: Path, config: Config, *, run_id: str | None, as_json: bool) -> None:
    """``loopcraft prompts``: every pending human gate."""
    async with await Engine.open(root, config) as engine:
        prompts = await engine.prompts(run_id)
    if as_json:
        _dump([vars(p) for p in prompts])
        return
    if not prompts:
        print("no pending prompts")
        return
    for p in prompts:
        options = f"  options: {', '.join(map(str, p.options))}" if p.options else ""
        print(f"{short_id(p.run_id)}  {p.id}  [{p.kind}] {p.question}{options}")


async def print_runs(root: Path, config: Config, *, as_json: bool, limit: int) -> None:
    from loopcraft.triggers.inbox import run_sources

    async with await Engine.open(root, config) as engine:
        runs = await engine.runs(limit=limit)
        sources = run_sources(engine.journal.path)  # runs started by a trigger
    if as_json:
        _dump([{**r.to_dict(), **({"source": sources[r.id]} if r.id in sources else {})} for r in runs])
        return
    if not runs:
        print("no runs yet: start one with `loopcraft run WORKFLOW`")
        return
    print(f"{'SHORT':<7} {'RUN':<22} {'WORKFLOW':<20} {'STATUS':<16} {'ELAPSED':>8} {'COST':>9}")
    for r in runs:
        line = (
            f"{r.short:<7} {r.id:<22} {r.workflow:<20} {r.status:<16} "
            f"{_elapsed(r.elapsed):>8} {_money(r.cost):>9}"
        )
        if r.damage:  # the other runs list normally; `show` says what to do
            line += f"  <- damaged: {'; '.join(r.damage)}"
        print(line + (f"  <- trigger {sources[r.id]['trigger']}" if r.id in sources else ""))


def graph_lines(graph: Graph, workflow: str | None = None) -> list[str]:
    """``show``'s stage graph: one line per stage, named by its path (``demo › review › synthesis``)."""
    lines: list[str] = []

    def visit(node: GraphNode, depth: int) -> None:
        status = display_status(node.status, node.info)
        facts = [status, _elapsed(stage_seconds(node.started, node.finished))]
        outcome = check_outcome(node.info)
        if outcome:  # "failed (exit 3)", "passed", "timed out"
            facts[0] = outcome if outcome.startswith(status) else f"{status}, {outcome}"
        if node.summary:  # a group's round ("check passed · 2/3 approve"), an experiment's "keep · 0.812"
            facts.insert(1, node.summary)
        if node.flag:  # "running, stalled" / "running, waiting until 14:05"
            facts[0] = f"{facts[0]}, {flag_text(node.flag, '', node.until)}"
        if node.model:
            facts.append(node.model)
        if node.turns:
            facts.append(f"turn {node.turns}")
        if node.tokens:
            facts.append(f"{node.tokens:,} tok")
        if node.cost:
            facts.append(_money(node.cost))
        if node.last_active is not None and status == "running":
            facts.append(f"active {ago(time.time() - node.last_active)}")
        path = node_path(node, workflow)
        lines.append(f"{'  ' * depth}{ICONS.get(status, '?')} {path}  ({', '.join(facts)})")
        if node.flag == "stalled" and node.flag_detail:
            lines.append(f"{'  ' * depth}    stalled: {node.flag_detail}")
        elif node.flag == "waiting" and node.flag_detail:
            lines.append(f"{'  ' * depth}    waiting for: {node.flag_detail}; it continues on its own")
        if node.grants:
            lines.append(f"{'  ' * depth}    grants: {' · '.join(node.grants)}")
        if node.error:
            lines.append(f"{'  ' * depth}    {error_line(node.error)}")
        for child in node.children:
            visit(child, depth + 1)

    for node in graph.nodes:
        visit(node, 0)
    return lines


def node_path(node: GraphNode, workflow: str | None = None) -> str:
    """A node's readable path; a fan-out's is its parent's and ``parallel · 2 branches`` (never the
    parent's path twice)."""
    path = step_path(node.key, workflow)
    return f"{path} › {parallel_name(node.info)}" if node.kind == "parallel" else path


def _with_paths(nodes: list[dict[str, Any]], workflow: str) -> list[dict[str, Any]]:
    """``show --json``'s graph nodes, each with its readable ``path`` besides its ``key``."""
    return [
        {
            **n,
            "path": step_path(n["key"], workflow)
            + (f" › {parallel_name(n['info'] or {})}" if n["kind"] == "parallel" else ""),
            "children": _with_paths(n["children"], workflow),
        }
        for n in nodes
    ]


def usage_by_workflow(info: RunInfo, graph: Graph) -> list[dict[str, Any]]:
    """The run's workflow (whole-run usage) and then each nested workflow node, in start order,
    with its own tokens and cost (its stages' usage, nested workflows included)."""
    rows: list[dict[str, Any]] = [
        {"workflow": info.workflow, "key": None, "tokens": info.usage.total_tokens, "cost": info.cost}
    ]
    rows += [
        {"workflow": node.name, "key": node.key, "tokens": node.tokens, "cost": node.cost}
        for node in graph.walk()
        if node.kind == "workflow"
    ]
    return rows


def usage_lines(rows: list[dict[str, Any]]) -> list[str]:
    """``show``'s human "usage by workflow" block: one line per workflow (nested ones indented)."""
    lines = ["usage by workflow:"]
    for row in rows:
        depth = 1 + (row["key"].count(":workflow:") if row["key"] else 0)
        lines.append(f"{'  ' * depth}{row['workflow']}  {row['tokens']:,} tok · {_money(row['cost'])}")
    return lines


async def show_run(
    root: Path, config: Config, run_id: str, *, stage: str | None, as_json: bool, raw: bool = False
) -> int:
    """``loopcraft show``: the run and its stage graph (live totals while it runs), or one stage's
    transcript (readable; ``raw`` prints its JSONL, ``as_json`` a JSON list); returns the exit code
    (8 when the transcript has damaged lines)."""
    async with await Engine.open(root, config) as engine:
        info, graph = await engine.live_view(run_id)
        if stage is not None:
            from loopcraft.engine.steps.stage import scan_transcript

            node = find_stage(graph, info, stage)
            scan = await asyncio.to_thread(
                scan_transcript, await engine.stage_transcript_path(info.id, node.key)
            )
            facts = await _step_facts(engine, info.id, node)
    if stage is not None:
        return _print_transcript(info, node, scan, facts, as_json=as_json, raw=raw)
    by_workflow = usage_by_workflow(info, graph)
    from loopcraft.triggers.inbox import run_source

    source = run_source(engine.journal.path, info.id)
    if as_json:
        nodes = _with_paths(graph.to_dict()["nodes"], info.workflow)
        graph_data = {"run_id": graph.run_id, "nodes": nodes}
        extra = {"source": source} if source else {}
        _dump({"run": info.to_dict(), "graph": graph_data, "usage_by_workflow": by_workflow, **extra})
        return 0
    print_summary(info)
    if source:
        print(f"started by: trigger {source['trigger']} (event {source['event']})")
    print("\n".join(graph_lines(graph, info.workflow)))
    print("\n".join(usage_lines(by_workflow)))
    return 0


_SESSION_KINDS = ("task", "stage", "stage_prompt")


def _print_transcript(
    info: RunInfo, node: GraphNode, scan: TranscriptScan, facts: list[str], *, as_json: bool, raw: bool
) -> int:
    """One stage's transcript; damaged lines are shown as ``[damaged line N]`` where they are, counted
    at the end (exit 8); a finished stage's missing transcript is one line (exit 4)."""
    from loopcraft.errors import NotFoundError

    path = node_path(node, info.workflow)
    if scan.missing and node.kind in _SESSION_KINDS and node.status not in ("running", "pending"):
        raise NotFoundError(
            f"stage {path} of run {info.short} has no transcript: {scan.path} does not exist "
            "(it was moved away or never written)"
        )
    entries = scan.entries
    if as_json:
        _dump(entries)
    elif raw:
        from loopcraft.jsonout import strict

        for entry in entries:
            print(json.dumps(strict(entry), default=str, allow_nan=False))
    else:
        from loopcraft.transcript_view import transcript_lines

        head = f"stage {path}  (run {info.short}, {node.kind})"
        if node.status not in ("running", "pending"):  # the agent's first status, not how it ended
            entries = _without_leading_running(entries)
        body = transcript_lines(entries) if entries or not facts else []
        print("\n".join([head, *facts, *body, _stage_end(node)]))
    if scan.damaged:
        lines = ", ".join(map(str, scan.damaged[:10])) + (", …" if len(scan.damaged) > 10 else "")
        count = len(scan.damaged)
        print(
            f"error: {count} damaged line{'s' if count != 1 else ''} in {scan.path} (line {lines}): "
            "not UTF-8 or not a JSON object; restore the file, or `loopcraft doctor --journal` "
            "to check every run",
            file=sys.stderr,
        )
        return 8
    return 0


def _without_leading_running(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A finished stage's entries without the ``[status] running`` its transcript opens with."""
    start = 0
    while start < len(entries) and entries[start].get("type") in ("status", "header", None):
        if entries[start].get("type") == "status" and entries[start].get("status") != "running":
            break
        start += 1
    return entries[start:]


async def _step_facts(engine: Engine, run_id: str, node: GraphNode) -> list[str]:
    """What a check or a gate has instead of a transcript: the command, exit code, time and output
    tail of a check; the question and the answer (and when it came) of a gate."""
    if node.kind == "check":
        row = next((s for s in await engine.journal.load_steps(run_id) if s.key == node.key), None)
        if row is None or row.output is None:
            return []
        from loopcraft.engine.artifacts import RunFiles
        from loopcraft.engine.verify import CheckResult

        try:
            check = CheckResult.model_validate(RunFiles(engine.root, run_id).load_output(row.output))
        except (OSError, ValueError):
            return []
        lines = [
            f"command: {check.cmd}",
            f"exit code: {check.code if check.code is not None else 'none'} · "
            f"{_elapsed(check.duration)} · timed_out: {str(check.timed_out).lower()}",
        ]
        if check.artifact:
            lines.append(f"full output: {check.artifact}")
        tail = check.output.rstrip().splitlines()[-20:]
        return lines + (["output (tail):", *(f"  {line}" for line in tail)] if tail else ["output: (none)"])
    if node.kind == "prompt":
        prompts = [p for p in await engine.journal.prompts(run_id) if p.step_key == node.key]
        if not prompts:
            return []
        prompt = prompts[-1]
        lines = [f"question: {prompt.question}"]
        if prompt.status == "answered":
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(prompt.answered_at or prompt.created))
            lines.append(f"answer: {prompt.answer!r} (answered {when})")
        elif node.status in ("killed", "cancelled"):  # the run ended while the gate waited
            lines.append(f"answer: none (the run ended, {node.status}, before it was answered)")
        else:
            lines.append(f"answer: none ({prompt.status})")
        return lines
    return []


def _stage_end(node: GraphNode) -> str:
    """The last line of a readable transcript: how the stage ended (or stands), from the journal."""
    facts = [
        _elapsed(stage_seconds(node.started, node.finished)),
        f"{node.tokens:,} tokens",
        _money(node.cost),
    ]
    line = f"── {display_status(node.status, node.info)} · {' · '.join(facts)}"
    return line + (f"\n── {error_line(node.error)}" if node.error else "")


def _path_parts(text: str) -> list[str]:
    return [part.strip() for part in text.replace("›", ">").split(">") if part.strip()]


def find_stage(graph: Graph, info: RunInfo, text: str) -> GraphNode:
    """The stage ``text`` names: its key, its path (``demo › review › synthesis``, ``review > synthesis``;
    the workflow's name may be left out) or its name; a name several stages share is an error
    listing their paths."""
    from loopcraft.errors import NotFoundError

    nodes = list(graph.walk())
    exact = [n for n in nodes if text == n.key]
    if exact:
        return exact[0]
    wanted = _path_parts(text)
    if wanted and wanted[0] == info.workflow and len(wanted) > 1:
        wanted = wanted[1:]
    matches = [n for n in nodes if step_names(n.key) == wanted]
    if not matches:  # the tail of a path (or a bare name), e.g. `synthesis` or `review › synthesis`
        matches = [n for n in nodes if wanted and step_names(n.key)[-len(wanted) :] == wanted]
    if len(matches) == 1 or (matches and len({session_key(n.kind, n.key) for n in matches}) == 1):
        return matches[-1]  # one stage (a long-lived stage's prompts: its latest)
    if matches:
        paths = [step_path(n.key, info.workflow) for n in matches]
        if len(set(paths)) < len(paths):  # repeated calls of one stage: only their keys differ
            paths = [f"{p} ({n.key})" for p, n in zip(paths, matches, strict=True)]
        raise LoopcraftError(
            f"several stages of run {info.short} are named {text!r}: {'; '.join(paths)}; give the path or key"
        )
    known = "; ".join(node_path(n, info.workflow) for n in nodes) or "none"
    raise NotFoundError(f"run {info.short} has no stage {text!r}; stages: {known}")


async def print_workflows(root: Path, config: Config, *, as_json: bool) -> None:
    async with await Engine.open(root, config) as engine:
        catalog = engine.workflows()
    infos = catalog.list()
    if as_json:
        _dump(
            {
                "workflows": [vars(i) for i in infos],
                "errors": [{"file": f, "error": e} for f, e in catalog.errors],
            }
        )
        return
    for info in infos:
        params = ", ".join(info.input_labels())
        mark = "(nested) " if info.nested else ""
        print(f"{info.name:<20} {mark}{info.description}" + (f"  (inputs: {params})" if params else ""))
    for file, error in catalog.errors:
        print(f"broken: {file}: {error}", file=sys.stderr)
