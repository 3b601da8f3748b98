"""Issue 20 items 5 and 6: filesystem failures are one line naming the path and the fix (exit 8)
with no stray thread traceback, and workflow discovery reads files without executing them.

Real CLI subprocesses in temp git repos: LOOPCRAFT_DB pointed at bad places, a read-only repo
(chmod, or ``chattr +i`` when running as root), a full disk (a file-size limit on the process),
and workflow files that hang or call ``os._exit`` at import."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.test_cli_basics import lc


def _one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in out.stderr and "Event loop is closed" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_journal_under_a_missing_folder_is_one_line(git_repo: Path, tmp_path: Path) -> None:
    db = tmp_path / "no" / "such" / "journal.db"
    out = lc("runs", cwd=git_repo, env={"LOOPCRAFT_DB": str(db)})
    assert out.returncode == 8
    line = _one_error_line(out)
    assert str(db.parent) in line and "does not exist" in line and "mkdir -p" in line
    assert not db.parent.exists()


def test_journal_under_a_file_is_one_line(git_repo: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    db = tmp_path / "plain" / "journal.db"
    for command in (["runs"], ["run", "hello"]):
        out = lc(*command, cwd=git_repo, env={"LOOPCRAFT_DB": str(db)})
        assert out.returncode == 8
        line = _one_error_line(out)
        assert f"{tmp_path / 'plain'} is a file, not a folder" in line


def test_journal_that_is_a_device_is_refused_and_nothing_is_made_beside_it(git_repo: Path) -> None:
    before = set(os.listdir("/dev"))
    out = lc("runs", cwd=git_repo, env={"LOOPCRAFT_DB": "/dev/null"})
    assert out.returncode == 8
    assert "/dev/null is not a regular file" in _one_error_line(out)
    assert set(os.listdir("/dev")) - before == set()  # no /dev/null-journal, -wal or -shm


def test_state_folder_that_is_a_file_is_one_line(git_repo: Path) -> None:
    (git_repo / ".loopcraft").write_text("not a folder")
    for command in (["runs"], ["run", "hello"], ["workflows"]):
        out = lc(*command, cwd=git_repo)
        assert out.returncode == 8, (command, out.stderr)
        assert f"{git_repo / '.loopcraft'} is a file where a folder is needed" in _one_error_line(out)


def _make_read_only(folder: Path) -> list[str]:
    """Make ``folder`` unwritable (chmod; as root, which chmod does not stop, ``chattr +i``);
    returns the command that undoes it."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return ["chmod", "755", str(folder)]
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: a read-only folder cannot be made")
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {made.stderr!r}")
    return ["chattr", "-i", str(folder)]


def test_read_only_repo_folder_is_one_line(git_repo: Path) -> None:
    undo = _make_read_only(git_repo)
    try:
        out = lc("run", "hello", cwd=git_repo)
    finally:
        subprocess.run(undo, check=True)
    assert out.returncode == 8
    line = _one_error_line(out)
    assert str(git_repo / ".loopcraft") in line and "make the folder writable" in line


def test_full_disk_is_one_line(git_repo: Path) -> None:
    def small_files() -> None:  # every write past 8 KiB fails, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    out = subprocess.run(
        [sys.executable, "-m", "loopcraft", "run", "hello"],
        cwd=git_repo,
        capture_output=True,
        text=True,
        preexec_fn=small_files,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 8
    line = _one_error_line(out)
    assert str(git_repo / ".loopcraft" / "loopcraft.db") in line and "free some space" in line


def test_unopenable_journal_never_leaves_a_thread_traceback(git_repo: Path, tmp_path: Path) -> None:
    folder = tmp_path / "journal.db"
    folder.mkdir()  # a folder where the journal should be: it cannot be opened
    for _ in range(8):  # the worker thread's traceback came one time in three
        out = lc("runs", cwd=git_repo, env={"LOOPCRAFT_DB": str(folder)})
        assert out.returncode == 8
        assert "is a folder" in _one_error_line(out)
        assert out.stderr.count("\n") == 1, out.stderr
    (tmp_path / "noise.db").write_bytes(os.urandom(4096))
    for _ in range(4):
        out = lc("runs", cwd=git_repo, env={"LOOPCRAFT_DB": str(tmp_path / "noise.db")})
        assert out.returncode == 8 and out.stderr.count("\n") == 1, out.stderr


