"""Trace review's data, public (``from loopcraft import traces``): the files a reviewer reads and the
code that checks what it cites.

:func:`collect_traces` picks a workflow's recent failed runs and its most expensive ones, and
writes, in a folder of the reviewing run: ``stats.txt`` / ``stats.json`` (``loopcraft stats`` of
that workflow), ``index.md`` (each run, why it was picked, its stages with status, error and
transcript file) and one text file per stage transcript, where line N is line N of the stage's
JSONL transcript rendered on one line. A reviewer reads them with its tools; nothing is pasted
whole into a prompt. ``ctx.traces(...)`` runs it as a durable step.

:func:`check_findings` validates a reviewer's :class:`TraceFindings` against the pack, failing
closed: a finding is kept only when every piece of its evidence names a reviewed run, one of that
run's stages and a line its transcript has (and, when it quotes, a line holding the quote).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from loopcraft.engine.artifacts import RunFiles, safe_key, session_key
from loopcraft.engine.journal import Journal, StepRow
from loopcraft.engine.results import FINAL_STATES
from loopcraft.engine.stats import STAGE_STEP_KINDS, journal_stats, stats_lines

__all__ = [
    "Evidence",
    "TraceFinding",
    "TraceFindings",
    "TracePack",
    "TraceRun",
    "TraceStage",
    "check_findings",
    "collect_traces",
    "render_entry",
]

LINE_LIMIT = 1500  # characters of one rendered transcript line
_SPACE = re.compile(r"\s+")


class TraceStage(BaseModel):
    """One stage of a reviewed run: its label (the name, ``name#2`` for a repeated one)."""

    stage: str
    key: str
    kind: str
    status: str
    error: str | None = None
    transcript: str | None = None  # the rendered transcript file, when the stage had a session
    lines: int = 0


class TraceRun(BaseModel):
    id: str
    status: str
    error: str | None = None
    cost: float = 0.0
    picked: Literal["failed", "expensive"]
    stages: list[TraceStage] = Field(default_factory=list)


class TracePack(BaseModel):
    """What :func:`collect_traces` wrote and where."""

    workflow: str
    source: str | None = None  # the workflow's file: relative to the repo when inside it
    folder: str
    index_file: str
    stats_file: str
    runs: list[TraceRun] = Field(default_factory=list)

    def run(self, run_id: str) -> TraceRun | None:
        return next((r for r in self.runs if r.id == run_id), None)


class Evidence(BaseModel):
    """Where a failure mode shows: a run, one of its stages, a line of that stage's transcript."""

    run: str
    stage: str
    line: int = Field(ge=1)
    quote: str = ""  # optional: words that line holds


class TraceFinding(BaseModel):
    """A recurring failure mode, its evidence, and the concrete edit proposed against it."""

    title: str
    description: str = ""
    target: Literal["prompt", "skill", "check", "other"] = "prompt"
    proposal: str
    evidence: list[Evidence] = Field(default_factory=list)


class TraceFindings(BaseModel):
    """A trace reviewer's answer."""

    findings: list[TraceFinding] = Field(default_factory=list)
    summary: str = ""


# -- rendering ----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts
        return " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in value)
    return "" if value is None else json.dumps(value, default=str)


def render_entry(raw: str) -> str:
    """One JSONL transcript line as one readable line (a torn or non-JSON line is kept as text)."""
    try:
        entry = json.loads(raw)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        text = raw
    elif entry.get("type") == "message":
        message = entry.get("message") or {}
        role = message.get("role", "?")
        source = f" ({entry['source']})" if entry.get("source") else ""
        parts = [_text(message.get("content"))]
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            parts.append(f"→ {function.get('name')}({function.get('arguments', '')})")
        failed = entry.get("failed_attempts")
        if failed:
            parts.append(
                "failed attempts: " + ", ".join(f"{a.get('model')} {a.get('error_class')}" for a in failed)
            )
        text = f"{role}{source}: " + " ".join(p for p in parts if p)
    else:
        rest = {k: v for k, v in entry.items() if k != "type"}
        text = f"{entry.get('type', '?')}: {json.dumps(rest, default=str)}"
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= LINE_LIMIT else text[: LINE_LIMIT - 1] + "…"


def render_transcript(path: Path) -> list[str]:
    """The transcript's lines rendered, numbered as in the file (a trailing newline ends it)."""
    if not path.is_file():
        return []
    raw = path.read_text(encoding="utf-8", errors="replace").split("\n")
    if raw and raw[-1] == "":
        raw.pop()
    return [render_entry(line) if line.strip() else "" for line in raw]


# -- collecting -------------------------------------------------------------------------------


def _cost_sql() -> str:
    return "COALESCE(json_extract(usage, '$.cost_usd'), 0)"


async def _pick(
    journal: Journal, workflow: str, failed: int, expensive: int, since: float | None, exclude: str | None
) -> list[tuple[str, str, str | None, float, Literal["failed", "expensive"]]]:
    finals = [s for s in FINAL_STATES]
    where = f"workflow = ? AND status IN ({', '.join('?' * len(finals))})"
    params: list[Any] = [workflow, *finals]
    if since is not None:
        where += " AND created >= ?"
        params.append(since)
    if exclude is not None:
        where += " AND id != ?"
        params.append(exclude)
    cols = f"id, status, error, {_cost_sql()}"
    bad = await journal.select(
        f"SELECT {cols} FROM runs WHERE {where} AND status != 'completed' ORDER BY created DESC LIMIT ?",
        [*params, failed],
    )
    costly = await journal.select(
        f"SELECT {cols} FROM runs WHERE {where} ORDER BY {_cost_sql()} DESC, created DESC LIMIT ?",
        [*params, expensive + failed],
    )
    picked: list[tuple[str, str, str | None, float, Literal["failed", "expensive"]]] = [
        (r[0], r[1], r[2], float(r[3]), "failed") for r in bad
    ]
    seen = {r[0] for r in picked}
    for r in costly:
        if len([p for p in picked if p[4] == "expensive"]) >= expensive:
            break
        if r[0] not in seen and float(r[3]) > 0:
            picked.append((r[0], r[1], r[2], float(r[3]), "expensive"))
            seen.add(r[0])
    return picked


def _stage_rows(steps: list[StepRow]) -> list[tuple[str, StepRow]]:
    """The run's stages (agent stages, checks, gates…) with unique labels, in order."""
    labels: list[tuple[str, StepRow]] = []
    count: dict[str, int] = {}
    for row in steps:
        if row.kind not in STAGE_STEP_KINDS:
            continue
        count[row.name] = count.get(row.name, 0) + 1
        label = row.name if count[row.name] == 1 else f"{row.name}#{count[row.name]}"
        labels.append((label, row))
    return labels


def _error_text(error: dict[str, Any] | None) -> str | None:
    if not error:
        return None
    return str(error.get("message") or error.get("type") or error)[:300]


async def collect_traces(
    journal: Journal,
    root: Path,
    workflow: str,
    folder: Path,
    *,
    failed: int = 5,
    expensive: int = 2,
    since: float | None = None,
    exclude: str | None = None,
    source: Path | None = None,
) -> TracePack:
    """Write the review's files for ``workflow`` into ``folder`` (``since``: a time.time() cutoff;
    ``exclude``: a run never to review, the reviewing run itself) and return what was written."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = await journal_stats(journal, workflow=workflow)
    stats_file = folder / "stats.txt"
    stats_file.write_text("\n".join(stats_lines(entries)) + "\n", encoding="utf-8")
    (folder / "stats.json").write_text(json.dumps(entries, indent=2, default=str), encoding="utf-8")
    runs: list[TraceRun] = []
    for rid, status, error, cost, picked in await _pick(journal, workflow, failed, expensive, since, exclude):
        files = RunFiles(root, rid)
        run = TraceRun(id=rid, status=status, error=(error or None), cost=cost, picked=picked)
        for label, row in _stage_rows(await journal.load_steps(rid)):
            stage = TraceStage(
                stage=label, key=row.key, kind=row.kind, status=row.status, error=_error_text(row.error)
            )
            lines = render_transcript(files.session_path(session_key(row.kind, row.key)))
            if lines:
                target = folder / "runs" / rid / f"{safe_key(label)}.txt"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("\n".join(lines) + "\n", encoding="utf-8")
                stage.transcript, stage.lines = str(target), len(lines)
            run.stages.append(stage)
        runs.append(run)
    if source is not None and source.resolve().is_relative_to(root.resolve()):
        source = source.resolve().relative_to(root.resolve())
    pack = TracePack(
        workflow=workflow,
        source=str(source) if source is not None else None,
        folder=str(folder),
        index_file=str(folder / "index.md"),
        stats_file=str(stats_file),
        runs=runs,
    )
    Path(pack.index_file).write_text(index_text(pack), encoding="utf-8")
    return pack


def index_text(pack: TracePack) -> str:
    """``index.md``: the runs picked, their stages and where each transcript is."""
    lines = [
        f"# Runs of {pack.workflow} to review",
        "",
        f"The workflow's code: {pack.source or '(unknown)'}.",
        f"Statistics: {pack.stats_file}. In each transcript file, line N is line N of the stage's",
        "transcript: cite it as (run id, stage, line).",
        "",
    ]
    for run in pack.runs:
        why = "failed" if run.picked == "failed" else "among the most expensive"
        lines.append(f"## Run {run.id}: {run.status} ({why}, ${run.cost:.4f})")
        if run.error:
            lines.append(f"Error: {run.error.splitlines()[0][:300]}")
        lines.append("")
        for s in run.stages:
            where = f"{s.transcript} ({s.lines} lines)" if s.transcript else "no transcript"
            error = f" — {s.error}" if s.error else ""
            lines.append(f"- stage `{s.stage}` ({s.kind}, {s.status}{error}): {where}")
        lines.append("")
    if not pack.runs:
        lines.append("No finished run of this workflow matches.")
    return "\n".join(lines) + "\n"


# -- checking what a reviewer cites -------------------------------------------------------------


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def evidence_problem(evidence: Evidence, pack: TracePack) -> str | None:
    """Why ``evidence`` does not hold (None when it does)."""
    run = pack.run(evidence.run)
    if run is None:
        return f"run {evidence.run!r} was not reviewed (or does not exist)"
    stage = next((s for s in run.stages if s.stage == evidence.stage), None)
    if stage is None:
        return f"run {run.id} has no stage {evidence.stage!r}"
    if stage.transcript is None or evidence.line > stage.lines:
        return f"stage {stage.stage!r} of run {run.id} has no line {evidence.line} (it has {stage.lines})"
    if evidence.quote:
        lines = Path(stage.transcript).read_text(encoding="utf-8").split("\n")
        if _norm(evidence.quote) not in _norm(lines[evidence.line - 1]):
            return f"line {evidence.line} of stage {stage.stage!r} of run {run.id} does not say {evidence.quote!r}"
    return None


def check_findings(
    findings: TraceFindings, pack: TracePack, *, min_runs: int = 1
) -> tuple[list[TraceFinding], list[dict[str, str]]]:
    """The findings whose every piece of evidence holds and that show in at least ``min_runs``
    runs, and the dropped ones with why (fail closed: one bad citation drops the finding)."""
    kept: list[TraceFinding] = []
    dropped: list[dict[str, str]] = []
    for finding in findings.findings:
        problems = [p for p in (evidence_problem(e, pack) for e in finding.evidence) if p]
        runs = {e.run for e in finding.evidence}
        if not finding.evidence:
            problems.append("it cites no evidence")
        elif not problems and len(runs) < min_runs:
            problems.append(f"it shows in {len(runs)} run(s), fewer than {min_runs}")
        if problems:
            dropped.append({"title": finding.title, "reason": "; ".join(problems)})
        else:
            kept.append(finding)
    return kept, dropped
