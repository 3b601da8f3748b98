"""``goal``: work towards an objective in turns until an external check and a reviewer quorum agree.

Each turn (a nested workflow labelled ``turn-N``): the worker (continuing its own session after
turn 1) works in the loop's worktree and answers with a receipt; the loop commits the worktree
for it; the check runs there; fresh-context reviewers read the contract, the diff, the receipt
and the check output from files and return a ``Verdict`` each; the verdicts are reduced and the
turn decided by code (``reduce_verdicts`` → ``decide_turn``), never by a model. Every fact goes
into the run's ledger. Run it with ``loopcraft run goal --input objective="…" --input check="pytest -q"``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from loopcraft import (
    CheckResult,
    Context,
    Decision,
    Finding,
    Verdict,
    as_verdict,
    close_worktree,
    commit_all,
    decide_turn,
    git_diff,
    open_worktree,
    reduce_verdicts,
    snapshot,
    workflow,
)
from loopcraft import (
    quorum as quorum_rule,
)

READ_ONLY_TOOLS = ["read", "grep", "find", "ls"]
FOLDER = "goal"

ROLES = (
    (
        "completion",
        "Check the work against the acceptance contract clause by clause: approve only if every "
        "clause is met by what is in the worktree now.",
    ),
    (
        "evidence",
        "Check the evidence: are the receipt's commands and outcomes current and consistent with "
        "the diff and the check output? Approve only if the claims are backed by what really ran.",
    ),
    (
        "risk",
        "Look for risk: edge cases, regressions, and over-implementation beyond the contract. Mark "
        "findings outside the objective alignment 'beyond' (they never block).",
    ),
)


class Command(BaseModel):
    """A command the worker ran and what came of it."""

    cmd: str
    outcome: str = ""


class Receipt(BaseModel):
    """The worker's account of a turn (its final answer, kept as ``receipt.json``)."""

    changed: list[str] = Field(default_factory=list)
    commands: list[Command] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    blockers: list[str] = Field(default_factory=list)
    remaining: list[str] = Field(default_factory=list)


class TurnOutcome(BaseModel):
    """The recorded facts of one turn; the parent decides from these."""

    turn: int
    receipt: Receipt
    session: str | None = None
    tree: str
    commit: str | None = None
    check: CheckResult | None = None
    verdicts: list[Verdict] = Field(default_factory=list)


class GoalResult(BaseModel):
    """How a goal ended."""

    status: Literal["complete", "blocked", "needs_human"]
    reason: str
    turns: int
    branch: str | None = None
    merged: str | None = None  # the merge commit, when the branch was merged
    ledger: str
    remaining: list[str] = Field(default_factory=list)
    blocking: list[Finding] = Field(default_factory=list)


# -- files the stages read --------------------------------------------------------------------


def _artifact(ctx: Context, name: str, text: str) -> str:
    """Write a run artifact (deterministic content: rewriting it on replay is harmless)."""
    path = ctx.artifacts_dir / FOLDER / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def contract_text(objective: str, acceptance: str) -> str:
    return f"# Objective\n\n{objective}\n\n# Acceptance contract (immutable)\n\n{acceptance}\n"


def findings_text(turn: int, decision: Decision, outcome: TurnOutcome) -> str:
    """The consolidated findings of a turn, for the next turn's worker."""
    lines = [f"# Findings of turn {turn}", "", f"Decision: {decision.status} — {decision.reason}", ""]
    if outcome.check is not None and not outcome.check.passed:
        lines += [
            "## The check failed",
            "",
            f"`{outcome.check.cmd}`:",
            "",
            "```",
            outcome.check.output[-2000:],
            "```",
            "",
        ]
    if decision.blocking:
        lines += ["## Blocking findings (fix these first)", ""]
        lines += [_finding_line(f) for f in decision.blocking]
        lines.append("")
    notes = [f for v in outcome.verdicts for f in v.findings if not f.blocking]
    if notes:
        lines += ["## Notes (not blocking)", ""] + [_finding_line(f) for f in notes] + [""]
    gaps = sorted({g for v in outcome.verdicts for g in v.validation_gaps})
    if gaps:
        lines += ["## Validation gaps", ""] + [f"- {g}" for g in gaps] + [""]
    errors = [v.reviewer_error for v in outcome.verdicts if v.reviewer_error]
    if errors:
        lines += ["## Reviewer errors", ""] + [f"- {e}" for e in errors] + [""]
    return "\n".join(lines)


def _finding_line(f: Finding) -> str:
    where = f" ({f.file}{':' + f.lines if f.lines else ''})" if f.file else ""
    body = f": {f.body}" if f.body else ""
    return f"- [P{f.priority}, {f.alignment}] {f.title}{where}{body}"


