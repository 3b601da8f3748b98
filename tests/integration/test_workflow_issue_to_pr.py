"""The built-in ``issue-to-pr`` through the CLI on the scripted model, without ``gh``: research, a
plan approved at the gate (answered, then resumed), the nested goal in a worktree, and ``pr.md``
with the branch named in the result — no PR is claimed. A rejected plan ends the run blocked."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_cli_basics import lc

pytestmark = pytest.mark.timeout(180)

PLAN = {
    "title": "Add a greeting file",
    "summary": "Write hello.txt",
    "steps": ["write hello.txt"],
    "acceptance": ["hello.txt says hello"],
    "check": "grep -q hello hello.txt",
}


def setup(repo: Path) -> dict[str, str]:
    write = {"name": "write", "arguments": {"path": "hello.txt", "content": "hello\n"}}
    stages: dict[str, Any] = {
        "research": [{"text": "The repo has only a README."}],
        "plan": [{"json": PLAN}],
        "worker": [{"tool_calls": [write]}, {"json": {"changed": ["hello.txt"], "remaining": []}}],
        "t1-reviewer-*": [{"json": {"approve": True, "findings": []}}],
    }
    (repo / ".loopcraft" / "scripts").mkdir(parents=True, exist_ok=True)
    (repo / ".loopcraft" / "scripts" / "i.yaml").write_text(
        yaml.safe_dump({"stages": stages}, sort_keys=False)
    )
    (repo / "ISSUE.md").write_text("# Greet people\n\nWe need a hello.txt.\n")
    # no gh on PATH, whatever this machine has installed
    return {
        "PATH": os.pathsep.join(
            p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "gh").exists()
        )
    }


def start(repo: Path, env: dict[str, str]) -> str:
    out = lc(
        "run",
        "issue-to-pr",
        "--input",
        "issue=ISSUE.md",
        "--model",
        "scripted/i",
        "--json",
        cwd=repo,
        env=env,
    )
    assert out.returncode == 5, out.stderr  # waiting at the plan's gate
    info = json.loads(out.stdout)
    assert info["status"] in ("needs_human", "awaiting_input")
    plan_md = repo / ".loopcraft" / "runs" / info["id"] / "artifacts" / "issue" / "plan.md"
    assert "hello.txt says hello" in plan_md.read_text()
    return str(info["id"])


def test_without_gh_it_writes_pr_md_names_the_branch_and_claims_no_pr(git_repo: Path) -> None:
    env = setup(git_repo)
    run_id = start(git_repo, env)
    answered = lc("answer", run_id, "approve", cwd=git_repo, env=env)
    assert answered.returncode == 0, answered.stderr
    out = lc("resume", run_id, "--json", cwd=git_repo, env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)["output"]
    assert result["status"] == "complete" and result["draft"] is False
    assert result["pr_url"] is None
    assert result["branch"] and result["branch"].endswith("/goal")
    pr = Path(result["pr_file"]).read_text()
    assert pr.startswith("# Add a greeting file") and result["branch"] in pr and "hello.txt says hello" in pr
    assert "no PR opened" in out.stderr and "https://" not in out.stdout + out.stderr
    assert not (git_repo / "hello.txt").exists()  # the work is on the branch, not merged


def test_a_rejected_plan_ends_blocked_before_any_work(git_repo: Path) -> None:
    env = setup(git_repo)
    run_id = start(git_repo, env)
    assert lc("answer", run_id, "reject", cwd=git_repo, env=env).returncode == 0
    out = lc("resume", run_id, "--json", cwd=git_repo, env=env)
    assert out.returncode == 3, out.stderr
    assert "the plan was rejected" in json.loads(out.stdout)["error"]
    assert "worker" not in out.stderr


def test_an_edited_plan_becomes_the_goals_contract(git_repo: Path) -> None:
    env = setup(git_repo)
    run_id = start(git_repo, env)
    assert lc("answer", run_id, "edit", cwd=git_repo, env=env).returncode == 0
    waiting = lc("resume", run_id, "--json", cwd=git_repo, env=env)
    assert waiting.returncode == 5, waiting.stderr  # now at the editor gate
    edited = "# Edited plan\n\n- hello.txt says hello, politely\n"
    assert lc("answer", run_id, edited, cwd=git_repo, env=env).returncode == 0
    out = lc("resume", run_id, "--json", cwd=git_repo, env=env)
    assert out.returncode == 0, out.stderr
    contract = next((git_repo / ".loopcraft" / "runs" / run_id).rglob("goal/contract.md")).read_text()
    assert "hello.txt says hello, politely" in contract
