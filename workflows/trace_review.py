"""``trace-review``: read a workflow's traces, find its recurring failure modes, propose a fix.

``ctx.traces`` writes the workflow's ``stats`` and the transcripts of its recent failed and most
expensive runs as files in this run's folder; a read-only reviewer (``find-failures``) reads them
with its tools and answers ``TraceFindings``: failure modes, each with evidence (run id, stage,
transcript line) and the edit proposed. Code checks every citation against the files
(``traces.check_findings``, fail closed: a finding citing a run, stage or line that does not exist
is dropped). A second stage (``propose``) edits the workflow's prompts, skills or checks in a
worktree on branch ``loopcraft/<run>/trace-review``; the loop commits it and writes the diff. A human
gate decides: approved, the branch is merged; rejected, it stays unmerged and the result says so. The
live workflow is never edited without that approval. Run it with
``loopcraft run trace-review --input workflow=goal``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from loopcraft import (
    Context,
    Ledger,
    close_worktree,
    commit_all,
    git_diff,
    gitops,
    open_worktree,
    traces,
    workflow,
)

TraceFinding = traces.TraceFinding
TraceFindings = traces.TraceFindings
TracePack = traces.TracePack

READ_ONLY_TOOLS = ["read", "ls"]
FOLDER = "trace-review"
SKILLS = ".loopcraft/skills/**"


class TraceReviewResult(BaseModel):
    """How a trace review ended."""

    workflow: str
    reviewed: list[str] = Field(default_factory=list)  # the run ids read
    findings: list[TraceFinding] = Field(default_factory=list)  # the ones whose evidence held
    dropped: list[dict[str, str]] = Field(default_factory=list)  # title and why
    branch: str | None = None
    diff: str | None = None  # the proposal's diff file
    changed: list[str] = Field(default_factory=list)
    approved: bool | None = None  # None: no gate was asked
    merged: str | None = None  # the merge commit, when approved
    reason: str


def _artifact(ctx: Context, name: str, text: str) -> str:
    path = ctx.artifacts_dir / FOLDER / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def findings_text(kept: list[TraceFinding], dropped: list[dict[str, str]]) -> str:
    """``findings.md``: the failure modes kept, with their evidence and proposals; the dropped ones."""
    lines = ["# Failure modes (evidence checked)", ""]
    for n, f in enumerate(kept, 1):
        lines += [f"## {n}. {f.title} ({f.target})", ""]
        if f.description:
            lines += [f.description, ""]
        lines += [
            f"- run {e.run}, stage `{e.stage}`, line {e.line}" + (f": “{e.quote}”" if e.quote else "")
            for e in f.evidence
        ]
        lines += ["", f"Proposed edit: {f.proposal}", ""]
    if dropped:
        lines += ["# Dropped (their evidence did not hold)", ""]
        lines += [f"- {d['title']}: {d['reason']}" for d in dropped]
        lines.append("")
    return "\n".join(lines)


def write_rules(globs: list[str]) -> list[dict[str, str]]:
    """``write`` and ``edit`` refused everywhere but the globs (the last matching rule wins)."""
    rules = [{"tool": t, "pattern": "*", "action": "deny"} for t in ("write", "edit")]
    return rules + [{"tool": t, "pattern": g, "action": "allow"} for g in globs for t in ("write", "edit")]


def _allowed(path: str, globs: list[str]) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(path, g) for g in globs)


def _check(answer: TraceFindings, pack: TracePack, min_runs: int) -> list[Any]:
    """The kept findings (as JSON) and the dropped ones, for the journal."""
    kept, dropped = traces.check_findings(answer, pack, min_runs=min_runs)
    return [[f.model_dump(mode="json") for f in kept], dropped]


def _finder_prompt(pack: TracePack, min_runs: int) -> str:
    return (
        f"You review the traces of the workflow `{pack.workflow}` to find its recurring failure modes. "
        f"Its statistics are in {pack.stats_file}; {pack.index_file} lists the runs picked (recent "
        "failed ones and the most expensive), their stages and one transcript file per stage, where "
        "line N is line N of that stage's transcript. Open them with the read tool (search tools "
        "skip the .loopcraft folder they are in). Report each failure mode that recurs"
        + (f" (in at least {min_runs} runs)" if min_runs > 1 else "")
        + ": what goes wrong, evidence for every claim as (run id, stage label, line number, and a "
        "short quote of that line), and one concrete edit to the workflow's prompts, skills or checks "
        f"that would prevent it (the workflow's code is {pack.source or 'unknown'}). Cite only lines "
        "you read: evidence that does not match the files drops the whole finding."
    )


def _proposer_prompt(pack: TracePack, globs: list[str]) -> str:
    return (
        f"Edit the workflow `{pack.workflow}` to fix the failure modes in the findings file below: "
        "make the proposed edits to its prompts, skills or checks, nothing else. You may change only "
        f"files matching {', '.join(globs)} (writes elsewhere are refused). Do not commit: the loop "
        "commits for you. End with one line per change: the file and what you changed."
    )


@workflow(
    name="trace-review",
    description="Find a workflow's recurring failure modes in its traces; propose fixes on a branch behind a gate",
)
async def trace_review(
    ctx: Context,
    workflow: str,
    failed: int = Field(default=5, ge=0, le=50),
    expensive: int = Field(default=2, ge=0, le=50),
    since: str | None = None,
    min_runs: int = Field(default=1, ge=1),
    files: list[str] | None = None,
    model: str | None = None,
    merge: Literal["ask", "no"] = "ask",
) -> TraceReviewResult:
    """Inputs: ``workflow`` (the one to review); ``failed`` / ``expensive`` (how many recent failed
    and costliest runs to read); ``since`` (an age such as ``7d``); ``min_runs`` (a failure mode
    must show in that many runs); ``files`` (globs the proposal may change, default the workflow's
    file and ``.loopcraft/skills/**``); ``model``; ``merge`` (``ask``: a human gate; ``no``: leave
    the branch)."""
    ledger = ctx.ledger()
    result = await _review(ctx, ledger, workflow, failed, expensive, since, min_runs, files, model, merge)
    ledger.set(result=result.model_dump(mode="json"))
    _artifact(ctx, "result.json", result.model_dump_json(indent=2))
    return result


async def _review(
    ctx: Context,
    ledger: Ledger,
    workflow: str,
    failed: int,
    expensive: int,
    since: str | None,
    min_runs: int,
    files: list[str] | None,
    model: str | None,
    merge: str,
) -> TraceReviewResult:
    pack = await ctx.traces(
        workflow, failed=failed, expensive=expensive, since=since, folder=f"{FOLDER}/traces"
    )
    ledger.set(workflow=pack.workflow, reviewed=[r.id for r in pack.runs])
    result = TraceReviewResult(workflow=pack.workflow, reviewed=[r.id for r in pack.runs], reason="")
    if not pack.runs:
        result.reason = f"no finished failed or costly run of {pack.workflow} to review"
        await ctx.score("findings", 0)
        return result
    review = await ctx.task(
        "find-failures",
        prompt=_finder_prompt(pack, min_runs),
        reads=[pack.index_file, pack.stats_file],
        schema=TraceFindings,
        tools=READ_ONLY_TOOLS,
        model=model,
    )
    answer = TraceFindings.model_validate(review.structured)
    checked = await ctx.tool("check-findings", lambda: _check(answer, pack, min_runs))
    result.findings = [TraceFinding.model_validate(f) for f in checked[0]]
    result.dropped = list(checked[1])
    ledger.record("trace-review:findings", "findings", {"kept": checked[0], "dropped": checked[1]})
    await ctx.score("findings", len(result.findings))
    await ctx.score("dropped", len(result.dropped))
    findings_file = _artifact(ctx, "findings.md", findings_text(result.findings, result.dropped))
    if not result.findings:
        result.reason = "no failure mode with evidence that holds" + (
            f" ({len(result.dropped)} dropped)" if result.dropped else ""
        )
        return result
    if pack.source is None or pack.source.startswith("/"):
        result.reason = f"findings only: the code of {pack.workflow} is not in this repository"
        return result
    globs = files or [pack.source, SKILLS]
    tree = await ctx.tool(
        "worktree", lambda: open_worktree(ctx.workspace, ctx.run_id, "trace-review").model_dump()
    )
    result.branch = tree["branch"]
    await ctx.task(
        "propose",
        prompt=_proposer_prompt(pack, globs),
        reads=[findings_file],
        workspace=tree["path"],
        permission_rules=write_rules(globs),
        allow_paths=globs,  # .loopcraft/workflows and skills are protected: granted in this worktree
        model=model,
    )
    message = f"trace-review: {len(result.findings)} fix(es) for {pack.workflow}"
    state = await ctx.tool(
        "commit", lambda: commit_all(tree["path"], message, key=ctx.idempotency_key).model_dump()
    )
    result.changed = await ctx.tool(
        "changed", lambda: gitops.changed_files(ctx.workspace, tree["base"], state["commit"])
    )
    result.diff = await ctx.tool(
        "diff", lambda: _artifact(ctx, "proposal.diff", git_diff(tree["path"], tree["base"], state["commit"]))
    )
    stray = [p for p in result.changed if not _allowed(p, globs)]
    await ctx.tool("close-worktree", lambda: close_worktree(ctx.workspace, tree["path"]))
    if stray or not result.changed:
        result.reason = (
            f"proposal discarded: it changed files outside {', '.join(globs)}: {', '.join(stray)}"
            if stray
            else "the proposal changed nothing"
        )
        await ctx.tool("drop-branch", lambda: gitops.delete_branch(ctx.workspace, tree["branch"]))
        result.branch = None
        return result
    if merge == "ask":
        result.approved = await ctx.ui.confirm(
            f"trace-review proposes {len(result.findings)} fix(es) to {pack.workflow} on {tree['branch']} "
            f"({', '.join(result.changed)}; diff: {result.diff}). Merge it into the current branch?"
        )
        await ctx.score("approved", 1 if result.approved else 0)
    if result.approved:
        result.merged = await ctx.merge(tree["branch"])
        result.reason = f"merged {tree['branch']}: {len(result.findings)} fix(es) to {pack.workflow}"
    else:
        why = "rejected at the gate" if result.approved is False else "merge=no"
        result.reason = f"not merged ({why}): the proposal stays on branch {tree['branch']}"
    return result
