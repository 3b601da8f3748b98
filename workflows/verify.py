"""``verify``: adversarial verification of an artifact or a change. For each criterion (default task
fit, evidence, completeness) several fresh-context verifiers score the target 1–20 with evidence and
findings (veto / blocking / note, as ``Finding`` priorities 0 / 1 / 2). The target is accepted only if
every score is valid, their mean is at least ``threshold`` (14) and nothing was vetoed
(``reduce_verdicts`` with ``mean_at_least(threshold, veto=True)``); otherwise a repair stage fixes
the findings and another round runs, at most ``max_repairs`` (2) times.

Run it with ``loopcraft run verify --input target=docs/design.md --input task="a design for X"``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from loopcraft import Context, Decision, Verdict, gitops, mean_at_least, reduce_verdicts, workflow

DEFAULT_CRITERIA = ["task fit", "evidence", "completeness"]
SCORING = (
    "Score it from 1 (worthless) to 20 (flawless) in `score`; 14 is the bar for acceptance. Back the "
    "score with evidence you checked yourself (quote lines, run commands) in `summary`. Report every "
    "problem as a finding: priority 0 is a veto (the target is wrong or unsafe whatever else holds), "
    "1 is blocking (must be fixed before acceptance), 2 or 3 is a note. Set `approve` to whether it "
    "passes this criterion. Be adversarial: look for what is missing, unproven or wrong."
)


class VerifyResult(BaseModel):
    """What ``verify`` returns when the target was accepted."""

    accepted: bool
    rounds: int
    repairs: int
    mean: float | None
    reason: str


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "criterion"


def _target_file(root: Path, target: str) -> Path | None:
    if "\n" in target or len(target) > 300:
        return None
    path = root / target
    return path if path.is_file() else None


def _describe(root: Path, target: str) -> str:
    """What the verifiers read when the target is not a file: a diff range's diff, else the text."""
    if re.fullmatch(r"[\w./-]+\.\.\.?[\w./-]*", target):
        start, _, end = target.replace("...", "..").partition("..")
        return f"# The change {target}\n```diff\n{gitops.git_diff(root, start, end or 'HEAD')}\n```\n"
    return f"# The target\n{target}\n"


async def _round(
    ctx: Context,
    number: int,
    reads: list[str],
    what: str,
    task: str,
    criteria: list[str],
    verifiers: int,
    models: list[str] | None,
    model: str | None,
    threshold: float,
) -> Decision:
    specs: list[Any] = []
    for criterion in criteria:
        for j in range(verifiers):
            chosen = models[(len(specs)) % len(models)] if models else model
            specs.append(
                ctx.spec(
                    f"verify-{number}-{slug(criterion)}-{j + 1}",
                    prompt=(
                        f"Verify {what} against one criterion: {criterion}.\n"
                        f"The task it must fulfil: {task or '(not given: judge it on its own terms)'}\n\n{SCORING}"
                    ),
                    reads=reads,
                    schema=Verdict,
                    model=chosen,
                )
            )
    verdicts = await ctx.parallel(*specs, fail_fast=False)
    return reduce_verdicts(verdicts, mean_at_least(threshold, veto=True), expected=len(specs))


@workflow(description="Adversarial verification: scored fresh verifiers per criterion, veto, repair rounds")
async def verify(
    ctx: Context,
    target: str,
    task: str = "",
    criteria: list[str] | None = None,
    verifiers: int = 3,
    threshold: float = 14.0,
    max_repairs: int = 2,
    verifier_models: list[str] | None = None,
    model: str | None = None,
) -> VerifyResult:
    criteria = criteria or DEFAULT_CRITERIA
    if verifiers < 1 or max_repairs < 0:
        ctx.exit("failed", "verify: verifiers must be at least 1 and max_repairs at least 0")
    root = ctx.workspace
    ledger = ctx.ledger()
    file = _target_file(root, target)
    if file is not None:
        reads, what = [target], f"the file {target}"
    else:
        context = ctx.artifacts_dir / "verify-target.md"
        text = await ctx.tool("target", lambda: _describe(root, target))
        await ctx.tool("target-file", lambda: _write(context, text))
        reads, what = [str(context)], "the target described in the file given"
    decision: Decision | None = None
    for number in range(1, max_repairs + 2):
        decision = await _round(
            ctx, number, reads, what, task, criteria, verifiers, verifier_models, model, threshold
        )
        ledger.record(f"round-{number}", "review", decision)
        if decision.status == "complete":
            ledger.set(status="accepted", rounds=number, mean=decision.mean)
            return VerifyResult(
                accepted=True,
                rounds=number,
                repairs=number - 1,
                mean=decision.mean,
                reason=decision.reason,
            )
        if number > max_repairs:
            break
        findings = "\n".join(f"- [P{f.priority}] {f.title}: {f.body}" for f in decision.blocking)
        await ctx.task(
            f"repair-{number}",
            prompt=(
                f"{what[0].upper()}{what[1:]} was rejected by its verifiers: {decision.reason}.\n"
                f"The task it must fulfil: {task or '(see the target)'}\n"
                f"Fix it so that it meets the criteria ({', '.join(criteria)}). Findings:\n"
                f"{findings or '- (no blocking findings: raise its overall quality and evidence)'}"
            ),
            reads=reads,
            model=model,
        )
    assert decision is not None
    status = "blocked" if decision.blocking else "needs_human"
    ledger.set(status=status, reason=decision.reason)
    ctx.exit(status, f"not accepted after {max_repairs} repair(s): {decision.reason}")


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)
