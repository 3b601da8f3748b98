"""Headless presentation of the engine for ``loopcraft run/resume/runs/show/workflows``:
a live progress printer on the engine's event bus, final summaries, tables and JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from loopcraft.config import Config
from loopcraft.engine.events import EngineEvent, PromptPending, RunStatus, StageAdded, StageStatus
from loopcraft.engine.graph import Graph, GraphNode
from loopcraft.engine.results import RunInfo
from loopcraft.engine.service import Engine

ICONS = {
    "pending": "·", "running": "▶", "awaiting_input": "?", "paused": "‖", "completed": "✓",
    "failed": "✗", "skipped": "-", "blocked": "■", "needs_human": "?", "budget_exceeded": "$",
    "cancelled": "⊘", "killed": "⊘", "crashed": "!",
}


def _dump(data: Any, out: TextIO = sys.stdout) -> None:
    out.write(json.dumps(data, indent=2, default=str) + "\n")


def _money(dollars: float) -> str:
    return f"${dollars:.4f}" if dollars < 1 else f"${dollars:.2f}"


def _elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


class ProgressPrinter:
    """Prints one line per stage start/finish, run status change and pending prompt."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.names: dict[str, str] = {}
        self.started: dict[str, float] = {}

    def __call__(self, event: EngineEvent) -> None:
        line = self._line(event)
        if line:
            self.out.write(line + "\n")
            self.out.flush()

    def _line(self, event: EngineEvent) -> str | None:
        if isinstance(event, StageAdded):
            self.names[event.key] = event.name
            return None
        if isinstance(event, StageStatus):
            name = self.names.get(event.key, event.key)
            if event.status == "running":
                self.started[event.key] = time.monotonic()
                return f"  {ICONS['running']} {name}" + (f"  [{event.model}]" if event.model else "")
            took = time.monotonic() - self.started.pop(event.key, time.monotonic())
            tail = f": {event.error}" if event.error else ""
            return f"  {ICONS.get(event.status, '?')} {name}  {event.status} {_elapsed(took)}{tail}"
        if isinstance(event, PromptPending):
            return (f"  ? {event.question}  (answer with: loopcraft answer {event.run_id} "
                    f"{event.prompt_id} VALUE)")
        if isinstance(event, RunStatus) and event.status not in ("pending",):
            return f"run {event.run_id} {event.status}" + (f": {event.error}" if event.error else "")
        return None


def summary_lines(info: RunInfo) -> list[str]:
    head = (f"run {info.id} ({info.workflow}) {info.status} in {_elapsed(info.elapsed)} · "
            f"{info.usage.total_tokens:,} tokens · {_money(info.cost)}")
    lines = [head]
    if info.error:
        lines.append(f"error: {info.error}")
    if info.output is not None:
        text = info.output if isinstance(info.output, str) else json.dumps(info.output, default=str)
        lines.append(f"output: {text}")
    if info.status not in ("completed", "killed", "cancelled", "failed"):
        lines.append(f"resume with: loopcraft resume {info.id}")
    return lines


async def _finish(engine: Engine, info: RunInfo, as_json: bool) -> int:
    if as_json:
        _dump(info.to_dict())
    else:
        print("\n".join(summary_lines(info)))
    return info.exit_code


async def run_workflow(root: Path, config: Config, name: str, inputs: dict[str, Any], *,
                       model: str | None, as_json: bool) -> int:
    """``loopcraft run``: start, show progress, wait, summarise; returns the exit code."""
    async with await Engine.open(root, config) as engine:
        engine.bus.subscribe(ProgressPrinter(sys.stderr if as_json else sys.stdout))
        run_id = await engine.start(name, inputs, model=model, cli_strings=True)
        if not as_json:
            print(f"run {run_id} started: {name}", flush=True)
        return await _finish(engine, await engine.wait(run_id), as_json)


