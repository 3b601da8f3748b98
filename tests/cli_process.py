"""Starting ``python -m loopcraft`` as a real subprocess (crash tests SIGKILL it and resume), in a
repository set up with a workflow file and a scripted-model script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


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


def install_workflow(
    repo: Path, source: str, name: str, script: dict[str, Any], calls: Path
) -> dict[str, str]:
    """Write ``source`` as ``.loopcraft/workflows/<name>.py`` and ``script`` as the scripted model
    ``scripted/<name>``; returns the environment that logs model calls to ``calls``."""
    (repo / ".loopcraft" / "workflows").mkdir(parents=True, exist_ok=True)
    (repo / ".loopcraft" / "workflows" / f"{name}.py").write_text(source)
    (repo / ".loopcraft" / "scripts").mkdir(exist_ok=True)
    (repo / ".loopcraft" / "scripts" / f"{name}.yaml").write_text(yaml.safe_dump(script))
    return {**os.environ, "LOOPCRAFT_SCRIPTED_CALL_LOG": str(calls), "PYTHONUNBUFFERED": "1"}
