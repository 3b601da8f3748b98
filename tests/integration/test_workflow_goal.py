"""The built-in ``goal`` loop end to end through the CLI, on the scripted model in a real git repo:
the quorum and the check decide, findings reach the next turn, broken reviewers reject, and the
stopping rules (repeated blocker, no change, the cap) give the right status and exit code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_cli_basics import lc

pytestmark = pytest.mark.timeout(180)

APPROVE: dict[str, Any] = {"json": {"approve": True, "findings": []}}


def reject(title: str, priority: int = 1) -> dict[str, Any]:
    finding = {"title": title, "body": "see the diff", "priority": priority, "file": "feature.txt"}
    return {"json": {"approve": False, "findings": [finding], "validation_gaps": ["no test"]}}


def receipt(note: str, remaining: list[str] | None = None) -> dict[str, Any]:
    return {
        "json": {
            "changed": ["feature.txt"],
            "commands": [{"cmd": "cat feature.txt", "outcome": note}],
            "evidence": [note],
            "blockers": [],
            "remaining": remaining or [],
        }
    }


def write(content: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "write", "arguments": {"path": "feature.txt", "content": content}}]}


def worker(*turns: str | None) -> list[dict[str, Any]]:
    """The worker's model turns over the goal's turns (one session, forked each turn): a content
    string writes feature.txt then answers the receipt; None answers the receipt only (no change)."""
    out: list[dict[str, Any]] = []
    for index, content in enumerate(turns, 1):
        if content is not None:
            out.append(write(content))
        out.append(receipt(f"turn {index}", remaining=[f"left after {index}"]))
    return out


def setup(repo: Path, stages: dict[str, list[dict[str, Any]]]) -> None:
    (repo / ".loopcraft" / "scripts").mkdir(parents=True, exist_ok=True)
    (repo / ".loopcraft" / "scripts" / "g.yaml").write_text(yaml.safe_dump({"stages": stages}))


def run_goal(repo: Path, *inputs: str) -> tuple[Any, dict[str, Any]]:
    args = [arg for pair in (("--input", i) for i in inputs) for arg in pair]
    out = lc("run", "goal", "--model", "scripted/g", "--json", *args, cwd=repo, timeout=150)
    assert out.stdout, out.stderr
    info = json.loads(out.stdout)
    return out, info


def ledger(repo: Path, info: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((repo / ".loopcraft" / "runs" / info["id"] / "ledger.json").read_text())
    return data


def kinds(data: dict[str, Any]) -> list[str]:
    return [e["key"] for e in data["events"]]


def first_prompt(repo: Path, info: dict[str, Any], turn: int) -> str:
    """The prompt the worker got in goal turn ``turn`` (the last user prompt of its transcript)."""
    stages = repo / ".loopcraft" / "runs" / info["id"] / "stages"
    path = next(p for p in stages.glob("*.jsonl") if f"turn-{turn}" in p.name and "worker" in p.name)
    prompts = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("type") == "message" and entry.get("source") == "prompt":
            prompts.append(entry["message"]["content"])
    return prompts[-1]


def test_two_of_three_approve_and_the_check_passes_completes_and_merges(git_repo: Path) -> None:
    setup(
        git_repo,
        {
            "worker": worker("done\n"),
            "t1-reviewer-1": [APPROVE],
            "t1-reviewer-2": [APPROVE],
            "t1-reviewer-3": [reject("not good enough")],
        },
    )
    out, info = run_goal(git_repo, "objective=add feature.txt", "check=grep -q done feature.txt", "merge=yes")
    assert out.returncode == 0, out.stderr
    result = info["output"]
    assert result["status"] == "complete" and result["turns"] == 1
    assert result["branch"].endswith("/goal") and result["merged"]
    assert result["remaining"] == ["left after 1"]
    assert (git_repo / "feature.txt").read_text() == "done\n"  # merged into main
    assert "turn 1: complete — 2/3 approve, check passed" in out.stderr
    data = ledger(git_repo, info)
    assert kinds(data) == [
        "goal:turn-1:receipt",
        "goal:turn-1:check",
        "goal:turn-1:reviews",
        "goal:turn-1:decision",
    ]
    assert data["state"]["result"]["status"] == "complete"
    # the worktree folder is gone, the branch stays
    assert not any((git_repo / ".loopcraft" / "worktrees").iterdir())


def test_one_of_three_runs_another_turn_that_reads_the_findings(git_repo: Path) -> None:
    setup(
        git_repo,
        {
            "worker": worker("draft\n", "done\n"),
            "t1-reviewer-1": [APPROVE],
            "t1-reviewer-2": [reject("feature is only a draft")],
            "t1-reviewer-3": [reject("feature is only a draft", priority=0)],
            "t2-reviewer-*": [APPROVE],
        },
    )
    out, info = run_goal(git_repo, "objective=add feature.txt", "check=test -f feature.txt", "merge=no")
    assert out.returncode == 0, out.stderr
    assert info["output"]["status"] == "complete" and info["output"]["turns"] == 2
    assert info["output"]["merged"] is None
    assert not (git_repo / "feature.txt").exists()  # merge=no leaves the branch alone
    assert "turn 1: continue — 1/3 approve, check passed" in out.stderr
    assert "turn 2: complete — 3/3 approve, check passed" in out.stderr
    prompt = first_prompt(git_repo, info, 2)
    assert "feature is only a draft" in prompt and "findings.md" in prompt
    findings = next((git_repo / ".loopcraft" / "runs" / info["id"]).rglob("turn-1/findings.md")).read_text()
    assert "feature is only a draft" in findings and "no test" in findings
    branch = info["output"]["branch"]
    shown = lc("show", info["id"], cwd=git_repo)
    assert "turn-1" in shown.stdout and "turn-2" in shown.stdout
    log = lc("show", info["id"], "--stage", "turn-2 › worker", cwd=git_repo)
    assert log.returncode == 0, log.stderr
    import subprocess

    files = subprocess.run(
        ["git", "-C", str(git_repo), "show", f"{branch}:feature.txt"], capture_output=True, text=True
    )
    assert files.stdout == "done\n"


def test_a_malformed_verdict_and_an_erroring_reviewer_count_as_rejections(git_repo: Path) -> None:
    setup(
        git_repo,
        {
            "worker": worker("done\n"),
            "t1-reviewer-1": [APPROVE],
            "t1-reviewer-2": [{"json": {"approve": "perhaps"}}] * 4,  # never valid, corrections included
            "t1-reviewer-3": [{"faults": [{"kind": "auth"}] * 4, "text": "never"}],
        },
    )
    out, info = run_goal(git_repo, "objective=add feature.txt", "max_turns=1")
    assert out.returncode == 5, out.stderr
    assert info["status"] == "needs_human"
    assert "turn 1: needs_human — 1/3 approve" in out.stderr
    reviews = next(e for e in ledger(git_repo, info)["events"] if e["kind"] == "reviews")["data"]["verdicts"]
    assert reviews[0]["approve"] is True and reviews[0]["reviewer_error"] is None
    assert reviews[1]["approve"] is False and "structured output" in reviews[1]["reviewer_error"]
    assert reviews[2]["approve"] is False and reviews[2]["reviewer_error"]


def test_approving_reviewers_with_a_failing_check_do_not_complete(git_repo: Path) -> None:
    setup(git_repo, {"worker": worker("done\n"), "t1-reviewer-*": [APPROVE]})
    out, info = run_goal(
        git_repo, "objective=add feature.txt", "check=grep -q missing feature.txt", "max_turns=1"
    )
    assert out.returncode == 5, out.stderr
    assert info["status"] == "needs_human"
    assert "turn 1: needs_human — 3/3 approve, check failed (exit 1)" in out.stderr


def test_the_same_blocker_three_turns_running_is_blocked(git_repo: Path) -> None:
    stages = {"worker": worker("a\n", "b\n", "c\n")}
    stages.update({f"t{t}-reviewer-*": [reject("Feature is wrong")] for t in (1, 2, 3)})
    setup(git_repo, stages)
    out, info = run_goal(git_repo, "objective=add feature.txt", "max_turns=4")
    assert out.returncode == 3, out.stderr
    assert info["status"] == "blocked"
    assert "the same blocker for 3 turns: Feature is wrong" in (info.get("error") or "")
    assert "turn 3: blocked" in out.stderr and "turn 4" not in out.stderr
    result = json.loads(
        next((git_repo / ".loopcraft" / "runs" / info["id"]).rglob("goal/result.json")).read_text()
    )
    assert result["status"] == "blocked" and result["turns"] == 3
    assert [f["title"] for f in result["blocking"]] == ["Feature is wrong"]


def test_a_turn_that_changes_nothing_is_blocked_naming_it(git_repo: Path) -> None:
    setup(
        git_repo,
        {
            "worker": worker("a\n", None),
            "t1-reviewer-*": [reject("first problem")],
            "t2-reviewer-*": [reject("second problem")],
        },
    )
    out, info = run_goal(git_repo, "objective=add feature.txt")
    assert out.returncode == 3, out.stderr
    assert "no progress: turn 2 changed nothing" in (info.get("error") or "")
    assert "the work so far is on branch loopcraft/" in (info.get("error") or "")
    assert "turn 2: blocked" in out.stderr


def test_the_turn_cap_is_needs_human_exit_5(git_repo: Path) -> None:
    setup(
        git_repo,
        {
            "worker": worker("a\n", "b\n"),
            "t1-reviewer-*": [reject("first problem")],
            "t2-reviewer-*": [reject("second problem")],
        },
    )
    out, info = run_goal(git_repo, "objective=add feature.txt", "max_turns=2", "worktree=false")
    assert out.returncode == 5, out.stderr
    assert info["status"] == "needs_human"
    assert "turn cap (2) reached" in (info.get("error") or "")
    assert (git_repo / "feature.txt").read_text() == "b\n"  # worktree=false: worked in place
    assert kinds(ledger(git_repo, info))[-1] == "goal:turn-2:decision"


def test_workflows_lists_the_loops_with_their_inputs(git_repo: Path) -> None:
    out = lc("workflows", cwd=git_repo)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert (
        "objective (required)" in lines["goal"] and "max_turns" in lines["goal"] and "merge" in lines["goal"]
    )
    assert "target" in lines["review-change"]
    assert "issue (required)" in lines["issue-to-pr"]


def test_merge_ask_is_a_human_gate_that_merges_when_answered_yes(git_repo: Path) -> None:
    setup(git_repo, {"worker": worker("done\n"), "t1-reviewer-*": [APPROVE]})
    out, info = run_goal(git_repo, "objective=add feature.txt")
    assert out.returncode == 5, out.stderr  # complete, waiting at "Merge …?" (no terminal: gates stop)
    assert "Merge loopcraft/" in out.stderr and not (git_repo / "feature.txt").exists()
    assert lc("answer", info["id"], "yes", cwd=git_repo).returncode == 0
    done = lc("resume", info["id"], "--json", cwd=git_repo)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"]["merged"]
    assert (git_repo / "feature.txt").read_text() == "done\n"


def test_reviewer_models_put_reviewers_on_other_models(git_repo: Path, tmp_path: Path) -> None:
    from loopcraft.models.scripted import read_call_log

    stages = {"worker": worker("done\n"), "t1-reviewer-*": [APPROVE]}
    setup(git_repo, stages)
    (git_repo / ".loopcraft" / "scripts" / "other.yaml").write_text(yaml.safe_dump({"stages": stages}))
    calls = tmp_path / "calls.jsonl"
    models = '["scripted/other", "scripted/g"]'
    args = [
        "run",
        "goal",
        "--model",
        "scripted/g",
        "--input",
        "objective=x",
        "--input",
        f"reviewer_models={models}",
    ]
    out = lc(*args, "--input", "merge=no", cwd=git_repo, env={"LOOPCRAFT_SCRIPTED_CALL_LOG": str(calls)})
    assert out.returncode == 0, out.stderr
    used = {e["stage"]: e["model"] for e in read_call_log(calls)}
    assert used["t1-reviewer-1"].endswith("other") and used["t1-reviewer-3"].endswith("other")
    assert used["t1-reviewer-2"].endswith("/g") and used["worker"].endswith("/g")
