"""Git helpers for loops, public (``from loopcraft import open_worktree, commit_all, snapshot, git_diff``).

Agents cannot commit (the sandbox mounts ``.git`` read-only), so a loop commits for them. Every
function is blocking, idempotent and meant to be called through ``ctx.tool`` so its result is
journaled: committing a tree that has nothing new returns the current commit again, and opening a
worktree that exists reuses it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import BaseModel

from loopcraft.engine import worktrees
from loopcraft.engine.worktrees import WorktreeError

_OWN = (".loopcraft/runs", ".loopcraft/worktrees", ":(glob).loopcraft/loopcraft.db*")


class WorktreeInfo(BaseModel):
    """A loop's worktree: its folder, its branch and the commit it started from."""

    path: str
    branch: str
    base: str


class CommitInfo(BaseModel):
    """The state of a work tree after :func:`commit_all`: HEAD, its tree, and whether it committed."""

    commit: str
    tree: str
    changed: bool


def _git(path: Path):  # type: ignore[no-untyped-def]
    return worktrees._repo(path).git


def open_worktree(root: str | Path, run_id: str, name: str) -> WorktreeInfo:
    """Create (or reuse) the worktree ``.loopcraft/worktrees/<run>-<name>`` on branch
    ``loopcraft/<run>/<name>`` from HEAD; ``base`` is the commit the branch forked from."""
    wt = worktrees.ensure_worktree(worktrees.worktree_for(Path(root), run_id, name))
    base = str(_git(wt.root).merge_base("HEAD", wt.branch))
    return WorktreeInfo(path=str(wt.path), branch=wt.branch, base=base)


def close_worktree(root: str | Path, path: str | Path) -> None:
    """Remove a worktree folder (its branch and commits stay)."""
    worktrees.remove_worktree(worktrees.Worktree(Path(root), Path(path), ""))


def _stage_all(git, env: dict[str, str] | None = None) -> None:  # type: ignore[no-untyped-def]
    """``git add -A`` of the work tree, then loopcraft's own files taken out of the index again
    (pathspec excludes fail where ``.loopcraft`` is git-ignored)."""
    git.add("-A", "--", ".", env=env)
    if Path(git.working_dir, ".loopcraft").exists():
        git.rm("--cached", "-r", "-q", "--ignore-unmatch", "--", *_OWN, env=env)


def commit_all(path: str | Path, message: str) -> CommitInfo:
    """Commit everything changed in the work tree at ``path`` (loopcraft's own files excluded);
    ``changed`` is False when there was nothing to commit (then HEAD is returned as it was)."""
    import git as gitpython

    repo = worktrees._repo(Path(path))
    git = repo.git
    try:
        _stage_all(git)
        changed = True
        try:
            git.commit("-q", "--no-verify", "-m", message, env=worktrees._identity_env(repo))
        except gitpython.GitCommandError as exc:
            if exc.status != 1 or str(git.diff("--cached", "--name-only")):
                raise
            changed = False  # nothing to commit
        head, tree = str(git.rev_parse("HEAD", "HEAD^{tree}")).split()
    except gitpython.GitCommandError as exc:
        raise WorktreeError(f"cannot commit {path}: {worktrees._git_error(exc)}") from None
    return CommitInfo(commit=head, tree=tree, changed=changed)


def snapshot(path: str | Path) -> str:
    """The tree id of everything in the work tree at ``path`` now (tracked or not, ignored files and
    loopcraft's own excluded), without committing or touching the real index."""
    git = _git(Path(path))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        try:
            git.read_tree("HEAD", env=env)
        except Exception:  # an unborn HEAD: start from an empty index
            pass
        _stage_all(git, env)
        return str(git.write_tree(env=env))


def git_diff(path: str | Path, base: str, head: str | None = None) -> str:
    """The diff from ``base`` to ``head`` (a commit or tree id; default: the work tree as it is now)."""
    git = _git(Path(path))
    target = head or snapshot(path)
    try:
        return str(git.diff(base, target))
    except Exception as exc:
        raise WorktreeError(f"cannot diff {base}..{target} in {path}: {worktrees._git_error(exc)}") from None
