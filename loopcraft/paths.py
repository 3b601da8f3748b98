"""Where loopcraft keeps things on disk: the repo's ``.loopcraft/`` and ``~/.loopcraft/``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def home_dir() -> Path:
    """The user's loopcraft folder (``LOOPCRAFT_HOME`` overrides ``~/.loopcraft``)."""
    env = os.environ.get("LOOPCRAFT_HOME")
    return Path(env) if env else Path.home() / ".loopcraft"


def repo_root(start: Path | None = None) -> Path:
    """The enclosing git work tree of ``start`` (or the cwd); the folder itself outside git."""
    start = (start or Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return start


def state_dir(root: Path | None = None) -> Path:
    """The repo's ``.loopcraft`` folder."""
    return (root or repo_root()) / ".loopcraft"


def builtin_dir(kind: str) -> Path:
    """Built-in ``workflows`` or ``themes``: in the source tree, or shipped in the wheel."""
    source = PACKAGE_DIR.parent / kind
    if source.is_dir() and (PACKAGE_DIR.parent / "pyproject.toml").exists():
        return source
    return PACKAGE_DIR / "_builtin" / kind


def git_version() -> str | None:
    """The installed git's version string, or None when git is missing."""
    try:
        out = subprocess.run(["git", "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None
