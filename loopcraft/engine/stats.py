"""Run analytics for ``loopcraft stats``: per workflow and per stage, from the journal's rows.

:func:`load_facts` reads the runs, their stage steps and their scores in a few queries;
everything else is pure functions over those facts (rates, mean / std / ICIR of each score,
percentiles of cost, tokens and duration, how runs ended, the costliest and most failing stages,
the model layer's retries and fallbacks by error class, from the agents' journaled
``model_retries`` events). A run's final status is a score too: ``completed`` is 1 for a completed
run, 0 otherwise.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from loopcraft.engine.graph import GRAPH_KINDS
from loopcraft.engine.journal import Journal
from loopcraft.engine.results import FINAL_STATES
from loopcraft.errors import LoopcraftError
from loopcraft.models.types import Usage

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_LIMIT = re.compile(r"\b(tokens|dollars|seconds|stages|turns|tool_calls)\s*=")
_RAISED = re.compile(r"workflow raised (\w+)")
STAGE_STEP_KINDS = tuple(sorted(GRAPH_KINDS - {"workflow"}))
TOP = 3
BUCKETS = 24


def parse_age(text: str, option: str = "--since") -> float:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w`` as seconds; anything else is a one-line error."""
    match = _AGE.match(text)
    if match is None:
        raise LoopcraftError(f"bad {option} {text!r}: use a number and a unit s, m, h, d or w, e.g. 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass
class StageFacts:
    name: str
    kind: str
    status: str
    duration: float
    usage: Usage
    error_type: str | None
    key: str = ""


@dataclass
class RetryFact:
    """One failed model attempt of a stage and what followed it (retry, fallback, gave_up)."""

    stage: str
    error_class: str
    then: str


@dataclass
class RunFacts:
    id: str
    workflow: str
    status: str
    error: str | None
    created: float
    duration: float
    usage: Usage
    scores: dict[str, float] = field(default_factory=dict)
    stages: list[StageFacts] = field(default_factory=list)
    retries: list[RetryFact] = field(default_factory=list)


# -- pure statistics --------------------------------------------------------------------------


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def std(values: list[float]) -> float | None:
    """The sample standard deviation (n - 1); None below two values."""
    if len(values) < 2:
        return None
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def icir(values: list[float]) -> float | None:
    """mean / std: how stable a score is (None when std is unknown or zero)."""
    m, s = mean(values), std(values)
    return None if m is None or not s else m / s


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}


def score_summary(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "mean": mean(values), "std": std(values), "icir": icir(values)}


def end_class(run: RunFacts) -> str:
    """Why a run ended that way: the failing step's error type, the blocked reason, the budget limit."""
    error = run.error or ""
    if run.status == "budget_exceeded":
        match = _LIMIT.search(error)
        return match.group(1) if match else "unknown"
    if run.status == "failed":
        failing = {s.name for s in run.stages if s.status == "failed"}
        gave_up = [r for r in run.retries if r.then == "gave_up" and r.stage in failing]
        if gave_up:  # every model of the chain failed: the model layer's error class says why
            return f"model {gave_up[-1].error_class}"
        failed = next((s.error_type for s in run.stages if s.status == "failed" and s.error_type), None)
        if failed:
            return failed
        raised = _RAISED.search(error)
        return raised.group(1) if raised else "error"
    return error.splitlines()[0][:120] if error else "(no reason)"


# -- aggregation -------------------------------------------------------------------------------


def _usage_figures(runs: list[RunFacts]) -> dict[str, Any]:
    return {
        "cost": spread([r.usage.cost_usd for r in runs]),
        "tokens": spread([float(r.usage.total_tokens) for r in runs]),
    }


def _cache_share(usages: list[Usage]) -> float | None:
    """Cache reads as a share of input tokens (None without input tokens)."""
    input_tokens = sum(u.input_tokens for u in usages)
    return sum(u.cache_read_tokens for u in usages) / input_tokens if input_tokens else None


