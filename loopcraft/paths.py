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


def outside_git_note(root: Path) -> str | None:
    """The one line to say when ``root`` is not in a git work tree (what will not work there), else None."""
    if (root / ".git").exists():
        return None
    return (
        f"note: {root} is not a git repository: worktrees (worktree=True) and merges will not work; "
        "everything else does (`git init` to enable them)"
    )


def state_dir(root: Path | None = None) -> Path:
    """The repo's ``.loopcraft`` folder."""
    return (root or repo_root()) / ".loopcraft"


def private_dir(path: Path) -> Path:
    """``path`` created if needed and made owner-only (0700): the journal and transcripts live there."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def umask_default(kind: int = 0o666) -> int:
    """The mode a new file gets under the process umask (read without changing it on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return kind & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return kind & ~mask


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
    folder = private_dir(state_dir(root))
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
