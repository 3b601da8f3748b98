"""``ralph``: the Ralph loop. State lives only in files: a prompt (the spec) and an implementation plan
of ``- [ ]`` items (written by a planning stage when missing). Each iteration is a fresh agent that
takes the most important open item, implements it and updates the plan; the check runs as
back-pressure and the engine commits what changed. Done only when the plan has no open ``- [ ]``
line, the check passes and every reviewer approves. Two iterations in a row without a commit is
blocked; not converging by ``max_loops`` needs a human. Either way ``pr.md`` says draft and lists
every unresolved blocker.

Run it with ``loopcraft run ralph --input prompt=PROMPT.md --input check="pytest -q"``.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from pydantic import BaseModel

from loopcraft import CheckResult, Context, Decision, Verdict, gitops, reduce_verdicts, unanimous, workflow

_OPEN = re.compile(r"^\s*- \[ \]\s*(.*?)\s*$", re.MULTILINE)


class RalphResult(BaseModel):
    """What ``ralph`` returns when it converged (otherwise the same facts are in ``pr.md``)."""

    status: str
    loops: int
    commits: list[str]
    branch: str
    plan: str
    pr: str


def open_items(plan: str) -> list[str]:
    """The plan's open items: its ``- [ ]`` lines, in order (deterministic, no model involved)."""
    return [item or "(untitled item)" for item in _OPEN.findall(plan)]


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def pr_body(
    title: str,
    *,
    draft: bool,
    reason: str,
    branch: str,
    commits: list[str],
    blockers: list[str],
) -> str:
    """``pr.md``: the title, draft or ready, why, and every unresolved blocker."""
    lines = [f"# {'[Draft] ' if draft else ''}{title}", ""]
    lines += [f"Status: {'draft — not converged' if draft else 'ready'} ({reason})", f"Branch: {branch}", ""]
    lines += ["## Commits", *(f"- {c}" for c in commits or ["(none)"]), ""]
    if draft:
        lines += ["## Unresolved blockers", *(f"- {b}" for b in blockers or ["(none recorded)"]), ""]
    return "\n".join(lines)


def blockers_of(items: list[str], check: CheckResult | None, review: Decision | None) -> list[str]:
    found = [f"open plan item: {item}" for item in items]
    if check is not None and not check.passed:
        outcome = "timed out" if check.timed_out else f"exit {check.code}"
        found.append(f"check `{check.cmd}` fails ({outcome})")
    if review is not None and review.status != "complete":
        found += [f"review: {f.title}" + (f" ({f.file})" if f.file else "") for f in review.blocking]
        if not review.blocking:
            found.append(f"review not approved: {review.reason}")
    return found


@workflow(description="Ralph: fresh-context iterations over a file-based plan until it is done and approved")
async def ralph(
    ctx: Context,
    prompt: str,
    plan: str = "IMPLEMENTATION_PLAN.md",
    check: str | None = None,
    max_loops: int = 10,
    reviewers: int = 2,
    reviewer_models: list[str] | None = None,
    model: str | None = None,
    check_timeout: float = 600.0,
) -> RalphResult:
    if max_loops < 1 or reviewers < 1:
        ctx.exit("failed", "ralph: max_loops and reviewers must be at least 1")
    root = ctx.workspace
    plan_path = root / plan
    spec_file = (root / prompt) if len(prompt) < 300 and "\n" not in prompt else None
    spec = await ctx.tool("spec", lambda: _read(spec_file) if spec_file is not None else None)
    spec_ref = f"the prompt file {prompt}" if spec is not None else "the prompt below"
    spec_text = spec if spec is not None else prompt
    ledger = ctx.ledger()
    branch = await ctx.tool("branch", lambda: gitops.current_branch(root))
    base = await ctx.tool("base", lambda: gitops.head(root))
    commits: list[str] = []
    pr_path = ctx.artifacts_dir / "pr.md"

    if await ctx.tool("plan-exists", lambda: plan_path.is_file()) is False:
        await ctx.task(
            "plan",
            prompt=(
                f"Study {spec_ref} and the repository, then write the implementation plan to {plan}: "
                "a markdown list of small, testable items, one per line as `- [ ] item`, most "
                f"important first. Don't implement anything yet.\n\nPrompt:\n{spec_text}"
            ),
            model=model,
        )
        made = await ctx.tool("commit-plan", partial(_commit, ctx, "ralph: plan"))
        if made:
            commits.append(made)
    first = await ctx.tool("plan-0", lambda: _read(plan_path))
    if first is None:
        ctx.exit("blocked", f"ralph: no plan: the planning stage did not write {plan}")

    idle = 0
    check_result: CheckResult | None = None
    review: Decision | None = None
    feedback = ""
    reason = ""
    for loop in range(1, max_loops + 1):
        items = open_items(await ctx.tool(f"plan-{loop}", lambda: _read(plan_path) or ""))
        task = items[0] if items else "address the reviewers' findings"
        await ctx.task(
            f"iteration-{loop}",
            prompt=(
                f"You are iteration {loop} of a loop; you have no memory of earlier ones, only files.\n"
                f"Read {spec_ref} and the plan {plan}. Pick the single most important open `- [ ]` item "
                f"(suggested: {task}), implement it completely, run the tests, then update {plan}: mark it "
                "`- [x]` and add any new work you found as `- [ ]` items. Don't commit: the loop does."
                f"{feedback}\n\nPrompt:\n{spec_text}"
            ),
            model=model,
        )
        check_result = await ctx.check(f"check-{loop}", check, timeout=check_timeout) if check else None
        message = f"ralph: iteration {loop}: {task}"[:200]
        made = await ctx.tool(f"commit-{loop}", partial(_commit, ctx, message))
        items = open_items(await ctx.tool(f"plan-after-{loop}", lambda: _read(plan_path) or ""))
        review = None
        if made:
            commits.append(made)
            idle = 0
        else:
            idle += 1
        passed = check_result is None or check_result.passed
        if not items and passed:
            review = await _review(
                ctx, loop, reviewers, reviewer_models, spec_ref, spec_text, plan, base, check_result
            )
        ledger.record(
            f"iteration-{loop}",
            "iteration",
            {
                "commit": made,
                "open_items": items,
                "check": check_result.model_dump(mode="json") if check_result else None,
                "review": review.model_dump(mode="json") if review else None,
            },
        )
        if review is not None and review.status == "complete":
            reason = f"plan done, check passed, reviewers approved ({review.reason})"
            await ctx.tool("pr", partial(_write, pr_path, _pr(spec_text, False, reason, branch, commits, [])))
            ledger.set(status="complete", loops=loop, commits=commits, pr=str(pr_path))
            return RalphResult(
                status="complete",
                loops=loop,
                commits=commits,
                branch=branch,
                plan=str(plan_path),
                pr=str(pr_path),
            )
        if idle >= 2:
            reason = f"no progress: iterations {loop - 1} and {loop} committed nothing"
            break
        feedback = _feedback(check_result, review)
    else:
        reason = f"loop cap ({max_loops}) reached without converging"
    blockers = blockers_of(items, check_result, review)
    if idle >= 2:
        blockers.append(reason)
    await ctx.tool("pr", lambda: _write(pr_path, _pr(spec_text, True, reason, branch, commits, blockers)))
    status = "blocked" if idle >= 2 else "needs_human"
    ledger.set(status=status, reason=reason, blockers=blockers, commits=commits, pr=str(pr_path))
    ctx.exit(status, f"{reason}; draft: {len(blockers)} unresolved blocker(s) listed in {pr_path}")