def decision_line(turn: int, decision: Decision, check: CheckResult | None) -> str:
    """``turn 2: continue — 1/3 approve, check failed (exit 1)``."""
    line = f"turn {turn}: {decision.status} — {decision.approvals}/{decision.reviewers} approve"
    if check is not None:
        outcome = "timed out" if check.timed_out else f"exit {check.code}"
        line += ", check passed" if check.passed else f", check failed ({outcome})"
    if decision.status in ("blocked", "needs_human"):
        line += f" — {decision.reason}"
    return line


# -- one turn ---------------------------------------------------------------------------------


def _worker_prompt(objective: str, turn: int, max_turns: int, findings: str | None) -> str:
    parts = [
        f"You are the worker of a goal loop, turn {turn} of at most {max_turns}.",
        f"Objective: {objective}",
    ]
    if findings:
        parts.append(
            "First read the consolidated findings of the last turn (listed below) and fix every "
            f"blocking finding and a failing check before anything else:\n{findings}"
        )
    parts.append(
        "The acceptance contract is in contract.md and does not change. Work in the current folder; "
        "run the commands you need to show it works. Do not commit: the loop commits your changes. "
        "Finish with your receipt: what you changed, the commands you ran with their outcomes, the "
        "evidence, any blockers, and the work that remains."
    )
    return "\n\n".join(parts)


def _reviewer_prompt(role: str, focus: str, turn: int) -> str:
    return (
        f"You are a fresh-context {role} reviewer of turn {turn} of a goal loop. {focus} Read the "
        "contract, the diff, the worker's receipt and the check output (files listed below) and the "
        "code in the current folder. Give each finding a priority (0 veto, 1 blocking, 2-3 notes) and "
        "its alignment with the objective (required, consistent, beyond, contradicts). Approve only "
        "when nothing required is missing."
    )


@workflow(description="One turn of goal: worker, commit, check, reviewers (run by goal)", nested=True)
async def goal_turn(
    ctx: Context,
    objective: str,
    turn: int,
    max_turns: int,
    contract: str,
    check: str | None = None,
    reviewers: int = 3,
    reviewer_models: list[str] | None = None,
    workspace: str | None = None,
    base: str = "",
    session: str | None = None,
    findings: str | None = None,
    findings_file: str | None = None,
) -> TurnOutcome:
    ledger = ctx.ledger()
    folder = workspace or str(ctx.workspace)
    reads = [contract] + ([findings_file] if findings_file else [])
    work = await ctx.task(
        "worker",
        prompt=_worker_prompt(objective, turn, max_turns, findings),
        reads=reads,
        schema=Receipt,
        output=f"{FOLDER}/turn-{turn}/receipt.json",
        output_mode="file-only",
        workspace=workspace,
        context="fork" if session else "fresh",
        fork_from=session,
    )
    receipt = Receipt.model_validate(work.structured)
    receipt_file = str(ctx.artifacts_dir / FOLDER / f"turn-{turn}" / "receipt.json")
    ledger.record(f"goal:turn-{turn}:receipt", "receipt", receipt)

    message = f"goal turn {turn}: {objective[:60]}"
    if workspace:
        state: dict[str, Any] = await ctx.tool("commit", lambda: commit_all(folder, message).model_dump())
    else:
        state = await ctx.tool("snapshot", lambda: {"tree": snapshot(folder), "commit": None})
    diff_file = await ctx.tool(
        "diff", lambda: _artifact(ctx, f"turn-{turn}/diff.patch", git_diff(folder, base, state["commit"]))
    )

    result = await ctx.check("check", check, cwd=folder) if check else None
    if result is not None:
        ledger.record(f"goal:turn-{turn}:check", "check", result)

    files = [contract, diff_file, receipt_file] + ([result.artifact] if result and result.artifact else [])
    models: list[str | None] = [*reviewer_models] if reviewer_models else [None]
    calls = [
        ctx.task(
            f"t{turn}-reviewer-{i + 1}",
            prompt=_reviewer_prompt(*ROLES[i % len(ROLES)], turn),
            reads=files,
            schema=Verdict,
            model=models[i % len(models)],
            tools=READ_ONLY_TOOLS,
            workspace=workspace,
        )
        for i in range(reviewers)
    ]
    verdicts = await ctx.parallel(*[as_verdict(c) for c in calls], fail_fast=False)
    ledger.record(
        f"goal:turn-{turn}:reviews", "reviews", {"verdicts": [v.model_dump(mode="json") for v in verdicts]}
    )
    return TurnOutcome(
        turn=turn,
        receipt=receipt,
        session=work.session_path,
        tree=state["tree"],
        commit=state["commit"],
        check=result,
        verdicts=verdicts,
    )


