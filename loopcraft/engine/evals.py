"""``loopcraft eval``: run a workflow over a file of cases, K times each, and report how it did.

Each line of the cases file (JSONL) is one case: ``{"name": …, "inputs": {…}, "check": "cmd"}``
(or a flat object of inputs, with optional ``name`` and ``check``). Every repeat is a real run,
tagged with the eval id (an ``eval`` event in its journal); it passes when it completed and its
check (run by the shell in the repository, with ``LOOPCRAFT_RUN_ID`` and ``LOOPCRAFT_RUN_OUTPUT``,
a file holding the run's output as JSON) exits 0. The report (``eval.json`` and ``report.md`` in
``.loopcraft/evals/<id>/``) gives per case and overall pass rate, ICIR, cost and duration, and
flags regressions against a baseline eval that are beyond noise.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from loopcraft.engine.artifacts import write_durably
from loopcraft.engine.service import Engine
from loopcraft.engine.stats import icir, mean, percentile, std
from loopcraft.errors import LoopcraftError, NotFoundError
from loopcraft.paths import state_dir

CHECK_TIMEOUT = 600.0


class EvalError(LoopcraftError):
    """A bad cases file, baseline or option."""

    exit_code = 2


class Case(BaseModel):
    name: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    check: str | None = None


class Attempt(BaseModel):
    case: str
    repeat: int
    run_id: str
    status: str
    passed: bool
    check_code: int | None = None
    cost: float = 0.0
    tokens: int = 0
    duration: float = 0.0


def evals_dir(root: Path) -> Path:
    return state_dir(root) / "evals"


def new_eval_id() -> str:
    return "eval-" + time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]


def read_cases(path: Path) -> list[Case]:
    """The cases of a JSONL file; a bad line is a one-line error naming it."""
    if not path.is_file():
        raise EvalError(f'no cases file {path}; write one JSON object per line, e.g. {{"inputs": {{}}}}')
    cases: list[Case] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if "inputs" not in data:
                data = {
                    "name": data.pop("name", None),
                    "check": data.pop("check", None),
                    "inputs": data,
                }
            data["name"] = data.get("name") or f"case-{len(cases) + 1}"
            cases.append(Case.model_validate(data))
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise EvalError(
                f'{path}:{number}: bad case ({first}); use {{"inputs": {{…}}, "check": "cmd"}}'
            ) from None
    if not cases:
        raise EvalError(f"{path} has no cases; write one JSON object per line")
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise EvalError(f'{path}: case names repeat; give each case its own "name"')
    return cases


async def _check(root: Path, cmd: str, run_id: str, output: Any, folder: Path) -> int:
    out_file = folder / "outputs" / f"{run_id}.json"
    write_durably(out_file, json.dumps(output, default=str))
    env = {**os.environ, "LOOPCRAFT_RUN_ID": run_id, "LOOPCRAFT_RUN_OUTPUT": str(out_file)}
    proc = await asyncio.create_subprocess_shell(
        cmd, cwd=root, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        return await asyncio.wait_for(proc.wait(), CHECK_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1


async def _tag(engine: Engine, run_id: str, eval_id: str, case: str, repeat: int) -> None:
    seq = await engine.journal.max_event_seq(run_id) + 1
    payload = {"eval": eval_id, "case": case, "repeat": repeat}
    await engine.journal.append_events([(run_id, seq, time.time(), "eval", payload)])


async def _attempt(
    engine: Engine, eval_id: str, folder: Path, workflow: str, case: Case, repeat: int, model: str | None
) -> Attempt:
    run_id = await engine.start(workflow, case.inputs, model=model)
    info = await engine.wait(run_id)
    await _tag(engine, run_id, eval_id, case.name, repeat)  # after the run: its own events are all in
    code = None
    if info.status == "completed" and case.check:
        code = await _check(engine.root, case.check, run_id, info.output, folder)
    return Attempt(
        case=case.name,
        repeat=repeat,
        run_id=run_id,
        status=info.status,
        passed=info.status == "completed" and (code is None or code == 0),
        check_code=code,
        cost=info.cost,
        tokens=info.usage.total_tokens,
        duration=info.elapsed,
    )


def summarize(attempts: list[Attempt]) -> dict[str, Any]:
    passes = [1.0 if a.passed else 0.0 for a in attempts]
    costs = [a.cost for a in attempts]
    durations = [a.duration for a in attempts]
    return {
        "runs": len(attempts),
        "passed": sum(1 for a in attempts if a.passed),
        "pass_rate": mean(passes),
        "std": std(passes),
        "icir": icir(passes),
        "cost_mean": mean(costs),
        "cost_std": std(costs),
        "duration_p50": percentile(durations, 50),
        "duration_p95": percentile(durations, 95),
    }


def _beyond_noise(new: dict[str, Any], old: dict[str, Any]) -> str | None:
    """Why ``new`` is worse than ``old`` beyond noise, or None. The pass rate must drop by more than
    two standard errors of the difference and more than one run's worth (1/n)."""
    p1, n1, p2, n2 = old["pass_rate"], old["runs"], new["pass_rate"], new["runs"]
    if p1 is None or p2 is None or not n1 or not n2:
        return None
    drop = p1 - p2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    if drop > max(2 * se, 1 / min(n1, n2)) + 1e-9:
        return f"pass rate {p1:.0%} → {p2:.0%}"
    c1, c2 = old.get("cost_mean") or 0.0, new.get("cost_mean") or 0.0
    spread = math.sqrt((old.get("cost_std") or 0.0) ** 2 / n1 + (new.get("cost_std") or 0.0) ** 2 / n2)
    if c1 > 0 and c2 > c1 * 1.1 and c2 - c1 > 2 * spread:
        return f"cost ${c1:.4f} → ${c2:.4f}"
    return None