async def _review(
    ctx: Context,
    loop: int,
    count: int,
    models: list[str] | None,
    spec_ref: str,
    spec_text: str,
    plan: str,
    base: str,
    check: CheckResult | None,
) -> Decision:
    """Fresh-context reviewers (on ``models`` in turn), reduced unanimously; any blocker vetoes."""
    context = ctx.artifacts_dir / f"review-{loop}.md"
    diff = await ctx.tool(f"diff-{loop}", lambda: gitops.git_diff(ctx.workspace, base, "HEAD"))
    check_text = f"`{check.cmd}` passed:\n{check.output[-2000:]}" if check else "(no check configured)"
    await ctx.tool(
        f"review-context-{loop}",
        lambda: _write(
            context,
            f"# Prompt\n{spec_text}\n\n# Check\n{check_text}\n\n# Diff since the start\n```diff\n{diff}\n```\n",
        ),
    )
    specs = [
        ctx.spec(
            f"review-{loop}-{j + 1}",
            prompt=(
                f"Review the work against {spec_ref}, the plan {plan} and the diff in the review file. "
                "Approve only if the prompt's requirements are met; report each problem as a finding "
                "(priority 0-1 for blockers that the prompt requires, 2-3 for notes; `beyond` for extras)."
            ),
            reads=[str(context)],
            schema=Verdict,
            model=models[j % len(models)] if models else None,
        )
        for j in range(count)
    ]
    verdicts = await ctx.parallel(*specs, fail_fast=False)
    return reduce_verdicts(verdicts, unanimous(veto=True), expected=count)


def _feedback(check: CheckResult | None, review: Decision | None) -> str:
    parts = []
    if check is not None and not check.passed:
        parts.append(
            f"\n\nThe check `{check.cmd}` fails; fix it first. Its output ends:\n{check.output[-1500:]}"
        )
    if review is not None and review.status != "complete":
        found = "\n".join(f"- {f.title}: {f.body}" for f in review.blocking) or f"- {review.reason}"
        parts.append(f"\n\nThe reviewers did not approve. Add these to the plan and fix them:\n{found}")
    return "".join(parts)


def _pr(prompt: str, draft: bool, reason: str, branch: str, commits: list[str], blockers: list[str]) -> str:
    title = next((line.strip("# ").strip() for line in prompt.splitlines() if line.strip()), "ralph")[:80]
    return pr_body(title, draft=draft, reason=reason, branch=branch, commits=commits, blockers=blockers)


def _commit(ctx: Context, message: str) -> str | None:
    """Commit the work tree (inside ``ctx.tool``: a re-run after a crash finds its commit)."""
    done = gitops.commit_all(ctx.workspace, message, key=ctx.idempotency_key)
    return done.commit if done.changed else None


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)
