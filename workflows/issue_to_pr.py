"""``issue-to-pr``: from an issue to a pull request, with a human approving the plan.

Research (file-only) → a structured plan → a human gate (approve / edit / reject) → the ``goal``
loop as a nested workflow in its own worktree → a pull request: ``gh pr create`` (a draft when the
goal did not converge) when ``gh`` is installed and logged in, otherwise ``pr.md`` with the title
and the body, and the branch named in the result. It never claims a PR it did not open.
``loopcraft run issue-to-pr --input issue=ISSUE.md --input check="pytest -q"``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from loopcraft import Context, workflow

READ_ONLY_TOOLS = ["read", "grep", "find", "ls"]
FOLDER = "issue"
_NUMBER = re.compile(r"^#?(\d+)$")


class Plan(BaseModel):
    """The plan the human approves; its acceptance list becomes the goal's contract."""

    title: str = Field(min_length=1)
    summary: str = ""
    steps: list[str] = Field(default_factory=list)
    acceptance: list[str] = Field(default_factory=list)
    check: str | None = None


class IssueResult(BaseModel):
    """How the issue ended: the goal's status, the branch, and the PR (only if one was opened)."""

    status: Literal["complete", "blocked", "needs_human"]
    reason: str
    title: str
    branch: str | None = None
    pr_url: str | None = None  # set only from what `gh pr create` printed
    pr_file: str | None = None  # pr.md, when no PR was opened
    draft: bool


def _run(*cmd: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)


def load_issue(root: Path, issue: str) -> dict[str, str]:
    """The issue as ``{title, body}`` (or ``{error}``): a file, ``gh issue view N``, or the text."""
    number = _NUMBER.match(issue.strip())
    if number:
        if shutil.which("gh") is None:
            return {"error": f"issue {issue}: gh is not installed; pass the issue's text or a file instead"}
        out = _run(
            "gh",
            "issue",
            "view",
            number.group(1),
            "--json",
            "title,body",
            "-q",
            '.title + "\\n" + .body',
            cwd=root,
        )
        if out.returncode != 0:
            return {"error": f"gh issue view {number.group(1)} failed: {out.stderr.strip()}"}
        title, _, body = out.stdout.partition("\n")
        return {"title": title.strip(), "body": body.strip()}
    path = root / issue
    text = path.read_text(encoding="utf-8") if len(issue) < 300 and path.is_file() else issue
    first = next((line for line in text.splitlines() if line.strip()), "the issue")
    return {"title": first.strip().lstrip("#").strip()[:100], "body": text}


def plan_markdown(plan: Plan) -> str:
    lines = [f"# {plan.title}", "", plan.summary, "", "## Steps", ""]
    lines += [f"{i}. {s}" for i, s in enumerate(plan.steps, 1)] + ["", "## Acceptance", ""]
    lines += [f"- {a}" for a in plan.acceptance]
    if plan.check:
        lines += ["", f"Check: `{plan.check}`"]
    return "\n".join(lines) + "\n"


def pr_body(contract: str, goal: dict[str, Any]) -> str:
    lines = [contract.strip(), "", "## Status", "", f"{goal['status']}: {goal['reason']}"]
    if goal.get("blocking"):
        lines += ["", "## Unresolved blockers", ""] + [f"- {f['title']}" for f in goal["blocking"]]
    if goal.get("remaining"):
        lines += ["", "## Remaining", ""] + [f"- {r}" for r in goal["remaining"]]
    lines += ["", f"Branch: `{goal.get('branch')}` · ledger: `{goal.get('ledger')}`"]
    return "\n".join(lines) + "\n"


def gh_ready(root: Path) -> bool:
    """``gh`` is installed and logged in."""
    return shutil.which("gh") is not None and _run("gh", "auth", "status", cwd=root).returncode == 0


def open_pr(root: Path, branch: str, title: str, body_file: Path, draft: bool) -> dict[str, str]:
    """Push the branch and open its PR, or return the one already open for it (idempotent)."""
    existing = _run(
        "gh", "pr", "list", "--head", branch, "--state", "open", "--json", "url", "-q", ".[0].url", cwd=root
    )
    if existing.returncode == 0 and existing.stdout.strip():
        return {"url": existing.stdout.strip()}
    push = _run("git", "push", "-u", "origin", branch, cwd=root)
    if push.returncode != 0:
        return {"error": f"git push origin {branch} failed: {push.stderr.strip()}"}
    args = ["gh", "pr", "create", "--head", branch, "--title", title, "--body-file", str(body_file)]
    made = _run(*args, *(["--draft"] if draft else []), cwd=root)
    if made.returncode != 0:
        return {"error": f"gh pr create failed: {made.stderr.strip()}"}
    url = next((w for w in made.stdout.split() if w.startswith("https://")), "")
    return {"url": url} if url else {"error": f"gh pr create printed no URL: {made.stdout.strip()}"}


