"""Workspace confinement: turn a path the model gave into a real path inside the workspace, or refuse."""

from __future__ import annotations

import os
from pathlib import Path

from loopcraft.agent.tools.base import ToolError


class PathEscapeError(ToolError):
    """A path leads outside the workspace (absolute, ``..`` or a symlink)."""


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_in_workspace(workspace: Path, raw: str) -> Path:
    """The resolved path of ``raw`` (relative to ``workspace`` unless absolute), confined to it.

    Raises :class:`PathEscapeError` naming why when it (or a symlink on the way) leads out.
    """
    if not raw or "\0" in raw:
        raise ToolError("a path must be a non-empty string without NUL characters")
    root = workspace.resolve()
    given = Path(os.path.expanduser(raw))
    lexical = Path(os.path.normpath(given if given.is_absolute() else root / given))
    if not _inside(lexical, root):
        how = "is an absolute path" if given.is_absolute() else "uses `..` to leave"
        raise PathEscapeError(
            f"refused: `{raw}` {how} outside the workspace {root}; only paths inside it can be used"
        )
    resolved = lexical.resolve()
    if not _inside(resolved, root):
        raise PathEscapeError(
            f"refused: `{raw}` goes through a symlink to {resolved}, outside the workspace {root}"
        )
    if resolved.parent.name == ".loopcraft" and resolved.name.startswith("loopcraft.db"):
        # Opening and closing the journal in the process that owns a run drops SQLite's locks.
        raise ToolError(
            f"refused: `{raw}` is loopcraft's journal; use `loopcraft show RUN --json` to inspect runs"
        )
    return resolved


def display(workspace: Path, path: Path) -> str:
    """``path`` relative to the workspace, for output the model reads."""
    try:
        rel = path.relative_to(workspace.resolve())
    except ValueError:
        return str(path)
    return rel.as_posix() if rel.parts else "."