def retry_counts(runs: list[RunFacts]) -> dict[str, dict[str, int]]:
    """``{"retry": {error_class: n}, "fallback": {...}, "gave_up": {...}}`` over the runs' attempts."""
    counts: dict[str, Counter[str]] = {then: Counter() for then in ("retry", "fallback", "gave_up")}
    for run in runs:
        for fact in run.retries:
            counts.setdefault(fact.then, Counter())[fact.error_class] += 1
    return {then: dict(sorted(c.items())) for then, c in counts.items()}


def stage_stats(runs: list[RunFacts]) -> list[dict[str, Any]]:
    """Per stage name: how often it ran and failed, its cost, tokens, duration, retries and fallbacks."""
    by_name: dict[str, list[StageFacts]] = defaultdict(list)
    tries: dict[str, Counter[str]] = defaultdict(Counter)
    for run in runs:
        for stage in run.stages:
            by_name[stage.name].append(stage)
        for fact in run.retries:
            tries[fact.stage][fact.then] += 1
    rows = []
    for name, stages in sorted(by_name.items()):
        failed = sum(1 for s in stages if s.status == "failed")
        costs = [s.usage.cost_usd for s in stages]
        rows.append(
            {
                "stage": name,
                "kind": stages[0].kind,
                "runs": len(stages),
                "failed": failed,
                "failure_rate": failed / len(stages),
                "cost_total": sum(costs),
                "cost": spread(costs),
                "tokens": spread([float(s.usage.total_tokens) for s in stages]),
                "duration": spread([s.duration for s in stages]),
                "cache_read_share": _cache_share([s.usage for s in stages]),
                "retries": tries[name]["retry"],
                "fallbacks": tries[name]["fallback"],
            }
        )
    return rows


def trend(runs: list[RunFacts], buckets: int = BUCKETS) -> dict[str, Any]:
    """Cost per run and completion rate over time: the runs' span cut into ``buckets`` equal slices
    (oldest first; a slice with no run is None), for the app's sparklines."""
    if not runs:
        return {"start": None, "step": 0.0, "cost": [], "completion": []}
    start = min(r.created for r in runs)
    span = max(r.created for r in runs) - start
    count = buckets if span > 0 else 1
    step = span / count if span > 0 else 0.0
    slices: list[list[RunFacts]] = [[] for _ in range(count)]
    for run in runs:
        index = min(int((run.created - start) / step), count - 1) if step else 0
        slices[index].append(run)
    return {
        "start": start,
        "step": step,
        "cost": [mean([r.usage.cost_usd for r in part]) for part in slices],
        "completion": [mean([1.0 if r.status == "completed" else 0.0 for r in part]) for part in slices],
    }


def workflow_stats(name: str, runs: list[RunFacts]) -> dict[str, Any]:
    """Everything ``stats`` says about one workflow's finished runs."""
    done = [r for r in runs if r.status in FINAL_STATES]
    completed = [r for r in done if r.status == "completed"]
    scores: dict[str, list[float]] = defaultdict(list)
    for run in done:
        scores["completed"].append(1.0 if run.status == "completed" else 0.0)
        for key, value in run.scores.items():
            scores[key].append(value)
    ended: dict[str, Counter[str]] = defaultdict(Counter)
    for run in done:
        if run.status != "completed":
            ended[run.status][end_class(run)] += 1
    stages = stage_stats(done)
    tries = retry_counts(done)
    return {
        "workflow": name,
        "runs": len(done),
        "live": len(runs) - len(done),
        "completed": len(completed),
        "completion_rate": len(completed) / len(done) if done else None,
        "scores": {key: score_summary(values) for key, values in sorted(scores.items())},
        "per_run": _usage_figures(done),
        "per_completed_run": _usage_figures(completed),
        "duration": spread([r.duration for r in done]),
        "cache_read_share": _cache_share([r.usage for r in done]),
        "ended": {status: dict(counts) for status, counts in sorted(ended.items())},
        "retries": tries["retry"],
        "fallbacks": tries["fallback"],
        "gave_up": tries["gave_up"],
        "stages": stages,
        "most_expensive": [
            s["stage"] for s in sorted(stages, key=lambda s: -s["cost_total"]) if s["cost_total"] > 0
        ][:TOP],
        "most_failing": [s["stage"] for s in sorted(stages, key=lambda s: -s["failed"]) if s["failed"]][:TOP],
        "trend": trend(done),
    }


