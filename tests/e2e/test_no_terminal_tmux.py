"""Bare ``loopcraft`` in a real terminal (tmux) with stdin from /dev/null: one line saying there
is no terminal, exit 2, at once (it never draws, never waits for keys). The time taken is
printed (``-s``) for the report; the wait itself is generous, as the machine is shared."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.tmux,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def test_bare_loopcraft_with_stdin_from_dev_null_exits_2_in_tmux(git_repo: Path, tmp_path: Path) -> None:
    rc_file, err_file, name = tmp_path / "rc", tmp_path / "err", f"loopcraft-notty-{tmp_path.name}"
    command = (
        f"cd {git_repo} && start=$(date +%s%N); LOOPCRAFT_HOME={tmp_path / 'home'} "
        f"{sys.executable} -m loopcraft < /dev/null 2> {err_file}; rc=$?; "
        f'echo "rc=$rc ms=$(( ($(date +%s%N) - start) / 1000000 ))" > {rc_file}.tmp && mv {rc_file}.tmp {rc_file}'
    )
    tmux = ["tmux", "-L", name]  # a private server: a running one would hand us its environment
    subprocess.run([*tmux, "new-session", "-d", "-s", name, "-x", "120", "-y", "30", command], check=True)
    try:
        deadline = time.monotonic() + 60
        while not rc_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rc_file.exists(), "loopcraft never exited"
        result = rc_file.read_text().split()
        print(result)
        assert result[0] == "rc=2"
        (line,) = err_file.read_text().splitlines()
        assert line.startswith("error: no terminal") and "loopcraft run WORKFLOW" in line
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)
