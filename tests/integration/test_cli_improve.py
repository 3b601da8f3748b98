"""``stats``, ``runs`` filters, ``rm``, ``gc``, ``fork`` and ``diff`` through the real CLI, on the
scripted model in a real git repo; model calls counted from the scripted model's call log."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from loopcraft.engine.leases import new_owner_id
from loopcraft.models.scripted import read_call_log
from tests.cli_process import install_workflow
from tests.integration.test_cli_basics import lc

pytestmark = pytest.mark.timeout(240)

THREE = """
from loopcraft import Context, workflow


@workflow(description="three stages in a row")
async def three(ctx: Context, topic: str = "x") -> dict:
    a = await ctx.task("a", prompt=f"a {topic}")
    b = await ctx.task("b", prompt=f"b {a.text}")
    c = await ctx.task("c", prompt=f"c {b.text}")
    await ctx.score("letters", len(a.text + b.text + c.text))
    return {"a": a.text, "b": b.text, "c": c.text}
"""

SCRIPT: dict[str, Any] = {
    "stages": {
        "a": [{"text": "alpha", "usage": {"input": 100, "output": 10}}],
        "b": [{"text": "beta", "usage": {"input": 200, "output": 20, "cache_read": 50}}],
        "c": [{"text": "gamma", "usage": {"input": 300, "output": 30}}],
    }
}


def run_json(repo: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    out = lc(*args, "--json", cwd=repo, env=env, timeout=120)
    assert out.stdout.strip(), out.stderr[-2000:]
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@pytest.fixture
def three(git_repo: Path, tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    calls = tmp_path / "calls.jsonl"
    env = install_workflow(git_repo, THREE, "three", SCRIPT, calls)
    return git_repo, env, calls


def test_stats_and_runs_filters(three: tuple[Path, dict[str, str], Path]) -> None:
    repo, env, _ = three
    info = run_json(repo, env, "run", "three", "--model", "scripted/three")
    assert info["status"] == "completed"
    [entry] = run_json(repo, env, "stats", "three", "--since", "1d")
    assert (entry["runs"], entry["completion_rate"]) == (1, 1.0)
    assert entry["scores"]["letters"]["mean"] == len("alphabetagamma")
    assert entry["scores"]["completed"]["mean"] == 1.0
    assert entry["per_run"]["tokens"]["p50"] == 660
    assert [s["stage"] for s in entry["stages"]] == ["a", "b", "c"]
    text = lc("stats", cwd=repo, env=env)
    assert text.returncode == 0 and "three: 1 runs, completed 1 (100%)" in text.stdout
    assert [r["id"] for r in run_json(repo, env, "runs", "--workflow", "three", "--status", "completed")] == [
        info["id"]
    ]
    assert run_json(repo, env, "runs", "--status", "failed") == []
    bad = lc("stats", "--since", "lately", cwd=repo, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: bad --since 'lately'")
    assert "Traceback" not in bad.stderr


def _hold(repo: Path, run_id: str) -> None:
    """Make ``run_id`` look run by a live process (this test's), with a current lease."""
    owner = new_owner_id()  # this test process: alive
    with sqlite3.connect(repo / ".loopcraft" / "loopcraft.db") as db:
        db.execute(
            "UPDATE runs SET status = 'running', owner = ?, lease_expires = ? WHERE id = ?",
            (owner, time.time() + 3600, run_id),
        )


def test_rm_and_gc_never_remove_a_running_run(three: tuple[Path, dict[str, str], Path]) -> None:
    repo, env, _ = three
    ids = [run_json(repo, env, "run", "three", "--model", "scripted/three")["id"] for _ in range(3)]
    runs_dir = repo / ".loopcraft" / "runs"
    assert all((runs_dir / i).is_dir() for i in ids)
    _hold(repo, ids[0])
    refused = lc("rm", ids[0], ids[1], cwd=repo, env=env)
    assert refused.returncode == 10 and f"run {ids[0]} is running" in refused.stderr
    assert (runs_dir / ids[1]).is_dir()  # one running run removes none
    removed = lc("rm", ids[1], cwd=repo, env=env)
    assert removed.returncode == 0 and f"removed {ids[1]}" in removed.stdout
    assert not (runs_dir / ids[1]).exists()
    assert lc("show", ids[1], cwd=repo, env=env).returncode == 4
    with sqlite3.connect(repo / ".loopcraft" / "loopcraft.db") as db:
        db.execute("UPDATE runs SET status = 'failed' WHERE id = ?", (ids[2],))
    assert run_json(repo, env, "gc", "--older-than", "0s", "--keep-failed")["runs"] == []
    assert run_json(repo, env, "gc", "--older-than", "1d")["runs"] == []  # nothing that old
    dry = run_json(repo, env, "gc", "--older-than", "0s", "--dry-run")
    assert dry["runs"] == [ids[2]]
    gone = run_json(repo, env, "gc", "--older-than", "0s")
    assert gone["runs"] == [ids[2]]
    assert not (runs_dir / ids[2]).exists() and (runs_dir / ids[0]).is_dir()
    assert [r["id"] for r in run_json(repo, env, "runs")] == [ids[0]]


def test_fork_from_a_middle_stage_and_diff(three: tuple[Path, dict[str, str], Path]) -> None:
    repo, env, calls = three
    source = run_json(repo, env, "run", "three", "--model", "scripted/three")
    assert [c["stage"] for c in read_call_log(calls)] == ["a", "b", "c"]
    calls.unlink()
    forked = run_json(repo, env, "fork", source["id"], "--from", "b", "--input", "topic=y")
    assert forked["status"] == "completed", forked
    assert [c["stage"] for c in read_call_log(calls)] == ["b", "c"]  # zero calls before b
    assert forked["output"] == source["output"] and forked["inputs"]["topic"] == "y"
    assert forked["usage"]["input_tokens"] == source["usage"]["input_tokens"]  # a's usage is reused
    diff = run_json(repo, env, "diff", source["id"], forked["id"])
    assert diff["status"] == ["completed", "completed"]
    assert [(s["stage"], s["same_output"]) for s in diff["stages"]] == [("a", True), ("b", True), ("c", True)]
    text = lc("diff", source["id"], forked["id"], cwd=repo, env=env).stdout
    assert "status   completed → completed" in text
    missing = lc("fork", source["id"], "--from", "nope", cwd=repo, env=env)
    assert missing.returncode == 4 and "has no stage 'nope'; stages: a, b, c" in missing.stderr


def test_eval_three_cases_three_repeats_flags_an_injected_regression(
    three: tuple[Path, dict[str, str], Path],
) -> None:
    repo, env, _ = three
    cases = repo / "cases.jsonl"
    lines = [
        {"name": "first", "inputs": {"topic": "p"}, "check": 'grep -q alpha "$LOOPCRAFT_RUN_OUTPUT"'},
        {"name": "second", "topic": "q", "check": 'grep -q beta "$LOOPCRAFT_RUN_OUTPUT"'},
        {"name": "third", "inputs": {"topic": "r"}, "check": 'grep -q gamma "$LOOPCRAFT_RUN_OUTPUT"'},
    ]
    cases.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    args = ["eval", "three", "--cases", str(cases), "--repeat", "3", "--concurrency", "3"]
    base = run_json(repo, env, *args, "--model", "scripted/three")
    assert base["overall"] == {**base["overall"], "runs": 9, "passed": 9, "pass_rate": 1.0, "std": 0.0}
    assert {n: (s["runs"], s["pass_rate"]) for n, s in base["cases"].items()} == {
        "first": (3, 1.0),
        "second": (3, 1.0),
        "third": (3, 1.0),
    }
    assert base["regressions"] == []
    folder = repo / ".loopcraft" / "evals" / base["id"]
    assert json.loads((folder / "eval.json").read_text())["id"] == base["id"]
    assert "| third | 3 | 100% |" in (folder / "report.md").read_text()
    tagged = {a["run_id"] for a in base["attempts"]}
    assert len(tagged) == 9
    with sqlite3.connect(repo / ".loopcraft" / "loopcraft.db") as db:
        rows = db.execute("SELECT run_id, payload FROM events WHERE type = 'eval'").fetchall()
    assert {r for r, _ in rows} == tagged and all(base["id"] in p for _, p in rows)

    # the injected regression: stage c now answers "delta", so only the third case's check fails
    script = {"stages": {**SCRIPT["stages"], "c": [{"text": "delta"}]}}
    (repo / ".loopcraft" / "scripts" / "three.yaml").write_text(json.dumps(script))
    out = lc(*args, "--model", "scripted/three", "--baseline", base["id"], cwd=repo, env=env, timeout=180)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "regression: third: pass rate 100% → 0%" in out.stderr
    table = out.stdout.splitlines()
    third = next(line for line in table if line.startswith("third"))
    assert "0%" in third and "pass rate 100% → 0%" in third
    first = next(line for line in table if line.startswith("first"))
    assert "100%" in first and "→" not in first
    bad = lc("eval", "three", "--cases", str(cases), "--baseline", "eval-nope", cwd=repo, env=env)
    assert bad.returncode == 4 and "no eval 'eval-nope'" in bad.stderr


def test_replay_serves_the_recording_and_names_the_divergent_stage(
    three: tuple[Path, dict[str, str], Path],
) -> None:
    repo, env, calls = three
    source = run_json(repo, env, "run", "three", "--model", "scripted/three")
    (repo / ".loopcraft" / "scripts" / "three.yaml").unlink()  # the replay cannot use the script
    calls.unlink()
    same = run_json(repo, env, "replay", source["id"])
    assert same["status"] == "completed" and same["divergence"] is None, same
    assert same["output"] == source["output"]
    assert same["usage"]["input_tokens"] == source["usage"]["input_tokens"]
    logged = read_call_log(calls)
    assert [c["stage"] for c in logged] == ["a", "b", "c"]
    assert all(c["model"].startswith("scripted/replay-") for c in logged), (
        logged
    )  # the recording, not a provider

    changed = THREE.replace('ctx.task("b", prompt', 'ctx.task("b2", prompt')
    (repo / ".loopcraft" / "workflows" / "three.py").write_text(changed)
    out = lc("replay", source["id"], cwd=repo, env=env, timeout=120)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "diverged at stage b2" in out.stderr
    stopped = run_json(repo, env, "replay", source["id"])
    assert stopped["status"] == "failed" and stopped["divergence"]["stage"] == "b2"
    assert "the recording has task 'b' here" in stopped["divergence"]["reason"]


def test_goal_records_its_scores_and_replays_offline(git_repo: Path, tmp_path: Path) -> None:
    from tests.integration.test_workflow_goal import APPROVE, reject, run_goal, setup, worker

    setup(
        git_repo,
        {
            "worker": worker("draft\n", "done\n"),
            "t1-reviewer-*": [reject("not done yet")],
            "t2-reviewer-*": [APPROVE],
        },
    )
    out, info = run_goal(git_repo, "objective=add feature.txt", "check=grep -q . feature.txt", "merge=no")
    assert info["status"] == "completed" and info["output"]["turns"] == 2, out.stderr[-2000:]
    [entry] = run_json(git_repo, {}, "stats", "goal")
    assert entry["scores"]["turns"]["mean"] == 2.0 and entry["scores"]["approvals"]["mean"] == 3.0
    (git_repo / ".loopcraft" / "scripts" / "g.yaml").unlink()
    replayed = run_json(git_repo, {}, "replay", info["id"])
    assert replayed["divergence"] is None and replayed["status"] == "completed", replayed
    assert replayed["output"]["turns"] == 2 and replayed["output"]["status"] == "complete"
