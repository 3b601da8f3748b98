"""``improve``: the autoresearch loop. Measure a metric, then run experiments one at a time: in its own
worktree (started from the best state so far) an agent makes one change to the allowed files, the
metric is measured there, and the change is kept (one commit on ``loopcraft/improve/<run>``) only if
it is better by at least ``min_delta``; otherwise the worktree and its changes are dropped. A metric
that fails or runs past ``experiment_timeout`` is a crash, and a crash is a discard.

Every experiment is a row of ``results.tsv`` (in the run's artifacts) and an event of the ledger.

Run it with ``loopcraft run improve --input goal="make it faster" --input metric="python bench.py"
--input direction=min --input files='["src/*.py"]'``.
"""

from __future__ import annotations

import fnmatch
import re
import statistics
from typing import Literal

from pydantic import BaseModel

from loopcraft import Context, gitops, workflow

Direction = Literal["min", "max"]
Status = Literal["baseline", "keep", "discard", "crash"]
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
TSV_HEADER = "experiment\tcommit\tmetric\tstatus\tdescription"


class Experiment(BaseModel):
    """One row of ``results.tsv``."""

    experiment: int
    commit: str = "-"
    metric: float | None = None
    status: Status
    description: str = ""

    def tsv(self) -> str:
        value = "-" if self.metric is None else f"{self.metric:g}"
        text = " ".join(self.description.split())[:200] or "-"
        return f"{self.experiment}\t{self.commit[:12]}\t{value}\t{self.status}\t{text}"


class ImproveResult(BaseModel):
    """What ``improve`` returns: the baseline and best metric, the kept commits and their branch."""

    baseline: float
    best: float
    direction: Direction
    branch: str
    kept: list[str]
    experiments: list[Experiment]
    results: str  # the results.tsv file


def last_number(output: str) -> float | None:
    """The last number printed on stdout (the metric's score), or None when there is none."""
    found = _NUMBER.findall(output)
    return float(found[-1]) if found else None


def file_globs(files: list[str] | str) -> list[str]:
    """``files`` as a list of globs (a comma-separated string is accepted too)."""
    items = files if isinstance(files, list) else files.split(",")
    return [g.strip().removeprefix("./") for g in items if g.strip()]


def write_rules(globs: list[str]) -> list[dict[str, str]]:
    """Permission rules: ``write`` and ``edit`` refused everywhere except the globs (last match wins)."""
    rules = [{"tool": t, "pattern": "*", "action": "deny"} for t in ("write", "edit")]
    return rules + [{"tool": t, "pattern": g, "action": "allow"} for g in globs for t in ("write", "edit")]


def outside(changed: list[str], globs: list[str]) -> list[str]:
    return [path for path in changed if not any(fnmatch.fnmatchcase(path, g) for g in globs)]


def better(value: float, best: float, direction: Direction, min_delta: float) -> bool:
    """Whether ``value`` beats ``best`` by at least ``min_delta`` (and by something)."""
    gain = value - best if direction == "max" else best - value
    return gain > 0 and gain >= min_delta


async def measure(
    ctx: Context, name: str, metric: str, repeats: int, timeout: float, cwd: str | None = None
) -> tuple[float | None, str]:
    """The median of ``repeats`` runs of the metric; (None, why) when one fails, times out or prints
    no number."""
    values = []
    for index in range(1, repeats + 1):
        label = name if repeats == 1 else f"{name}-{index}"
        check = await ctx.check(label, metric, timeout=timeout, cwd=cwd)
        if check.timed_out:
            return None, f"metric timed out after {timeout:g}s"
        if not check.passed:
            return None, f"metric exited {check.code}: {_last_line(check.output)}"
        value = last_number(check.output)
        if value is None:
            return None, "the metric printed no number"
        values.append(value)
    return statistics.median(values), ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:160] if lines else "(no output)"


def history_table(rows: list[Experiment]) -> str:
    return "\n".join([TSV_HEADER, *(row.tsv() for row in rows)])


