"""Starting ``python -m loopcraft`` as a real subprocess (crash tests SIGKILL it and resume)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def spawn_loopcraft(repo: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """``loopcraft ARGS`` in ``repo`` with ``env``; stdout and stderr piped as text, no stdin."""
    return subprocess.Popen(
        [sys.executable, "-m", "loopcraft", *args],
        cwd=repo,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
