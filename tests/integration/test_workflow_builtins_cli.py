"""The loop built-ins through the real CLI (``python -m loopcraft run``) with a scripted model from
``.loopcraft/scripts/``: each final status is the README's exit code (verify vetoed: 3; accepted: 0;
ralph not converged at its cap: 5, with a draft pr.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml


def run_cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOOPCRAFT_TRUST": "1"}
    return subprocess.run(
        [sys.executable, "-m", "loopcraft", "run", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def script(repo: Path, name: str, stages: dict[str, list[dict[str, Any]]]) -> str:
    (repo / ".loopcraft" / "scripts").mkdir(parents=True, exist_ok=True)
    (repo / ".loopcraft" / "scripts" / f"{name}.yaml").write_text(yaml.safe_dump({"stages": stages}))
    return f"scripted/{name}"


@pytest.fixture
def repo(git_repo: Path) -> Path:
    (git_repo / "answer.md").write_text("The answer is 41.\n")
    return git_repo


def test_verify_exit_codes_follow_the_decision(repo: Path) -> None:
    veto = {"title": "wrong", "priority": 0}
    vetoed = script(
        repo, "vetoed", {"verify-*": [{"json": {"approve": True, "score": 20, "findings": [veto]}}]}
    )
    good = script(repo, "good", {"verify-*": [{"json": {"approve": True, "score": 17}}]})
    done = run_cli(
        repo, "verify", "--model", vetoed, "--input", "target=answer.md", "--input", "max_repairs=0"
    )
    assert done.returncode == 3, done.stderr
    assert "blocked" in done.stdout and "vetoed" in done.stderr
    done = run_cli(repo, "verify", "--model", good, "--input", "target=answer.md", "--input", "verifiers=1")
    assert done.returncode == 0, done.stderr


def test_ralph_at_its_cap_needs_a_human_with_a_draft_pr(repo: Path) -> None:
    plan = "- [ ] one\n- [ ] two\n"
    model = script(
        repo,
        "slow",
        {
            "plan": [
                {"tool_calls": [{"name": "write", "arguments": {"path": "PLAN.md", "content": plan}}]},
                {"text": "planned"},
            ],
            "iteration-*": [
                {"tool_calls": [{"name": "write", "arguments": {"path": "work.txt", "content": "x\n"}}]},
                {"text": "did"},
            ],
        },
    )
    done = run_cli(
        repo,
        "ralph",
        "--model",
        model,
        "--input",
        "prompt=Do two things.",
        "--input",
        "plan=PLAN.md",
        "--input",
        "max_loops=1",
    )
    assert done.returncode == 5, done.stderr
    pr = next((repo / ".loopcraft" / "runs").glob("*/artifacts/pr.md")).read_text()
    assert pr.startswith("# [Draft] Do two things.")
    assert "- open plan item: one\n- open plan item: two\n" in pr and "loop cap (1) reached" in pr