def compute_stats(runs: list[RunFacts]) -> list[dict[str, Any]]:
    """One entry per workflow, by name."""
    grouped: dict[str, list[RunFacts]] = defaultdict(list)
    for run in runs:
        grouped[run.workflow].append(run)
    return [workflow_stats(name, grouped[name]) for name in sorted(grouped)]


# -- reading the journal ------------------------------------------------------------------------


_USAGE_SQL = ", ".join(
    f"COALESCE(json_extract({{col}}, '$.{field}'), 0)"
    for field in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd")
)


_NUMBER = "typeof({0}) IN ('integer', 'real')"
_INTACT_RUN = " AND ".join(
    [
        _NUMBER.format("created"),
        _NUMBER.format("updated"),
        f"(finished IS NULL OR {_NUMBER.format('finished')})",
        "(usage IS NULL OR json_valid(usage))",
    ]
)
_INTACT_STEP = (
    "(usage IS NULL OR json_valid(usage)) AND (error IS NULL OR json_valid(error)) "
    f"AND (started IS NULL OR {_NUMBER.format('started')}) "
    f"AND (finished IS NULL OR {_NUMBER.format('finished')})"
)


def _usage_cols(col: str) -> str:
    """SQL for a usage column's five figures (SQLite's JSON functions: no JSON parsed in Python)."""
    return _USAGE_SQL.format(col=col)


async def load_facts(
    journal: Journal,
    *,
    workflow: str | None = None,
    since: float | None = None,
    run_ids: list[str] | None = None,
) -> list[RunFacts]:
    """The facts of the runs matching the filters (``since`` in seconds before now); a damaged run
    (``loopcraft doctor --journal`` names it) is left out instead of failing the whole query."""
    where: list[str] = [_INTACT_RUN]
    params: list[Any] = []
    if workflow is not None:
        where.append("workflow = ?")
        params.append(workflow)
    if since is not None:
        where.append("created >= ?")
        params.append(time.time() - since)
    if run_ids is not None:
        where.append(f"id IN ({', '.join('?' * len(run_ids))})")
        params.extend(run_ids)
    clause = " AND ".join(where)
    now = time.time()
    runs: dict[str, RunFacts] = {}
    for rid, wf, status, error, created, finished, updated, *u in await journal.select(
        f"SELECT id, workflow, status, error, created, finished, updated, {_usage_cols('usage')} "
        f"FROM runs WHERE {clause}",
        params,
    ):
        end = finished or (updated if status in FINAL_STATES else now)
        usage = Usage(int(u[0]), int(u[1]), int(u[2]), int(u[3]), float(u[4]))
        runs[rid] = RunFacts(rid, wf, status, error, created, max(0.0, end - created), usage)
    kinds = ", ".join(f"'{k}'" for k in STAGE_STEP_KINDS)
    names: dict[tuple[str, str], str] = {}
    for rid, key, kind, name, status, error_type, started, finished, *u in await journal.select(
        "SELECT run_id, key, kind, name, status, json_extract(error, '$.type'), started, finished, "
        f"{_usage_cols('usage')} FROM steps "
        f"WHERE kind IN ({kinds}) AND {_INTACT_STEP} AND run_id IN (SELECT id FROM runs WHERE {clause})",
        params,
    ):
        run = runs.get(rid)
        if run is not None:
            usage = Usage(int(u[0]), int(u[1]), int(u[2]), int(u[3]), float(u[4]))
            duration = max(0.0, (finished or started or 0.0) - (started or 0.0))
            run.stages.append(StageFacts(name, kind, status, duration, usage, error_type, key))
            names[(rid, key)] = name
    for rid, key, attempts in await journal.select(
        "SELECT run_id, json_extract(payload, '$.key'), json_extract(payload, '$.event.attempts') "
        "FROM events WHERE type = 'stage_event' AND payload LIKE '%\"kind\":\"model_retries\"%' "
        f"AND run_id IN (SELECT id FROM runs WHERE {clause})",
        params,
    ):
        run = runs.get(rid)
        if run is None or not attempts:
            continue
        stage = names.get((rid, key)) or str(key).rpartition(":")[2]
        for attempt in json.loads(attempts):
            run.retries.append(RetryFact(stage, str(attempt.get("error_class")), str(attempt.get("then"))))
    for rid, name, value in await journal.select(
        "SELECT run_id, name, CAST(output AS REAL) FROM steps WHERE kind = 'score' AND status = 'completed' "
        f"AND run_id IN (SELECT id FROM runs WHERE {clause})",
        params,
    ):
        if rid in runs and value is not None:
            runs[rid].scores[name] = float(value)
    return list(runs.values())


