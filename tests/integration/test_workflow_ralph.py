"""The built-in ``ralph`` workflow end to end on the scripted model in a real git repo: a planning stage
writes the missing plan, each iteration's work is committed engine-side, the loop stops once the plan
has no open item, the check passes and both reviewers approve; two iterations without a commit are
blocked, with a draft ``pr.md`` listing the open items."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loopcraft.config import Config
from loopcraft.engine.service import Engine
from tests.integration.test_agent_support import scripted_model, tool_call

PLAN = "# Plan\n\n- [ ] add a.txt\n- [ ] add b.txt\n"
APPROVE = {"json": {"approve": True, "findings": [], "summary": "done"}}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def writes(*files: tuple[str, str], done: str = "done") -> list[dict[str, Any]]:
    return [{"tool_calls": [tool_call("write", path=p, content=c) for p, c in files]}, {"text": done}]


@pytest.fixture
def repo(git_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(git_repo)
    return git_repo


async def test_ralph_plans_iterates_and_stops_when_the_plan_is_done_and_approved(repo: Path) -> None:
    model = scripted_model(
        stages={
            "plan": writes(("IMPLEMENTATION_PLAN.md", PLAN)),
            "iteration-1": writes(
                ("a.txt", "a\n"), ("IMPLEMENTATION_PLAN.md", PLAN.replace("[ ] add a", "[x] add a"))
            ),
            "iteration-2": writes(("b.txt", "b\n"), ("IMPLEMENTATION_PLAN.md", PLAN.replace("[ ]", "[x]"))),
            "review-*": [APPROVE],
        }
    )
    engine = await Engine.open(repo, Config(model=model))
    check = f"{sys.executable} -c \"import pathlib; assert pathlib.Path('a.txt').is_file()\""
    info = await engine.run("ralph", {"prompt": "Add a.txt and b.txt.", "check": check})
    assert info.status == "completed", info.error
    out = info.output
    assert (out["status"], out["loops"], out["branch"]) == ("complete", 2, "main")
    subjects = git(repo, "log", "--format=%s").splitlines()
    assert subjects == [
        "ralph: iteration 2: add b.txt",
        "ralph: iteration 1: add a.txt",
        "ralph: plan",
        "init",
    ]
    assert git(repo, "rev-parse", "HEAD").strip() == out["commits"][-1] and len(out["commits"]) == 3
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    # reviewers ran only once the plan was done (after iteration 2), both of them
    steps = await engine.journal.load_steps(info.id)
    reviews = sorted(s.name for s in steps if s.name.startswith("review-") and s.kind == "task")
    assert reviews == ["review-2-1", "review-2-2"]
    assert "[Draft]" not in Path(out["pr"]).read_text()
    ledger = json.loads((engine.root / ".loopcraft" / "runs" / info.id / "ledger.json").read_text())
    assert [e["data"]["open_items"] for e in ledger["events"]] == [["add b.txt"], []]
    await engine.close()


async def test_ralph_is_blocked_when_two_iterations_commit_nothing(repo: Path) -> None:
    model = scripted_model(stages={"iteration-*": [{"text": "I looked but changed nothing."}]})
    engine = await Engine.open(repo, Config(model=model))
    (repo / "IMPLEMENTATION_PLAN.md").write_text(PLAN)
    git(repo, "add", "-A")  # the plan and loopcraft's own .loopcraft/.gitignore: a clean tree
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "plan")
    info = await engine.run("ralph", {"prompt": "Add a.txt and b.txt.", "max_loops": 5})
    assert info.status == "blocked"
    assert "iterations 1 and 2 committed nothing" in (info.error or "")
    steps = await engine.journal.load_steps(info.id)
    assert not any(s.name == "iteration-3" for s in steps)  # it stopped at the second idle iteration
    assert not any(s.name.startswith("review-") for s in steps)
    pr = (engine.root / ".loopcraft" / "runs" / info.id / "artifacts" / "pr.md").read_text()
    assert pr.startswith("# [Draft] Add a.txt and b.txt.")
    assert "- open plan item: add a.txt\n- open plan item: add b.txt\n" in pr
    assert "committed nothing" in pr
    await engine.close()


async def test_ralph_a_failing_check_never_completes_and_a_rejection_reaches_the_next_iteration(
    repo: Path,
) -> None:
    done_plan = "- [x] add a.txt\n"
    reject = {
        "json": {
            "approve": False,
            "findings": [
                {"title": "a.txt is too short", "body": "write more", "priority": 1, "file": "a.txt"}
            ],
        }
    }
    model = scripted_model(
        stages={
            "plan": writes(("PLAN.md", "- [ ] add a.txt\n")),
            "iteration-1": writes(("a.txt", ""), ("PLAN.md", done_plan)),
            "iteration-2": writes(("a.txt", "a\n")),
            "iteration-3": writes(("a.txt", "aaaa\n"), ("PLAN.md", done_plan + "- [x] a.txt is too short\n")),
            "review-2-1": [reject],
            "review-*": [APPROVE],
        }
    )
    engine = await Engine.open(repo, Config(model=model))
    check = f"{sys.executable} -c \"import pathlib; assert pathlib.Path('a.txt').read_text()\""
    info = await engine.run("ralph", {"prompt": "Add a.txt.", "plan": "PLAN.md", "check": check})
    assert info.status == "completed", info.error
    assert info.output["loops"] == 3
    steps = await engine.journal.load_steps(info.id)
    reviews = sorted(s.name for s in steps if s.name.startswith("review-") and s.kind == "task")
    # the plan was done after iteration 1, but its check failed: no review ran until it passed
    assert reviews == ["review-2-1", "review-2-2", "review-3-1", "review-3-2"]

    async def prompt_of(stage: str) -> str:
        entries = await engine.stage_transcript(info.id, stage)
        return str(next(e for e in entries if e.get("type") == "message")["message"]["content"])

    assert "The check" in await prompt_of("iteration-2")
    third = await prompt_of("iteration-3")
    assert "did not approve" in third and "- a.txt is too short: write more" in third
    await engine.close()