@workflow(
    description="From an issue to a PR: research, plan, human approval, the goal loop, then a PR or pr.md"
)
async def issue_to_pr(
    ctx: Context,
    issue: str,
    check: str | None = None,
    max_turns: int = Field(default=4, ge=1, le=20),
    reviewers: int = Field(default=3, ge=1, le=9),
    quorum: int = Field(default=2, ge=1),
    reviewer_models: list[str] | None = None,
) -> IssueResult:
    """``issue``: its text, a file, or a number for ``gh issue view``; ``check`` overrides the plan's."""
    folder = ctx.artifacts_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    found = await ctx.tool("issue", lambda: load_issue(ctx.workspace, issue))
    if "error" in found:
        ctx.exit("failed", found["error"])
    issue_file = folder / "issue.md"
    issue_file.write_text(f"# {found['title']}\n\n{found['body']}\n", encoding="utf-8")

    await ctx.task(
        "research",
        prompt="Research this issue in the repository: the code it touches, how it works today, the "
        "tests around it, and the risks. Report facts with file paths.",
        reads=[str(issue_file)],
        tools=READ_ONLY_TOOLS,
        output=f"{FOLDER}/research.md",
        output_mode="file-only",
    )
    planned = await ctx.task(
        "plan",
        prompt="Plan the change that resolves the issue: a PR title, a summary, the steps, the "
        "acceptance criteria (each one checkable) and a shell command that checks it, if any.",
        reads=[str(issue_file), str(folder / "research.md")],
        tools=READ_ONLY_TOOLS,
        schema=Plan,
    )
    plan = Plan.model_validate(planned.structured)
    contract = plan_markdown(plan)
    (folder / "plan.md").write_text(contract, encoding="utf-8")
    choice = await ctx.ui.select(
        f"Plan for {plan.title!r} ({len(plan.steps)} steps, in {folder / 'plan.md'}): approve, edit or reject?",
        ["approve", "edit", "reject"],
        default="approve",
    )
    if choice == "reject":
        ctx.exit("blocked", "the plan was rejected")
    if choice == "edit":
        contract = await ctx.ui.editor("Edit the plan (it becomes the acceptance contract)", default=contract)
        (folder / "plan.md").write_text(contract, encoding="utf-8")

    goal: dict[str, Any] = await ctx.workflow(
        "goal",
        label="goal",
        objective=f"{plan.title}: {plan.summary}".strip(": "),
        acceptance=contract,
        check=check or plan.check,
        max_turns=max_turns,
        reviewers=reviewers,
        quorum=quorum,
        reviewer_models=reviewer_models,
        worktree=True,
        merge="no",
        end_run=False,
    )
    if not isinstance(goal, dict):
        goal = goal.model_dump(mode="json")
    draft = goal["status"] != "complete"
    title = f"{'[draft] ' if draft else ''}{plan.title}"
    body = pr_body(contract, goal)
    pr_file = folder / "pr.md"
    pr_file.write_text(f"# {title}\n\n{body}", encoding="utf-8")
    pr_url: str | None = None
    if goal.get("branch") and await ctx.tool("gh-ready", lambda: gh_ready(ctx.workspace)):
        opened = await ctx.tool(
            "pull-request", lambda: open_pr(ctx.workspace, goal["branch"], plan.title, pr_file, draft)
        )
        pr_url = opened.get("url")
        if pr_url is None:
            ctx.ledger().record("issue:pr-error", "blocker", opened, note=f"no PR: {opened.get('error')}")
    result = IssueResult(
        status=goal["status"],
        reason=goal["reason"],
        title=plan.title,
        branch=goal.get("branch"),
        pr_url=pr_url,
        pr_file=None if pr_url else str(pr_file),
        draft=draft,
    )
    (folder / "result.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    where = f"PR {pr_url}" if pr_url else f"no PR opened; title and body in {pr_file}, branch {result.branch}"
    ctx.ledger().record("issue:result", "result", result, note=f"issue-to-pr: {result.status} — {where}")
    if draft:
        ctx.exit(result.status, f"{result.reason}; {where}")
    return result
