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


STATE_GITIGNORE = """\
# Written by loopcraft: its own state never goes into git. workflows/, skills/, scripts/ and
# config.toml are not listed here, so they stay trackable.
loopcraft.db
loopcraft.db-*
runs/
sessions/
worktrees/
"""


def ensure_state_dir(root: Path) -> Path:
    """The repo's ``.loopcraft`` folder, created on first use with its ``.gitignore`` (a user's
    own edits to that file are kept: it is written only when missing)."""
    folder = state_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text(STATE_GITIGNORE)
    return folder


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