# ----- item 6: discovery reads files; only the workflow that runs is imported ----------------------

SLEEPY = """
import time

time.sleep(600)
from loopcraft import Context, workflow


@workflow(description="hangs at import")
async def sleepy(ctx: Context, n: int = 3, who: str = "x") -> str:
    return "never"
"""

QUITTER = """
import os

from loopcraft import Context, workflow


@workflow
async def quitter(ctx: Context, flag: bool = False) -> str:
    \"\"\"Exits at import.\"\"\"
    return "q"


os._exit(0)
"""

FINE = """
from typing import Literal

from pydantic import Field

from loopcraft import Context, workflow

Mode = Literal["fast", "slow"]


@workflow(description="a fine one", name="fine-one")
async def fine(
    ctx: Context, topic: str, rounds: int = Field(default=2, ge=1), mode: Mode = "fast"
) -> str:
    return (await ctx.task("draft", prompt=f"Draft about {topic}")).text + f" x{rounds} {mode}"
"""


@pytest.fixture
def strangers(git_repo: Path) -> Path:
    folder = git_repo / ".loopcraft" / "workflows"
    folder.mkdir(parents=True)
    (folder / "sleepy.py").write_text(SLEEPY)
    (folder / "quitter.py").write_text(QUITTER)
    (folder / "fine.py").write_text(FINE)
    (git_repo / ".loopcraft" / "scripts").mkdir()
    (git_repo / ".loopcraft" / "scripts" / "t.yaml").write_text(
        yaml.safe_dump({"default": [{"text": "a draft"}]})
    )
    return git_repo


def test_listing_never_imports_a_file(strangers: Path) -> None:
    start = time.monotonic()
    out = lc("workflows", "--json", cwd=strangers, timeout=30)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - start < 20  # the sleeping file did not run
    found = {w["name"]: w for w in json.loads(out.stdout)["workflows"]}
    assert {"sleepy", "quitter", "fine-one", "hello"} <= set(found)
    assert found["quitter"]["description"] == "Exits at import."
    assert found["sleepy"]["inputs"]["properties"]["n"] == {"default": 3, "title": "N", "type": "integer"}
    fine = found["fine-one"]["inputs"]
    assert fine["required"] == ["topic"]
    assert fine["properties"]["rounds"] == {"default": 2, "minimum": 1, "title": "Rounds", "type": "integer"}
    assert fine["properties"]["mode"]["enum"] == ["fast", "slow"]
    human = lc("workflows", cwd=strangers, timeout=30)
    assert human.returncode == 0 and "sleepy" in human.stdout and not human.stderr.strip()


def test_running_imports_only_the_file_of_the_workflow_that_runs(strangers: Path) -> None:
    out = lc("run", "fine-one", "-i", "topic=cats", "-m", "scripted/t", "--json", cwd=strangers, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["output"] == "a draft x2 fast"
    hello = lc("run", "hello", cwd=strangers, timeout=60)
    assert hello.returncode == 0 and "completed" in hello.stdout, hello.stderr


def test_a_file_that_exits_at_import_is_one_line(strangers: Path) -> None:
    out = lc("run", "quitter", cwd=strangers, timeout=60)
    assert out.returncode == 2
    line = _one_error_line(out)
    assert "quitter.py" in line and "os._exit(0) at import" in line


def test_a_file_that_hangs_at_import_times_out_with_one_line(strangers: Path) -> None:
    start = time.monotonic()
    out = lc("run", "sleepy", cwd=strangers, env={"LOOPCRAFT_IMPORT_TIMEOUT": "2"}, timeout=60)
    assert time.monotonic() - start < 30
    assert out.returncode == 2
    line = _one_error_line(out)
    assert "sleepy.py" in line and "longer than 2s" in line and "LOOPCRAFT_IMPORT_TIMEOUT" in line
