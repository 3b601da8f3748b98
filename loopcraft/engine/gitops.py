"""Engine-side git operations for loops, public (``from loopcraft import gitops`` or the names
``open_worktree, commit_all, snapshot, git_diff``): open and close a loop's worktree, commit a work
tree, snapshot its tree, diff, keep a branch's tree as one commit on another branch, list the files a
change touched, drop a branch or a worktree.

Agents cannot commit (the sandbox mounts ``.git`` read-only), so a loop commits for them. Every
function is blocking (git through gitpython), serialized per repository like
:mod:`loopcraft.engine.worktrees`, idempotent, and meant to be called through ``ctx.tool`` so its
result is journaled: committing a tree that has nothing new returns the current commit again,
``commit_all`` with a ``key`` and ``commit_onto`` recognise the commit they made before a crash
instead of making another, and opening a worktree that exists reuses it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import BaseModel

from loopcraft.engine import worktrees
from loopcraft.engine.worktrees import (
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
    "BaseBranch",
    "CommitInfo",
    "GitError",
    "WorktreeInfo",
    "base_branch",
    "changed_files",
    "close_worktree",
    "commit_all",
    "commit_onto",
    "current_branch",
    "delete_branch",
    "drop_worktree",
    "ensure_branch",
    "git_diff",
    "head",
    "open_worktree",
    "safe_name",
    "snapshot",
    "stage_worktree",
]

GitError = WorktreeError

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


class BaseBranch(BaseModel):
    """The branch a change is measured against and where HEAD forked from it."""

    branch: str  # main, master or the upstream's default (origin/main)
    merge_base: str
    head: str


def _git(path: Path):  # type: ignore[no-untyped-def]
    return _repo(path).git


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


def commit_all(path: str | Path, message: str, *, key: str | None = None) -> CommitInfo:
    """Commit everything changed in the work tree at ``path`` (loopcraft's own files excluded);
    ``changed`` is False when there was nothing to commit (then HEAD is returned as it was). With
    ``key`` (e.g. ``ctx.idempotency_key``) the key goes into the message, and a HEAD already carrying
    it (a re-run after a crash) is returned instead of committing again."""
    import git as gitpython

    text = f"{message}\n\nloopcraft-step: {key}" if key else message
    with _lock(Path(path)):
        repo = _repo(Path(path))
        git = repo.git
        try:
            if key and repo.head.is_valid() and f"loopcraft-step: {key}" in str(repo.head.commit.message):
                head_, tree = str(git.rev_parse("HEAD", "HEAD^{tree}")).split()
                return CommitInfo(commit=head_, tree=tree, changed=True)
            _stage_all(git)
            changed = True
            try:
                git.commit("-q", "--no-verify", "-m", text, env=_identity_env(repo))
            except gitpython.GitCommandError as exc:
                if exc.status != 1 or str(git.diff("--cached", "--name-only")):
                    raise
                changed = False  # nothing to commit
            head_, tree = str(git.rev_parse("HEAD", "HEAD^{tree}")).split()
        except gitpython.GitCommandError as exc:
            raise WorktreeError(f"cannot commit {path}: {_git_error(exc)}") from None
    return CommitInfo(commit=head_, tree=tree, changed=changed)


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
        raise WorktreeError(f"cannot diff {base}..{target} in {path}: {_git_error(exc)}") from None


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


def _quiet(root: Path, *args: str) -> str | None:
    """``git ARGS``' output, or None when it fails."""
    try:
        return _run(root, "", *args).strip() or None
    except GitError:
        return None


def _base_candidates(root: Path) -> list[str]:
    """Where a change may fork from, best first: the upstream remote's default branch
    (``<remote>/HEAD``), then a local ``main`` or ``master``, then ``<remote>/main|master``."""
    upstream = _quiet(root, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}")
    remote = upstream.split("/", 1)[0] if upstream and "/" in upstream else "origin"
    default = _quiet(root, "symbolic-ref", "--quiet", "--short", f"refs/remotes/{remote}/HEAD")
    found = [default] if default else []
    found += ["main", "master", f"{remote}/main", f"{remote}/master"]
    return list(dict.fromkeys(found))


def base_branch(root: Path) -> BaseBranch:
    """The repository's base branch for a review (see :func:`_base_candidates`) and its merge-base
    with HEAD; :class:`GitError` (one line) when there is none."""
    try:
        _repo(root)
    except GitError:
        raise GitError(f"{root} is not a git repository: there is no base branch") from None
    with _lock(root):
        head_ = _quiet(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        if head_ is None:
            raise GitError("no commit yet (HEAD is unborn): nothing to compare with a base branch")
        for branch in _base_candidates(root):
            if _quiet(root, "rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}") is None:
                continue
            merge_base = _quiet(root, "merge-base", branch, "HEAD")
            if merge_base is not None:
                return BaseBranch(branch=branch, merge_base=merge_base, head=head_)
    raise GitError("no base branch: no main, master or upstream default branch shares history with HEAD")