def compare(report: dict[str, Any], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """Regressions of ``report`` against ``baseline``: per case present in both, and overall."""
    flagged = []
    old_cases = baseline.get("cases", {})
    for name, summary in report["cases"].items():
        if name in old_cases and (why := _beyond_noise(summary, old_cases[name])):
            flagged.append({"case": name, "reason": why})
    if why := _beyond_noise(report["overall"], baseline["overall"]):
        flagged.append({"case": "(overall)", "reason": why})
    return flagged


def load_eval(root: Path, eval_id: str) -> dict[str, Any]:
    path = evals_dir(root) / eval_id / "eval.json"
    if not path.is_file():
        known = sorted(p.name for p in evals_dir(root).glob("eval-*")) if evals_dir(root).is_dir() else []
        raise NotFoundError(f"no eval {eval_id!r}; evals: {', '.join(known) or 'none yet'}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


async def run_eval(
    engine: Engine,
    workflow: str,
    cases: list[Case],
    *,
    repeat: int = 1,
    concurrency: int = 1,
    model: str | None = None,
    baseline: str | None = None,
) -> dict[str, Any]:
    """Run every case ``repeat`` times (``concurrency`` at once) and write the report."""
    if repeat < 1 or concurrency < 1:
        raise EvalError("--repeat and --concurrency must be at least 1")
    engine.workflows().get(workflow)
    for case in cases:
        engine.workflows().get(workflow).validate_inputs(case.inputs)
    old = load_eval(engine.root, baseline) if baseline else None
    eval_id = new_eval_id()
    folder = evals_dir(engine.root) / eval_id
    folder.mkdir(parents=True, exist_ok=True)
    ignore = evals_dir(engine.root) / ".gitignore"
    if not ignore.exists():  # like logs/: the evals folder ignores itself
        ignore.write_text("*\n", encoding="utf-8")
    engine.stop_at_gates = True  # nobody answers a gate in an eval: it ends the run as needs_human
    gate = asyncio.Semaphore(concurrency)

    async def one(case: Case, index: int) -> Attempt:
        async with gate:
            return await _attempt(engine, eval_id, folder, workflow, case, index, model)

    started = time.time()
    attempts = await asyncio.gather(*[one(c, k) for c in cases for k in range(1, repeat + 1)])
    report: dict[str, Any] = {
        "id": eval_id,
        "workflow": workflow,
        "repeat": repeat,
        "created": started,
        "elapsed": time.time() - started,
        "baseline": baseline,
        "cases": {c.name: summarize([a for a in attempts if a.case == c.name]) for c in cases},
        "overall": summarize(list(attempts)),
        "attempts": [a.model_dump() for a in attempts],
    }
    report["regressions"] = compare(report, old) if old else []
    write_durably(folder / "eval.json", json.dumps(report, indent=2, default=str))
    write_durably(folder / "report.md", report_markdown(report))
    return report


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _icir_text(summary: dict[str, Any]) -> str:
    if summary["icir"] is not None:
        return f"{summary['icir']:.2f}"
    return "inf" if summary["std"] == 0 and summary["pass_rate"] else "-"


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    flagged = {r["case"]: r["reason"] for r in report.get("regressions", [])}
    rows = [["case", "runs", "pass", "ICIR", "cost", "p50", "regression"]]
    for name, s in [*report["cases"].items(), ("(overall)", report["overall"])]:
        rows.append(
            [
                name,
                str(s["runs"]),
                _rate(s["pass_rate"]),
                _icir_text(s),
                f"${s['cost_mean'] or 0:.4f}",
                f"{s['duration_p50'] or 0:.1f}s",
                flagged.get(name, ""),
            ]
        )
    return rows


def table_lines(report: dict[str, Any]) -> list[str]:
    rows = table_rows(report)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def report_markdown(report: dict[str, Any]) -> str:
    rows = table_rows(report)
    lines = [f"# Eval {report['id']}: {report['workflow']}", ""]
    lines.append(f"{len(report['cases'])} case(s) × {report['repeat']} repeat(s)")
    if report["baseline"]:
        lines.append(f"; baseline {report['baseline']}")
    lines += ["", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    if report["regressions"]:
        lines += ["", "## Regressions", ""] + [f"- {r['case']}: {r['reason']}" for r in report["regressions"]]
    lines += ["", "## Runs", ""]
    lines += [f"- {a['case']} #{a['repeat']}: `{a['run_id']}` {a['status']}" for a in report["attempts"]]
    return "\n".join(lines) + "\n"
