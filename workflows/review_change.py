"""``review-change``: review a change with four fresh-context reviewers and keep what has evidence.

A scout maps the change's context into a file; reviewers for correctness, tests, maintainability
and security read it and the diff and return a ``Verdict`` each; a synthesis keeps only the
evidence-backed findings (it can drop reviewers' findings, never add any). The review goes to
``review.md`` and the structured findings to ``review.json`` in the run's artifacts. The run ends
completed (exit 0) when approved, blocked (exit 3) when blockers remain, so it can gate CI:
``loopcraft run review-change`` (the changes since the base branch: ``main...HEAD``) or
``--input target=RANGE``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pydantic import BaseModel, Field

from loopcraft import Context, Finding, Verdict, as_verdict, dedupe, gitops, workflow

READ_ONLY_TOOLS = ["read", "grep", "find", "ls"]
FOLDER = "review"

LENSES = {
    "correctness": "Is the change correct? Logic errors, broken contracts, unhandled cases.",
    "tests": "Are the changed behaviours tested by tests that can fail? Missing or weak tests.",
    "maintainability": "Is it readable and consistent with the codebase? Duplication, naming, structure.",
    "security": "Injection, secrets, unsafe file or shell use, missing validation at boundaries.",
}


class Synthesis(BaseModel):
    """The synthesis' answer: a summary and the findings it keeps (copied from the reviewers')."""

    summary: str = ""
    findings: list[Finding] = Field(default_factory=list)


class ReviewResult(BaseModel):
    """The outcome of a review."""

    approved: bool
    reason: str
    blocking: list[Finding] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    review: str  # review.md
    data: str  # review.json


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def describe_target(root: Path, target: str) -> str:
    """The change under review as text: a range's diff (``main...HEAD``), a branch's changes since it
    forked from HEAD, or the named paths (their uncommitted diff and the files themselves)."""
    if ".." in target:
        out = _git(root, "diff", target)
        if out.returncode != 0:
            raise ValueError(f"review-change: cannot diff {target!r}: {out.stderr.strip()}")
        return f"# Change: git diff {target}\n\n```diff\n{out.stdout}```\n"
    if _git(root, "rev-parse", "--verify", "--quiet", f"{target}^{{commit}}").returncode == 0:
        out = _git(root, "diff", f"HEAD...{target}")
        return f"# Change: the branch {target} (git diff HEAD...{target})\n\n```diff\n{out.stdout}```\n"
    paths = target.split()
    missing = [p for p in paths if not (root / p).exists()]
    if missing:
        raise ValueError(
            f"review-change: target {target!r} is not a diff range, a branch or existing paths "
            f"(missing: {', '.join(missing)})"
        )
    out = _git(root, "diff", "HEAD", "--", *paths)
    listed = "\n".join(f"- {p}" for p in paths)
    return f"# Change: the paths\n\n{listed}\n\nUncommitted diff:\n\n```diff\n{out.stdout}```\n"


def kept_findings(verdicts: list[Verdict], synthesis: Synthesis | None) -> list[Finding]:
    """The reviewers' findings the synthesis kept (matched by file and normalised title); all of
    them when the synthesis failed (fail closed). A finding the synthesis invented is dropped."""
    found = dedupe([f for v in verdicts for f in v.findings])
    if synthesis is None:
        return found
    keep = {f.key for f in synthesis.findings}
    return [f for f in found if f.key in keep]


def review_markdown(target: str, result: ReviewResult, summary: str, verdicts: dict[str, Verdict]) -> str:
    verdict = "approved" if result.approved else "blocked"
    lines = [f"# Review of {target}: {verdict}", "", result.reason, ""]
    if summary:
        lines += [summary, ""]
    for title, items in (
        ("Blocking", result.blocking),
        ("Notes", [f for f in result.findings if not f.blocking]),
    ):
        if items:
            lines += [f"## {title}", ""]
            for f in items:
                where = f" — `{f.file}{':' + f.lines if f.lines else ''}`" if f.file else ""
                lines.append(f"- **P{f.priority}** {f.title}{where}: {f.body}".rstrip(": "))
            lines.append("")
    lines += ["## Reviewers", ""]
    for lens, v in verdicts.items():
        state = f"error: {v.reviewer_error}" if v.reviewer_error else ("approve" if v.approve else "reject")
        lines.append(f"- {lens}: {state} ({len(v.findings)} finding(s))")
    return "\n".join(lines) + "\n"


NO_BASE_HINT = "give the change to review: --input target=BRANCH...HEAD (or a branch, or paths)"


def default_target(root: Path) -> dict[str, str]:
    """The change since HEAD forked from the repository's base branch (``main...HEAD``, see
    :func:`loopcraft.gitops.base_branch`), or the one-line error saying which ``--input`` to give."""
    try:
        base = gitops.base_branch(root)
    except gitops.GitError as exc:
        return {"error": f"review-change: {exc}; {NO_BASE_HINT}"}
    if base.merge_base == base.head:
        return {
            "error": f"review-change: HEAD is on {base.branch} (no commits since it to review); "
            f"give the change to review: --input target=HEAD~1..HEAD (or a branch, or paths)"
        }
    return {"target": f"{base.branch}...HEAD", "merge_base": base.merge_base}


@workflow(
    description="Review a change: scout, four reviewers (correctness, tests, maintainability, security), synthesis"
)
async def review_change(ctx: Context, target: str = "", model: str | None = None) -> ReviewResult:
    """``target``: a diff range (``main...HEAD``), a branch, or paths (default: the changes since
    the base branch, e.g. ``main...HEAD``); ``model``: the reviewers'."""
    if not target.strip():  # resolved once at the run's start (journaled: a resume sees the same)
        base = await ctx.tool("base", lambda: default_target(ctx.workspace))
        if "error" in base:
            ctx.exit("failed", base["error"])
        target = base["target"]
    folder = ctx.artifacts_dir / FOLDER

    def materialize() -> dict[str, str]:
        try:
            text = describe_target(ctx.workspace, target)
        except ValueError as exc:
            return {"error": str(exc)}
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "change.md").write_text(text, encoding="utf-8")
        return {"path": str(folder / "change.md")}

    found = await ctx.tool("change", materialize)
    if "error" in found:
        ctx.exit("failed", found["error"])
    change = found["path"]
    await ctx.task(
        "scout",
        prompt=(
            "Map the context a reviewer needs for this change: the files it touches, what calls "
            "them, the tests that cover them, and the project's conventions. Be brief and concrete."
        ),
        reads=[change],
        tools=READ_ONLY_TOOLS,
        output=f"{FOLDER}/scout.md",
        output_mode="file-only",
    )
    scout = str(folder / "scout.md")
    calls = [
        ctx.task(
            f"review-{lens}",
            prompt=(
                f"You are a fresh-context {lens} reviewer. {focus} Read the change and the scout's "
                "context (files below) and the code. Every finding needs evidence: the file and lines. "
                "Priority 0 veto, 1 blocking, 2-3 notes. Approve when nothing blocks."
            ),
            reads=[change, scout],
            tools=READ_ONLY_TOOLS,
            schema=Verdict,
            model=model,
        )
        for lens, focus in LENSES.items()
    ]
    results = await ctx.parallel(*[as_verdict(c) for c in calls], fail_fast=False)
    verdicts = dict(zip(LENSES, results, strict=True))
    listing = "\n".join(f"## {lens}\n{v.model_dump_json(indent=1)}" for lens, v in verdicts.items())
    synthesis: Synthesis | None
    try:
        done = await ctx.task(
            "synthesis",
            prompt=(
                "Keep only the evidence-backed findings of these reviews: check each against the code "
                "and drop the ones without evidence or that are wrong. Copy kept findings unchanged; "
                f"add none.\n\n{listing}"
            ),
            reads=[change],
            tools=READ_ONLY_TOOLS,
            schema=Synthesis,
            model=model,
        )
        synthesis = Synthesis.model_validate(done.structured)
    except Exception as exc:
        if getattr(exc, "run_status", "failed") != "failed":
            raise
        synthesis = None
    findings = kept_findings(results, synthesis)
    blocking = [f for f in findings if f.blocking]
    errors = [lens for lens, v in verdicts.items() if v.reviewer_error]
    if blocking:
        reason = f"{len(blocking)} blocking finding(s): {'; '.join(f.title for f in blocking)}"
    elif errors:
        reason = f"no verdict from the {', '.join(errors)} reviewer(s)"
    else:
        reason = f"approved: no blocking findings ({len(findings)} note(s))"
    result = ReviewResult(
        approved=not blocking and not errors,
        reason=reason,
        blocking=blocking,
        findings=findings,
        review=str(folder / "review.md"),
        data=str(folder / "review.json"),
    )
    summary = synthesis.summary if synthesis else "(the synthesis failed: every reviewer finding is kept)"
    Path(result.review).write_text(review_markdown(target, result, summary, verdicts), encoding="utf-8")
    Path(result.data).write_text(result.model_dump_json(indent=2), encoding="utf-8")
    ctx.ledger().record("review:decision", "decision", result, note=f"review: {reason}")
    await ctx.score("blockers", len(blocking))
    if not result.approved:
        ctx.exit("blocked", reason)
    return result
