"""Issue 19: ``loopcraft kill RUN`` from another process ends a run whose stage is stuck in a tool —
a shell that ignores SIGTERM and blocks reading a FIFO, with a child that ignores SIGTERM too. The
run process exits with the documented code (7) and the tool's whole process group is gone."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.cli_process import install_workflow, spawn_loopcraft

WORKFLOW = """
from loopcraft import Context, workflow


@workflow(name="stuck")
async def stuck(ctx: Context) -> str:
    return (await ctx.task("worker", prompt="work")).text
"""

STUCK = (
    "trap '' TERM INT HUP; echo $$ > shell.pid; (exec sleep 300) & echo $! > child.pid; "
    "read line < stuck.fifo; echo never"
)
SCRIPT: dict[str, Any] = {
    "stages": {
        "worker": [
            {"text": "running it", "tool_calls": [{"name": "bash", "arguments": {"command": STUCK}}]},
            {"text": "done"},
        ]
    }
}


def _until(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie nobody reaped yet counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return fields[0] != "Z"


def _group(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:
                found.append(int(entry.name))
    return found


def _run_id(db: Path) -> str | None:
    if not db.exists():
        return None
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT id FROM runs").fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()
    return str(row[0]) if row else None


def test_kill_ends_a_run_whose_tool_ignores_sigterm_and_blocks(git_repo: Path, tmp_path: Path) -> None:
    env = install_workflow(git_repo, WORKFLOW, "stuck", SCRIPT, tmp_path / "calls.jsonl")
    db = tmp_path / "journal.db"
    env.update({"LOOPCRAFT_DB": str(db), "LOOPCRAFT_ENGINE__POLL_SECONDS": "0.05"})
    os.mkfifo(git_repo / "stuck.fifo")
    owner = spawn_loopcraft(git_repo, env, "run", "stuck", "--model", "scripted/stuck")
    try:
        shell = int(
            _until(lambda: (git_repo / "shell.pid").is_file() and (git_repo / "shell.pid").read_text())
        )
        child = int(
            _until(lambda: (git_repo / "child.pid").is_file() and (git_repo / "child.pid").read_text())
        )
        group = os.getpgid(shell)
        assert group != os.getpgid(owner.pid) and _alive(child)
        run_id = _until(lambda: _run_id(db))
        killed = subprocess.run(
            [sys.executable, "-m", "loopcraft", "kill", run_id],
            cwd=git_repo,
            env=env,
            text=True,
            capture_output=True,
            timeout=60,
        )
        assert killed.returncode == 0, killed.stderr
        assert f"run {run_id} killed" in killed.stdout
        assert owner.wait(timeout=30) == 7
        _, err = owner.communicate(timeout=30)
        assert "error: killed by the user" in err
        _until(lambda: not _group(group), timeout=30)
        assert not _alive(shell) and not _alive(child)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    status = sqlite3.connect(db).execute("SELECT status FROM runs").fetchone()[0]
    assert status == "killed"
