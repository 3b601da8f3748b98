"""Run control across real processes: a run owned by ``loopcraft run`` (process A, the real agent on
a paced scripted model through litellm) is interrupted, paused, steered, resumed, answered and
killed by ``loopcraft`` commands from other processes; an answer given while A is dead is used by
the process that resumes the run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOW = """
from loopcraft import Context, workflow


@workflow(name="ctl")
async def ctl(ctx: Context) -> str:
    a = await ctx.task("worker", prompt="work")
    choice = await ctx.ui.select("Ship it?", ["yes", "no"])
    b = await ctx.task("final", prompt="finish")
    return f"{a.text}|{choice}|{b.text}"
"""


def _script(final_turns: int, worker_turns: int) -> dict[str, Any]:
    def steps(n: int) -> list[dict[str, Any]]:  # distinct calls (no repeated-action stop)
        return [
            {
                "text": "working on the next step now",
                "tool_calls": [{"name": "grep", "arguments": {"pattern": f"step{i}"}}],
            }
            for i in range(n)
        ]

    return {
        "pace": 0.05,
        "chunk_size": 4,
        "stages": {
            "worker": [*steps(worker_turns), {"text": "worker finished"}],
            "final": [*steps(final_turns), {"text": "final finished"}],
        },
    }


@pytest.fixture
def repo(git_repo: Path, tmp_path: Path) -> Path:
    (git_repo / ".loopcraft" / "workflows").mkdir(parents=True)
    (git_repo / ".loopcraft" / "workflows" / "ctl.py").write_text(WORKFLOW)
    (git_repo / ".loopcraft" / "scripts").mkdir()
    return git_repo


def _write_script(repo: Path, final_turns: int, worker_turns: int = 6) -> None:
    script = _script(final_turns, worker_turns)
    (repo / ".loopcraft" / "scripts" / "paced.yaml").write_text(yaml.safe_dump(script))


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LOOPCRAFT_SCRIPTED_CALL_LOG": str(tmp_path / "calls.jsonl"),
        "LOOPCRAFT_ENGINE__POLL_SECONDS": "0.05",
        "LOOPCRAFT_ENGINE__HEARTBEAT_SECONDS": "0.5",
        "LOOPCRAFT_ENGINE__LEASE_SECONDS": "3",
        # the journal lives outside the workspace: the agent's grep must not open the database
        # files in the owning process (closing them drops SQLite's POSIX locks)
        "LOOPCRAFT_DB": str(tmp_path / "journal.db"),
    }


def _owner(repo: Path, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "loopcraft", *args],
        cwd=repo,
        env=_env(tmp_path),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def _cli(repo: Path, tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "loopcraft", *args],
        cwd=repo,
        env=_env(tmp_path),
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def _query(repo: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    db = repo.parent / "journal.db"
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def _until(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _run_id(repo: Path) -> str:
    return str(_until(lambda: (_query(repo, "SELECT id FROM runs") or [[None]])[0][0]))


def _stage(repo: Path, run_id: str, name: str) -> str | None:
    rows = _query(repo, "SELECT status FROM steps WHERE run_id = ? AND name = ?", run_id, name)
    return rows[0][0] if rows else None


def _run_status(repo: Path, run_id: str) -> str:
    return str(_query(repo, "SELECT status FROM runs WHERE id = ?", run_id)[0][0])


def _calls(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "calls.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_control_of_a_run_owned_by_another_process(repo: Path, tmp_path: Path) -> None:
    # the worker must still be working when the pause lands, however slow the control commands are
    _write_script(repo, final_turns=40, worker_turns=24)
    owner = _owner(repo, tmp_path, "run", "ctl", "--model", "scripted/paced", "--gates", "wait")
    try:
        run_id = _run_id(repo)
        _until(lambda: len(_calls(tmp_path)) >= 2)

        # interrupt: the in-flight model call is cancelled, the stage waits (resumable)
        _cli(repo, tmp_path, "interrupt", run_id, "--stage", "worker")
        _until(lambda: _stage(repo, run_id, "worker") == "paused")
        _cli(repo, tmp_path, "resume", run_id, "--message", "mind the tests")
        _until(lambda: _stage(repo, run_id, "worker") == "running")

        # pause: the run stops at its next safe point; nothing is called while paused
        _cli(repo, tmp_path, "pause", run_id)
        _until(lambda: _run_status(repo, run_id) == "paused")
        _until(lambda: _stage(repo, run_id, "worker") == "paused")
        count = len(_calls(tmp_path))
        time.sleep(0.6)
        assert len(_calls(tmp_path)) == count
        _cli(repo, tmp_path, "steer", run_id, "worker", "prefer small diffs")
        resumed = _cli(repo, tmp_path, "resume", run_id)
        assert "resume sent" in resumed.stdout

        # the human gate: listed and answered from here
        prompts = _until(lambda: json.loads(_cli(repo, tmp_path, "prompts", "--json").stdout))
        assert prompts[0]["question"] == "Ship it?" and prompts[0]["run_id"] == run_id
        bad = _cli(repo, tmp_path, "answer", run_id, prompts[0]["id"], "maybe", check=False)
        assert bad.returncode == 2 and "not one of: yes, no" in bad.stderr
        answered = _cli(repo, tmp_path, "answer", run_id, "2").stdout
        assert "answered 'Ship it?' → no" in answered and "continues" in answered

        # kill during the (long) final stage
        _until(lambda: _stage(repo, run_id, "final") == "running")
        _cli(repo, tmp_path, "kill", run_id)
        assert owner.wait(timeout=15) == 7
        assert _run_status(repo, run_id) == "killed"
        again = _cli(repo, tmp_path, "pause", run_id, check=False)
        assert again.returncode == 10 and "not running" in again.stderr
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    transcript = _cli(repo, tmp_path, "show", run_id, "--stage", "worker", "--json").stdout
    steers = [
        e["message"]["content"]
        for e in json.loads(transcript)
        if e.get("type") == "message" and e.get("source") == "steer"
    ]
    assert steers == ["mind the tests", "prefer small diffs"]


def test_answer_given_while_the_owner_is_dead_is_used_on_resume(repo: Path, tmp_path: Path) -> None:
    _write_script(repo, final_turns=0)
    owner = _owner(repo, tmp_path, "run", "ctl", "--model", "scripted/paced", "--gates", "wait")
    run_id = _run_id(repo)
    _until(lambda: _stage(repo, run_id, "select") == "awaiting_input")
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert "crashed" in _cli(repo, tmp_path, "runs").stdout
    _cli(repo, tmp_path, "answer", run_id, "yes")
    before = len(_calls(tmp_path))
    done = _cli(repo, tmp_path, "resume", run_id, "--gates", "stop")
    assert "completed" in done.stdout and "worker finished|yes|final finished" in done.stdout
    assert {c["stage"] for c in _calls(tmp_path)[before:]} == {"final"}  # the worker was not re-called
