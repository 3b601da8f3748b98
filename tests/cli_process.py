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


ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -c CODE ARGS`` in a fresh interpreter with this checkout's loopcraft first on the path
    (a probe of what a process imports or does); output captured as text, no stdin."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
