"""Where loopcraft keeps things on disk: the repo's ``.loopcraft/`` and ``~/.loopcraft/``."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

from loopcraft.errors import LoopcraftError

PACKAGE_DIR = Path(__file__).resolve().parent


class PlaceError(LoopcraftError):
    """A file or folder loopcraft needs cannot be made or written (exit 8, with the fix)."""

    exit_code = 8


def blocking_file(path: Path) -> Path | None:
    """The first existing non-folder on the way to ``path`` (its own parents), if any."""
    for candidate in reversed(path.parents):
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def place_error(path: Path | str, exc: OSError) -> PlaceError:
    """The one line for a filesystem failure at ``path``: what went wrong and what to do."""
    where = Path(path)
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "the disk is full (or a file size limit was hit): free some space and retry"
    elif code == errno.EROFS:
        fix = "the file system is read-only: run loopcraft in a writable folder (or set LOOPCRAFT_DB)"
    elif code in (errno.EACCES, errno.EPERM):
        fix = "permission denied: make the folder writable for you (or set LOOPCRAFT_DB to a writable place)"
    elif code in (errno.ENOTDIR, errno.EEXIST) and blocking_file(where / "x") is not None:
        fix = f"{blocking_file(where / 'x')} is a file where a folder is needed: move it away and retry"
    elif code == errno.ENOENT:
        fix = f"a folder on the way does not exist: create {where.parent} and retry"
    else:
        fix = f"{exc.strerror or exc}"
    return PlaceError(f"cannot write {where}: {fix}")


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
    """``path`` created if needed and made owner-only (0700): the journal and transcripts live there
    (a :class:`PlaceError` with the fix when it cannot be)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise place_error(path, exc) from exc
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
        try:
            ignore.write_text(STATE_GITIGNORE)
        except OSError as exc:
            raise place_error(ignore, exc) from exc
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
