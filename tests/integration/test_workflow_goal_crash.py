"""The built-in ``goal`` killed with SIGKILL in a turn's worker, then in its check, then in a reviewer,
and resumed each time: no completed model turn or check runs again, and the ledger has each event once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopcraft.models.scripted import read_call_log
from tests.cli_process import spawn_loopcraft

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def verdict(approve: bool, pace: float | None = None) -> dict[str, Any]:
    findings = [] if approve else [{"title": "feature is a draft", "priority": 1, "body": "x" * 120}]
    turn: dict[str, Any] = {"json": {"approve": approve, "findings": findings}}
    if pace is not None:
        turn["pace"] = pace
    return turn


def receipt(note: str, pace: float | None = None) -> dict[str, Any]:
    turn: dict[str, Any] = {"json": {"changed": ["feature.txt"], "evidence": [note * 20], "remaining": []}}
    if pace is not None:
        turn["pace"] = pace
    return turn


def write(content: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "write", "arguments": {"path": "feature.txt", "content": content}}]}


def script() -> dict[str, Any]:
    return {
        "chunk_size": 8,
        "stages": {
            "worker": [write("a\n"), receipt("first ", pace=0.08), write("b\n"), receipt("second ")],
            "t1-reviewer-1": [verdict(False)],
            "t1-reviewer-2": [verdict(False)],
            "t1-reviewer-3": [verdict(False, pace=0.12)],
            "t2-reviewer-*": [verdict(True)],
        },
    }


def wait_for(proc: subprocess.Popen[str], what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 90
    while not ready():
        assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.02)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_sigkill_in_worker_check_and_reviewer_then_resume_repeats_nothing(
    git_repo: Path, tmp_path: Path
) -> None:
    repo = git_repo
    calls, checks = tmp_path / "calls.jsonl", tmp_path / "checks.log"
    (repo / ".loopcraft" / "scripts").mkdir(parents=True)
    (repo / ".loopcraft" / "scripts" / "g.yaml").write_text(yaml.safe_dump(script()))
    env = {**os.environ, "LOOPCRAFT_SCRIPTED_CALL_LOG": str(calls), "PYTHONUNBUFFERED": "1"}
    check = f'echo "start $(cat feature.txt)" >> {checks}; sleep 2'

    def logged() -> set[tuple[str, int]]:
        return {(e["stage"], e["turn"]) for e in read_call_log(calls)} if calls.exists() else set()

    def recorded(*names: str) -> bool:
        """The steps are in the journal as completed (a logged model call may still be unrecorded)."""
        db = repo / ".loopcraft" / "loopcraft.db"
        if not db.exists():
            return False
        with sqlite3.connect(db, timeout=5) as conn:
            rows = conn.execute("SELECT name FROM steps WHERE status = 'completed'").fetchall()
        return set(names) <= {r[0] for r in rows}

    def started() -> list[str]:
        return checks.read_text().split("\n")[:-1] if checks.exists() else []

    args = ["run", "goal", "--model", "scripted/g", "--input", "objective=add feature.txt"]
    proc = spawn_loopcraft(repo, env, *args, "--input", f"check={check}", "--input", "merge=no", "--json")
    # 1. in the worker: its tool turn is done, its receipt is still streaming
    wait_for(proc, "the worker's first turn", lambda: ("worker", 0) in logged())
    time.sleep(0.3)
    kill(proc)
    assert ("worker", 1) not in logged(), "the kill did not land inside the worker's receipt"
    run_id = next((repo / ".loopcraft" / "runs").iterdir()).name
    ledger_path = repo / ".loopcraft" / "runs" / run_id / "ledger.json"

    # 2. in the check: it has started (its command logged), it has not been recorded
    proc = spawn_loopcraft(repo, env, "resume", run_id, "--json")
    wait_for(proc, "the check", lambda: started() == ["start a"])
    kill(proc)
    assert "goal:turn-1:check" not in ledger_path.read_text()

    # 3. in a reviewer: two reviewers answered, the third is still streaming
    proc = spawn_loopcraft(repo, env, "resume", run_id, "--json")
    done = {("t1-reviewer-1", 0), ("t1-reviewer-2", 0)}
    wait_for(proc, "two reviewers", lambda: done <= logged() and recorded("t1-reviewer-1", "t1-reviewer-2"))
    kill(proc)
    assert ("t1-reviewer-3", 0) not in logged(), "the kill did not land inside the third reviewer"

    out, err = spawn_loopcraft(repo, env, "resume", run_id, "--json").communicate(timeout=120)
    info = json.loads(out or "{}")
    assert info.get("status") == "completed", err[-3000:]
    assert info["output"]["status"] == "complete" and info["output"]["turns"] == 2

    counts = Counter((e["stage"], e["turn"]) for e in read_call_log(calls))
    assert counts and all(n == 1 for n in counts.values()), counts  # no model turn ran twice
    assert counts[("worker", 3)] == 1 and counts[("t2-reviewer-3", 0)] == 1
    # the check ran again only where it was killed: turn 1 twice (killed, then for real), turn 2 once
    assert started() == ["start a", "start a", "start b"]
    keys = [e["key"] for e in json.loads(ledger_path.read_text())["events"]]
    assert keys == [f"goal:turn-{t}:{k}" for t in (1, 2) for k in ("receipt", "check", "reviews", "decision")]
