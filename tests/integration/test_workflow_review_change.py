"""The built-in ``review-change`` through the CLI on the scripted model, on a real branch: a blocker
the synthesis keeps exits 3 (blocked), an approving review exits 0, and the synthesis can drop a
finding without evidence but never add one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_cli_basics import lc

pytestmark = pytest.mark.timeout(180)

BUG = {"title": "divides by zero", "body": "no guard", "priority": 1, "file": "calc.py", "lines": "2"}
NIT = {"title": "name is vague", "priority": 3, "file": "calc.py"}


def branch_repo(repo: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "-C", str(repo), "checkout", "-qb", "feature"], check=True)
    (repo / "calc.py").write_text("def ratio(a, b):\n    return a / b\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "ratio"], check=True, env=env)


def setup(repo: Path, reviews: dict[str, list[dict[str, Any]]], synthesis: dict[str, Any]) -> None:
    branch_repo(repo)
    stages = {"scout": [{"text": "calc.py is new; no tests."}], "synthesis": [{"json": synthesis}]}
    stages.update({f"review-{lens}": [{"json": v}] for lens, v in reviews.items()})
    stages["review-*"] = [{"json": {"approve": True, "findings": []}}]
    (repo / ".loopcraft" / "scripts").mkdir(parents=True, exist_ok=True)
    (repo / ".loopcraft" / "scripts" / "r.yaml").write_text(
        yaml.safe_dump({"stages": stages}, sort_keys=False)
    )


def review(repo: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    out = lc(
        "run",
        "review-change",
        "--input",
        "target=main...feature",
        "--model",
        "scripted/r",
        "--json",
        cwd=repo,
    )
    info = json.loads(out.stdout)
    return out, info, repo / ".loopcraft" / "runs" / info["id"] / "artifacts" / "review"


def test_a_kept_blocker_exits_3_with_review_md_and_json(git_repo: Path) -> None:
    setup(
        git_repo,
        {
            "correctness": {"approve": False, "findings": [BUG]},
            "maintainability": {"approve": True, "findings": [NIT]},
        },
        {"summary": "One real bug.", "findings": [BUG, NIT]},
    )
    out, info, folder = review(git_repo)
    assert out.returncode == 3, out.stderr
    assert info["status"] == "blocked" and "divides by zero" in info["error"]
    text = (folder / "review.md").read_text()
    assert "blocked" in text.splitlines()[0] and "divides by zero" in text and "`calc.py:2`" in text
    assert "return a / b" in (folder / "change.md").read_text()  # the reviewers read the real diff
    data = json.loads((folder / "review.json").read_text())
    assert data["approved"] is False
    assert [f["title"] for f in data["blocking"]] == ["divides by zero"]
    assert [f["title"] for f in data["findings"]] == ["divides by zero", "name is vague"]


def test_an_approving_review_exits_0(git_repo: Path) -> None:
    setup(
        git_repo,
        {"maintainability": {"approve": True, "findings": [NIT]}},
        {"summary": "Fine.", "findings": [NIT]},
    )
    out, info, folder = review(git_repo)
    assert out.returncode == 0, out.stderr
    assert info["output"]["approved"] is True and info["output"]["blocking"] == []
    assert "approved" in (folder / "review.md").read_text().splitlines()[0]


def test_the_synthesis_drops_unevidenced_findings_and_cannot_add_any(git_repo: Path) -> None:
    invented = {"title": "invented blocker", "priority": 0, "file": "calc.py"}
    setup(
        git_repo,
        {"security": {"approve": False, "findings": [BUG]}},
        {"summary": "The security claim has no evidence.", "findings": [invented]},
    )
    out, info, _ = review(git_repo)
    assert out.returncode == 0, out.stderr
    assert info["output"]["findings"] == []


def test_an_erroring_reviewer_blocks_the_review(git_repo: Path) -> None:
    setup(git_repo, {"tests": {"approve": "maybe"}}, {"summary": "", "findings": []})
    out, info, folder = review(git_repo)
    assert out.returncode == 3, out.stderr
    assert "no verdict from the tests reviewer" in info["error"]
    assert "tests: error:" in (folder / "review.md").read_text()