@workflow(
    description="One improve experiment (run by improve): one change in a worktree, measured, kept or dropped",
    nested=True,
)
async def improve_experiment(
    ctx: Context,
    n: int,
    goal: str,
    metric: str,
    direction: Direction,
    files: list[str],
    branch: str,
    best: float,
    history: str,
    experiment_timeout: float,
    min_delta: float,
    repeats: int,
    model: str | None = None,
) -> Experiment:
    stage = f"change-{n}"
    tip = await ctx.tool(f"tip-{n}", lambda: gitops.head(ctx.workspace, branch))
    prompt = (
        f"Goal: {goal}\n\nThe metric is `{metric}` (its last number on stdout; "
        f"{'lower' if direction == 'min' else 'higher'} is better). The best so far is {best:g}.\n"
        f"You may change only files matching: {', '.join(files)}. Writes elsewhere are refused.\n\n"
        f"Results so far (results.tsv):\n{history}\n\n"
        "Make exactly one focused change that you expect to improve the metric; don't repeat an "
        "experiment that was discarded. Don't commit. End with one line describing the change."
    )
    try:
        change = await ctx.task(
            stage,
            prompt=prompt,
            model=model,
            worktree=True,
            keep_worktree=True,
            worktree_base=branch,
            permission_rules=write_rules(files),
        )
    except Exception as exc:  # the agent failed: its worktree (if any) goes
        await ctx.tool(f"drop-{n}", lambda: _drop(ctx, stage))
        return Experiment(experiment=n, status="crash", description=f"agent failed: {exc}"[:200])
    description = _last_line(change.text)
    changed = await ctx.tool(
        f"changed-{n}", lambda: gitops.changed_files(ctx.workspace, tip, change.branch or tip)
    )
    stray = outside(changed, files)
    value: float | None = None
    if not changed:
        status: Status = "discard"
        description = f"no change ({description})"
    elif stray:
        status = "discard"
        description = f"changed files outside `files`: {', '.join(stray[:5])} ({description})"
    else:
        value, why = await measure(ctx, f"metric-{n}", metric, repeats, experiment_timeout, change.worktree)
        if value is None:
            status, description = "crash", f"{why} ({description})"
        else:
            status = "keep" if better(value, best, direction, min_delta) else "discard"
    commit = "-"
    if status == "keep":
        message = f"improve: experiment {n}: {description}\n\nmetric {best:g} -> {value:g}"
        source = change.branch or tip
        commit = await ctx.tool(
            f"keep-{n}", lambda: gitops.commit_onto(ctx.workspace, branch, source, message)
        )
    await ctx.tool(f"drop-{n}", lambda: _drop(ctx, stage))
    return Experiment(experiment=n, commit=commit, metric=value, status=status, description=description)


def _drop(ctx: Context, stage: str) -> bool:
    """Remove the experiment's worktree and its branch (a kept change lives on the improve branch)."""
    path, branch = gitops.stage_worktree(ctx.workspace, ctx.run_id, stage)
    gitops.drop_worktree(ctx.workspace, path, branch)
    return True


@workflow(description="Autoresearch: change, measure, keep if the metric improved, else discard")
async def improve(
    ctx: Context,
    goal: str,
    metric: str,
    files: list[str] | str,
    direction: Direction = "max",
    max_experiments: int = 20,
    experiment_timeout: float = 600.0,
    min_delta: float = 0.0,
    repeats: int = 1,
    model: str | None = None,
) -> ImproveResult:
    globs = file_globs(files)
    if not globs:
        ctx.exit("failed", "improve: `files` names no globs; give the files the agent may change")
    if repeats < 1 or max_experiments < 1 or experiment_timeout <= 0:
        ctx.exit(
            "failed", "improve: repeats and max_experiments must be at least 1, experiment_timeout positive"
        )
    ledger = ctx.ledger()
    branch = f"loopcraft/improve/{gitops.safe_name(ctx.run_id)}"
    base = await ctx.tool("branch", lambda: gitops.ensure_branch(ctx.workspace, branch))
    baseline, why = await measure(ctx, "baseline", metric, repeats, experiment_timeout)
    if baseline is None:
        ledger.set(status="blocked", reason=why)
        ctx.exit("blocked", f"the baseline measurement failed: {why}")
    rows = [Experiment(experiment=0, commit=base, metric=baseline, status="baseline", description="baseline")]
    ledger.record("baseline", "check", rows[0])
    best, kept = baseline, []
    results = ctx.artifacts_dir / "results.tsv"
    await ctx.tool("results-0", lambda: _write(results, rows))
    for n in range(1, max_experiments + 1):
        row = await ctx.workflow(
            improve_experiment,
            label=f"experiment-{n}",
            n=n,
            goal=goal,
            metric=metric,
            direction=direction,
            files=globs,
            branch=branch,
            best=best,
            history=history_table(rows),
            experiment_timeout=experiment_timeout,
            min_delta=min_delta,
            repeats=repeats,
            model=model,
        )
        row = Experiment.model_validate(row)
        rows.append(row)
        if row.status == "keep" and row.metric is not None:
            best = row.metric
            kept.append(row.commit)
        ledger.record(f"experiment-{n}", "experiment", row)
        ledger.set(best=best, kept=kept, experiments=n, branch=branch)
        await ctx.tool(f"results-{n}", lambda: _write(results, rows))
    ledger.set(status="completed")
    return ImproveResult(
        baseline=baseline,
        best=best,
        direction=direction,
        branch=branch,
        kept=kept,
        experiments=rows[1:],
        results=str(results),
    )


def _write(path: object, rows: list[Experiment]) -> str:
    from pathlib import Path

    target = Path(str(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(history_table(rows) + "\n", encoding="utf-8")
    return str(target)