async def resume_run(root: Path, config: Config, run_id: str, *, as_json: bool) -> int:
    """``loopcraft resume``: replay the journal and finish the run."""
    async with await Engine.open(root, config) as engine:
        engine.bus.subscribe(ProgressPrinter(sys.stderr if as_json else sys.stdout))
        return await _finish(engine, await engine.resume(run_id), as_json)


async def print_runs(root: Path, config: Config, *, as_json: bool, limit: int) -> None:
    async with await Engine.open(root, config) as engine:
        runs = await engine.runs(limit=limit)
    if as_json:
        _dump([r.to_dict() for r in runs])
        return
    if not runs:
        print("no runs yet: start one with `loopcraft run WORKFLOW`")
        return
    print(f"{'RUN':<22} {'WORKFLOW':<20} {'STATUS':<16} {'ELAPSED':>8} {'COST':>9}")
    for r in runs:
        print(f"{r.id:<22} {r.workflow:<20} {r.status:<16} {_elapsed(r.elapsed):>8} {_money(r.cost):>9}")


def graph_lines(graph: Graph) -> list[str]:
    lines: list[str] = []

    def visit(node: GraphNode, depth: int) -> None:
        facts = [node.status, _elapsed(node.elapsed)]
        if node.model:
            facts.append(node.model)
        if node.tokens:
            facts.append(f"{node.tokens:,} tok")
        if node.cost:
            facts.append(_money(node.cost))
        lines.append(f"{'  ' * depth}{ICONS.get(node.status, '?')} {node.name}  ({', '.join(facts)})  [{node.key}]")
        if node.error:
            lines.append(f"{'  ' * depth}    error: {node.error}")
        for child in node.children:
            visit(child, depth + 1)

    for node in graph.nodes:
        visit(node, 0)
    return lines


async def show_run(root: Path, config: Config, run_id: str, *, stage: str | None, as_json: bool) -> None:
    """``loopcraft show``: the run and its stage graph, or one stage's transcript."""
    async with await Engine.open(root, config) as engine:
        info = await engine.get_run(run_id)
        graph = await engine.graph(info.id)
        if stage is not None:
            from loopcraft.errors import NotFoundError

            node = graph.find(stage)
            if node is None:
                known = ", ".join(n.name for n in graph.walk()) or "none"
                raise NotFoundError(f"run {info.id} has no stage {stage!r}; stages: {known}")
            entries = await engine.stage_transcript(info.id, node.key)
            if as_json:
                _dump(entries)
            else:
                for entry in entries:
                    print(_transcript_line(entry))
            return
    if as_json:
        _dump({"run": info.to_dict(), "graph": graph.to_dict()})
        return
    print("\n".join(summary_lines(info)))
    print("\n".join(graph_lines(graph)))


def _transcript_line(entry: dict[str, Any]) -> str:
    kind = entry.get("type") or entry.get("kind") or "entry"
    if kind == "message":
        msg = entry.get("message", entry)
        content = msg.get("content") or ""
        calls = msg.get("tool_calls") or []
        names = ", ".join(c.get("function", {}).get("name", "?") for c in calls)
        return f"[{msg.get('role', '?')}] {content}" + (f"  → {names}" if names else "")
    if kind == "tool_result":
        return f"[tool {entry.get('name', '')}] {str(entry.get('output', ''))[:2000]}"
    return f"[{kind}] " + json.dumps({k: v for k, v in entry.items() if k not in ("type", "kind")}, default=str)[:500]


async def print_workflows(root: Path, config: Config, *, as_json: bool) -> None:
    async with await Engine.open(root, config) as engine:
        catalog = engine.workflows()
    infos = catalog.list()
    if as_json:
        _dump({"workflows": [vars(i) for i in infos], "errors": [{"file": f, "error": e} for f, e in catalog.errors]})
        return
    for info in infos:
        params = ", ".join(info.inputs.get("properties", {}).keys()) if isinstance(info.inputs, dict) else ""
        print(f"{info.name:<20} {info.description}" + (f"  (inputs: {params})" if params else ""))
    for file, error in catalog.errors:
        print(f"broken: {file}: {error}", file=sys.stderr)