async def journal_stats(
    journal: Journal, *, workflow: str | None = None, since: float | None = None
) -> list[dict[str, Any]]:
    return compute_stats(await load_facts(journal, workflow=workflow, since=since))


# -- printing -----------------------------------------------------------------------------------


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    if value is None:
        return "-"
    return fmt.format(value)


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def stats_lines(entries: list[dict[str, Any]]) -> list[str]:
    """The human-readable report."""
    if not entries:
        return ["no runs match: start one with `loopcraft run WORKFLOW`"]
    lines: list[str] = []
    for e in entries:
        rate = _num(e["completion_rate"] * 100 if e["completion_rate"] is not None else None, "{:.0f}%")
        live = f" ({e['live']} still running)" if e["live"] else ""
        lines.append(f"{e['workflow']}: {e['runs']} runs{live}, completed {e['completed']} ({rate})")
        for key, s in e["scores"].items():
            stable = s["std"] == 0 and s["mean"]
            icir_text = _num(s["icir"]) if s["icir"] is not None else ("inf" if stable else "-")
            lines.append(
                f"  score {key:<16} mean {_num(s['mean'])}  std {_num(s['std'])}  ICIR {icir_text}  (n={s['n']})"
            )
        for label, part in (("per run", e["per_run"]), ("per completed", e["per_completed_run"])):
            lines.append(
                f"  {label:<14} cost p50 {_money(part['cost']['p50'])} p95 {_money(part['cost']['p95'])}"
                f"  tokens p50 {_num(part['tokens']['p50'], '{:,.0f}')} p95 {_num(part['tokens']['p95'], '{:,.0f}')}"
            )
        d = e["duration"]
        share = _num(e["cache_read_share"] * 100 if e["cache_read_share"] is not None else None, "{:.0f}%")
        lines.append(f"  duration       p50 {_num(d['p50'], '{:.1f}s')} p95 {_num(d['p95'], '{:.1f}s')}")
        lines.append(f"  cache reads    {share} of input tokens")
        for status, counts in e["ended"].items():
            lines.append(f"  {status:<14} " + "; ".join(f"{k} ×{v}" for k, v in counts.items()))
        for label in ("retries", "fallbacks", "gave_up"):
            if e[label]:
                name = "gave up" if label == "gave_up" else label
                lines.append(f"  {name:<14} " + "; ".join(f"{k} ×{v}" for k, v in e[label].items()))
        if e["most_expensive"]:
            lines.append("  most expensive " + ", ".join(e["most_expensive"]))
        if e["most_failing"]:
            lines.append("  most failing   " + ", ".join(e["most_failing"]))
        for s in e["stages"]:
            lines.append(
                f"    {s['stage']:<24} {s['runs']:>5}×  failed {s['failed']:>3}  "
                f"cost {_money(s['cost_total'])}  p50 {_num(s['duration']['p50'], '{:.1f}s')}"
                + (f"  retries {s['retries']}" if s["retries"] else "")
                + (f"  fallbacks {s['fallbacks']}" if s["fallbacks"] else "")
            )
    return lines