# -- the loop ---------------------------------------------------------------------------------


@workflow(
    description="Work towards an objective in turns until the check passes and a reviewer quorum approves"
)
async def goal(
    ctx: Context,
    objective: str,
    acceptance: str | None = None,
    check: str | None = None,
    max_turns: int = Field(default=4, ge=1, le=20),
    reviewers: int = Field(default=3, ge=1, le=9),
    quorum: int = Field(default=2, ge=1),
    reviewer_models: list[str] | None = None,
    worktree: bool = True,
    merge: Literal["ask", "yes", "no"] = "ask",
    end_run: bool = True,
) -> GoalResult:
    """Inputs: ``objective``; ``acceptance`` (the immutable contract, default the objective);
    ``check`` (a shell command that must pass); ``max_turns``; ``reviewers`` and ``quorum``;
    ``reviewer_models`` (reviewer i uses model i mod N); ``worktree``; ``merge`` (ask/yes/no);
    ``end_run`` (false: return the result to a parent workflow instead of ending the run)."""
    if quorum > reviewers:
        ctx.exit(
            "failed", f"goal: quorum {quorum} is more than the {reviewers} reviewers; lower --input quorum"
        )
    ledger = ctx.ledger()
    contract = _artifact(ctx, "contract.md", contract_text(objective, acceptance or objective))
    ledger.set(objective=objective, acceptance=acceptance or objective, max_turns=max_turns)
    tree: dict[str, Any] | None = None
    if worktree:
        tree = await ctx.tool(
            "worktree", lambda: open_worktree(ctx.workspace, ctx.run_id, "goal").model_dump()
        )
        base, previous, branch = tree["base"], tree["base"], tree["branch"]
    else:
        base = previous = await ctx.tool("base", lambda: snapshot(ctx.workspace))
        branch = None
    rule = quorum_rule(quorum)
    history: list[Decision] = []
    session: str | None = None
    findings: tuple[str, str] | None = None
    decision: Decision | None = None
    outcome: TurnOutcome | None = None
    for turn in range(1, max_turns + 1):
        raw = await ctx.workflow(
            goal_turn,
            label=f"turn-{turn}",
            objective=objective,
            turn=turn,
            max_turns=max_turns,
            contract=contract,
            check=check,
            reviewers=reviewers,
            reviewer_models=reviewer_models,
            workspace=tree["path"] if tree else None,
            base=base,
            session=session,
            findings=findings[0] if findings else None,
            findings_file=findings[1] if findings else None,
        )
        outcome = TurnOutcome.model_validate(raw)
        review = reduce_verdicts(outcome.verdicts, rule, expected=reviewers)
        decision = decide_turn(
            review,
            turn=turn,
            max_turns=max_turns,
            history=history,
            check=outcome.check,
            changed=outcome.tree != previous,
        )
        ledger.record(
            f"goal:turn-{turn}:decision",
            "decision",
            decision,
            note=decision_line(turn, decision, outcome.check),
        )
        ledger.set(turn=turn, status=decision.status)
        history.append(decision)
        previous, session = outcome.tree, outcome.session
        if decision.status != "continue":
            break
        text = findings_text(turn, decision, outcome)
        summary = "\n".join(_finding_line(f) for f in decision.blocking) or decision.reason
        findings = (summary, _artifact(ctx, f"turn-{turn}/findings.md", text))
    assert decision is not None and outcome is not None
    status: Literal["complete", "blocked", "needs_human"] = (
        "complete"
        if decision.status == "complete"
        else "blocked"
        if decision.status == "blocked"
        else "needs_human"
    )
    if end_run:  # a nested goal leaves the scores to its parent run's workflow
        await ctx.score("turns", len(history))
        await ctx.score("approvals", decision.approvals)
    merged = None
    if tree is not None:
        if status == "complete" and merge != "no":
            ok = merge == "yes" or await ctx.ui.confirm(f"Merge {branch} into the current branch?")
            if ok:
                merged = await ctx.merge(branch)
        await ctx.tool("close-worktree", lambda: close_worktree(ctx.workspace, tree["path"]))
    result = GoalResult(
        status=status,
        reason=decision.reason,
        turns=len(history),
        branch=branch,
        merged=merged,
        ledger=str(ledger.path),
        remaining=outcome.receipt.remaining,
        blocking=decision.blocking if status != "complete" else [],
    )
    ledger.set(result=result)
    _artifact(ctx, "result.json", result.model_dump_json(indent=2))
    if end_run and status != "complete":
        kept = f"; the work so far is on branch {branch}" if branch and not merged else ""
        ctx.exit(status, decision.reason + kept)
    return result
