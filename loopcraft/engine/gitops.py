"""Engine-side git operations for loops (``from loopcraft import gitops``): commit a work tree, keep a
branch's tree as one commit on another branch, list the files a change touched, drop a branch or a
worktree. An agent's sandbox cannot write ``.git``, so loops commit with these, inside ``ctx.tool``.

Every function is blocking (git through gitpython), serialized per repository like
:mod:`loopcraft.engine.worktrees`, and safe to run again after a crash: ``commit_all`` with a
``key`` and ``commit_onto`` recognise the commit they made before instead of making another.
"""

from __future__ import annotations

from pathlib import Path

from loopcraft.engine.worktrees import (
    _NOT_COMMITTED,
    Worktree,
    WorktreeError,
    _git_error,
    _identity_env,
    _lock,
    _repo,
    remove_worktree,
    safe_name,
    worktree_for,
)

__all__ = [
    "GitError",
    "changed_files",
    "commit_all",
    "commit_onto",
    "current_branch",
    "delete_branch",
    "diff",
    "drop_worktree",
    "ensure_branch",
    "head",
    "safe_name",
    "stage_worktree",
]

GitError = WorktreeError


def _run(root: Path, what: str, *args: str, env: dict[str, str] | None = None) -> str:
    import git

    try:
        return str(_repo(root).git.execute(["git", *args], env=env))
    except git.GitCommandError as exc:
        raise GitError(f"cannot {what}: {_git_error(exc)}") from None


def head(root: Path, ref: str = "HEAD") -> str:
    """The commit ``ref`` points at."""
    with _lock(root):
        return _run(root, f"resolve {ref}", "rev-parse", "--verify", f"{ref}^{{commit}}").strip()


def current_branch(root: Path) -> str:
    """The checked-out branch's name (``HEAD`` when detached)."""
    with _lock(root):
        return _run(root, "read the current branch", "rev-parse", "--abbrev-ref", "HEAD").strip()


def ensure_branch(root: Path, branch: str, start: str = "HEAD") -> str:
    """Create ``branch`` at ``start`` unless it exists; returns its tip."""
    import git

    with _lock(root):
        try:
            return _run(root, "", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}").strip()
        except GitError:
            pass
        try:
            _repo(root).git.branch(branch, start)
        except git.GitCommandError as exc:
            raise GitError(f"cannot create branch {branch}: {_git_error(exc)}") from None
        return _run(root, f"resolve {branch}", "rev-parse", f"refs/heads/{branch}").strip()


def commit_onto(root: Path, branch: str, source: str, message: str) -> str:
    """Make ``source``'s tree one new commit on top of ``branch`` (no work tree is touched); returns
    the branch's new tip. When the tip already has that tree (a re-run after a crash), returns it."""
    with _lock(root):
        tip = _run(root, f"resolve {branch}", "rev-parse", "--verify", f"refs/heads/{branch}").strip()
        tree = _run(root, f"resolve {source}", "rev-parse", "--verify", f"{source}^{{tree}}").strip()
        if _run(root, f"resolve {branch}", "rev-parse", f"{tip}^{{tree}}").strip() == tree:
            return tip
        env = _identity_env(_repo(root))
        commit = _run(root, f"commit onto {branch}", "commit-tree", tree, "-p", tip, "-m", message, env=env)
        _run(root, f"move {branch}", "update-ref", f"refs/heads/{branch}", commit.strip(), tip)
        return commit.strip()


def changed_files(root: Path, base: str, ref: str) -> list[str]:
    """The paths that differ between ``base`` and ``ref``."""
    with _lock(root):
        out = _run(root, f"diff {base}..{ref}", "diff", "--name-only", base, ref)
    return [line for line in out.splitlines() if line]


def diff(root: Path, base: str, ref: str = "HEAD") -> str:
    """The unified diff from ``base`` to ``ref``."""
    with _lock(root):
        return _run(root, f"diff {base}..{ref}", "diff", base, ref)


def delete_branch(root: Path, branch: str) -> bool:
    """Delete ``branch`` (its worktree must be gone); False when there was no such branch."""
    with _lock(root):
        try:
            _run(root, "", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
        except GitError:
            return False
        _run(root, f"delete branch {branch}", "branch", "-D", branch)
        return True


def drop_worktree(root: Path, path: str | Path, branch: str | None = None) -> None:
    """Remove a worktree folder (its changes go with it) and, given ``branch``, delete that branch."""
    remove_worktree(Worktree(root, Path(path), branch or ""))
    if branch:
        delete_branch(root, branch)


def stage_worktree(root: Path, run_id: str, stage: str) -> tuple[Path, str]:
    """Where a ``worktree=True`` stage of ``run_id`` has (or had) its folder, and its branch."""
    wt = worktree_for(root, run_id, stage)
    return wt.path, wt.branch


def commit_all(path: Path, message: str, *, key: str | None = None) -> str | None:
    """Commit everything changed in the work tree at ``path`` (loopcraft's own state excluded);
    returns the new commit, or None when nothing changed. With ``key`` (e.g. ``ctx.idempotency_key``)
    the key goes into the message, and a HEAD already carrying it is returned instead of committing."""
    import git

    text = f"{message}\n\nloopcraft-step: {key}" if key else message
    with _lock(path):
        repo = _repo(path)
        try:
            if key and repo.head.is_valid() and f"loopcraft-step: {key}" in str(repo.head.commit.message):
                return str(repo.head.commit.hexsha)
            _add_all(repo)
            if repo.head.is_valid() and not repo.git.diff("--cached", "--name-only"):
                return None
            repo.git.commit("-q", "--no-verify", "-m", text, env=_identity_env(repo))
        except git.GitCommandError as exc:
            raise GitError(f"cannot commit in {path}: {_git_error(exc)}") from None
        return str(repo.head.commit.hexsha)


def _add_all(repo) -> None:  # type: ignore[no-untyped-def]
    """Stage every change but loopcraft's own state. git exits 1 when an excluded path is also
    ignored (the main tree's ``.loopcraft/`` usually is) even though it staged the rest: that is fine."""
    import git

    try:
        repo.git.add("-A", "--", ".", *_NOT_COMMITTED)
    except git.GitCommandError as exc:
        if "ignored by one of your .gitignore files" not in str(exc.stderr):
            raise
