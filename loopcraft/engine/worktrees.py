"""Git worktrees for stages that run in isolation (``ctx.task(..., worktree=True)``): create (or,
on resume, reuse) ``.loopcraft/worktrees/<run>-<stage>`` on branch ``loopcraft/<run>/<stage>``,
commit what the stage changed, diff the branch against its fork point, remove the folder, and
merge the branch back into the main work tree (aborting cleanly on conflict).

Every function here is blocking (git subprocesses through gitpython) and serialized per
repository; the engine calls them with :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from loopcraft.errors import LoopcraftError
from loopcraft.paths import state_dir

MergeStrategy = Literal["merge", "squash"]
STRATEGIES = ("merge", "squash")
FALLBACK_IDENTITY = ("loopcraft", "loopcraft@localhost")
# Files loopcraft itself keeps under .loopcraft/ never go into a stage's commit.
_NOT_COMMITTED = (
    ":(exclude).loopcraft/runs",
    ":(exclude).loopcraft/worktrees",
    ":(exclude).loopcraft/loopcraft.db*",
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
log = logging.getLogger(__name__)


class WorktreeError(LoopcraftError):
    """A worktree could not be created, committed, removed or merged."""


class MergeConflict(WorktreeError):
    """Merging a stage's branch conflicts; the merge was aborted and the main tree left as it was."""

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files


@dataclass(frozen=True)
class Worktree:
    """One stage's worktree: the main repository, the worktree folder and its branch."""

    root: Path
    path: Path
    branch: str
    base: str = "HEAD"  # the branch or commit a new worktree starts from


def safe_name(name: str) -> str:
    """``name`` as one path component that is also valid inside a git ref."""
    text = _UNSAFE.sub("-", name).replace("..", ".")
    text = re.sub(r"-{2,}", "-", text).strip(".-")
    if text.endswith(".lock"):
        text = text[: -len(".lock")] + "-lock"
    return text[:60].strip(".-") or "stage"


def worktree_for(root: Path, run_id: str, stage: str, base: str | None = None) -> Worktree:
    """Where the worktree of ``stage`` in ``run_id`` lives and which branch it is on."""
    run, name = safe_name(run_id), safe_name(stage)
    path = state_dir(root) / "worktrees" / f"{run}-{name}"
    return Worktree(root, path, f"loopcraft/{run}/{name}", base or "HEAD")


def _lock(root: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(root.resolve()), threading.Lock())


def _repo(path: Path):  # type: ignore[no-untyped-def]
    import git

    try:
        return git.Repo(path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise WorktreeError(f"worktree=True needs a git repository; {path} is not one") from None


def _git_error(exc: Exception) -> str:
    stderr = str(getattr(exc, "stderr", "") or exc).strip().strip("'\"")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1].removeprefix("stderr: ").strip("'\"") if lines else str(exc)


def _branch_exists(repo, branch: str) -> bool:  # type: ignore[no-untyped-def]
    import git

    try:
        repo.git.rev_parse("--verify", "--quiet", f"refs/heads/{branch}")
        return True
    except git.GitCommandError:
        return False


def _identity_env(repo) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Author/committer variables when the repository has no ``user.name``/``user.email``."""
    reader = repo.config_reader()
    name = reader.get_value("user", "name", "") or ""
    email = reader.get_value("user", "email", "") or ""
    if name and email:
        return {}
    name, email = name or FALLBACK_IDENTITY[0], email or FALLBACK_IDENTITY[1]
    return {
        "GIT_AUTHOR_NAME": str(name),
        "GIT_AUTHOR_EMAIL": str(email),
        "GIT_COMMITTER_NAME": str(name),
        "GIT_COMMITTER_EMAIL": str(email),
    }


# -- the stage's side ---------------------------------------------------------------------------


def ensure_worktree(wt: Worktree) -> Worktree:
    """Create the worktree on a new branch from HEAD, or reuse it (a resumed stage continues there)."""
    import git

    with _lock(wt.root):
        repo = _repo(wt.root)
        if (wt.path / ".git").exists():
            return wt
        if wt.path.exists() and any(wt.path.iterdir()):
            raise WorktreeError(f"cannot create worktree {wt.path}: the folder exists and is not a worktree")
        if not repo.head.is_valid():
            raise WorktreeError("worktree=True needs a repository with at least one commit")
        wt.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            repo.git.worktree("prune")
            if _branch_exists(repo, wt.branch):  # the folder was removed; the branch kept its work
                repo.git.worktree("add", str(wt.path), wt.branch)
            else:
                repo.git.worktree("add", "-b", wt.branch, str(wt.path), wt.base)
        except git.GitCommandError as exc:
            raise WorktreeError(f"cannot create worktree {wt.path}: {_git_error(exc)}") from None
        return wt


def commit_worktree(wt: Worktree, message: str) -> bool:
    """Commit everything the stage changed in its worktree on its branch; False when nothing changed."""
    import git

    with _lock(wt.root):
        repo = _repo(wt.path)
        try:
            repo.git.add("-A", "--", ".", *_NOT_COMMITTED)
            if not repo.git.diff("--cached", "--name-only"):
                return False
            repo.git.commit("-q", "--no-verify", "-m", message, env=_identity_env(repo))
        except git.GitCommandError as exc:
            raise WorktreeError(f"cannot commit worktree {wt.path}: {_git_error(exc)}") from None
        return True


def branch_diff(wt: Worktree) -> str:
    """The branch's changes since it forked from its base (the main work tree's HEAD by default)."""
    import git

    with _lock(wt.root):
        repo = _repo(wt.root)
        try:
            base = repo.git.merge_base(wt.base, wt.branch)
            return str(repo.git.diff(base, wt.branch))
        except git.GitCommandError as exc:
            raise WorktreeError(f"cannot diff branch {wt.branch}: {_git_error(exc)}") from None


def remove_worktree(wt: Worktree) -> None:
    """Remove the worktree folder (its branch stays)."""
    import git

    with _lock(wt.root):
        repo = _repo(wt.root)
        try:
            if wt.path.exists():
                repo.git.worktree("remove", "--force", str(wt.path))
            repo.git.worktree("prune")
        except git.GitCommandError as exc:
            raise WorktreeError(f"cannot remove worktree {wt.path}: {_git_error(exc)}") from None


def run_worktrees(root: Path, run_id: str) -> list[Worktree]:
    """The worktrees git has for ``run_id``'s stages (on branches ``loopcraft/<run>/…``)."""
    import git

    if not (state_dir(root) / "worktrees").is_dir():
        return []  # the run (like every run in this repository) never made one
    prefix = f"branch refs/heads/loopcraft/{safe_name(run_id)}/"
    with _lock(root):
        try:
            listing = str(_repo(root).git.worktree("list", "--porcelain"))
        except (WorktreeError, git.GitCommandError):
            return []
    found = []
    for block in listing.split("\n\n"):
        lines = block.splitlines()
        branch = next((line for line in lines if line.startswith(prefix)), None)
        if lines and lines[0].startswith("worktree ") and branch is not None:
            path = Path(lines[0].removeprefix("worktree "))
            found.append(Worktree(root, path, branch.removeprefix("branch refs/heads/")))
    return found


def discard_run_worktrees(root: Path, run_id: str, message: str) -> list[Path]:
    """Commit what is left in each of the run's worktrees on its branch (the branches stay), then
    remove the folders; returns the folders removed. For a run that ended for good (killed)."""
    removed = []
    for wt in run_worktrees(root, run_id):
        with contextlib.suppress(WorktreeError):  # a folder in a broken state is removed all the same
            commit_worktree(wt, message)
        try:
            remove_worktree(wt)
        except WorktreeError as exc:  # logged and left; the run's other folders are still removed
            log.warning("run %s: worktree %s not removed: %s", run_id, wt.path, exc)
            continue
        removed.append(wt.path)
    return removed


def _same_file(source: Path, target: Path) -> bool:
    """``target`` is a copy of ``source`` as it is now (same size and modification time)."""
    try:
        a, b = source.stat(), target.stat()
    except OSError:
        return False
    return (a.st_size, a.st_mtime_ns) == (b.st_size, b.st_mtime_ns)


def visible_read(wt: Worktree, path: Path) -> Path:
    """A ``reads=`` file of the main tree as the stage in ``wt`` sees it: the run's own files (under
    ``.loopcraft/runs``, never committed) are copied in; repository files are the worktree's copy."""
    try:
        rel = path.resolve().relative_to(wt.root.resolve())
    except ValueError:
        return path
    target = wt.path / rel
    if rel.parts[:2] == (".loopcraft", "runs"):
        if not _same_file(path, target):  # several stages reading one file copy it once
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        return target
    return target if target.exists() else path


# -- merging back -------------------------------------------------------------------------------


def merge_branch(root: Path, branch: str, strategy: str = "merge", message: str | None = None) -> str:
    """Merge ``branch`` into the main work tree's current branch; returns the resulting HEAD commit.

    On conflict the merge is aborted (the main tree is left as it was) and :class:`MergeConflict`
    names the conflicting files."""
    import git

    if strategy not in STRATEGIES:
        raise WorktreeError(f"unknown merge strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    with _lock(root):
        repo = _repo(root)
        if not _branch_exists(repo, branch):
            raise WorktreeError(f"cannot merge {branch}: no such branch")
        if repo.head.is_detached:
            raise WorktreeError(f"cannot merge {branch}: the main work tree has a detached HEAD")
        target = repo.active_branch.name
        if repo.is_dirty(untracked_files=False):
            dirty = sorted(
                {d.a_path for d in repo.index.diff(None)} | {d.a_path for d in repo.index.diff("HEAD")}
            )
            raise WorktreeError(
                f"cannot merge {branch} into {target}: uncommitted changes in {', '.join(dirty[:5])}; "
                "commit or stash them first"
            )
        env = _identity_env(repo)
        text = message or f"loopcraft: merge {branch}"
        try:
            if strategy == "squash":
                repo.git.merge("--squash", branch, env=env)
                if repo.git.diff("--cached", "--name-only"):
                    repo.git.commit("-q", "--no-verify", "-m", text, env=env)
            else:
                repo.git.merge("--no-ff", "--no-edit", "-m", text, branch, env=env)
        except git.GitCommandError as exc:
            files = [f for f in str(repo.git.diff("--name-only", "--diff-filter=U")).splitlines() if f]
            _abort(repo)
            if files:
                raise MergeConflict(
                    f"merging {branch} into {target} conflicts in {', '.join(files)}; "
                    "the merge was aborted and the main tree is unchanged",
                    files,
                ) from None
            raise WorktreeError(f"cannot merge {branch} into {target}: {_git_error(exc)}") from None
        return str(repo.head.commit.hexsha)


def _abort(repo) -> None:  # type: ignore[no-untyped-def]
    """Undo a failed merge (or squash) so the work tree and index match HEAD again."""
    import git

    try:
        if (Path(repo.git_dir) / "MERGE_HEAD").exists():
            repo.git.merge("--abort")
        else:
            repo.git.reset("--merge")  # a squash leaves no MERGE_HEAD; the tree was clean before
    except git.GitCommandError:
        repo.git.reset("--merge")


# -- async entry points (the engine's hooks) -----------------------------------------------------


async def open_stage_worktree(root: Path, run_id: str, stage: str, base: str | None = None) -> Worktree:
    """The stage's worktree, created from ``base`` (default HEAD) or reused after a crash."""
    return await asyncio.to_thread(ensure_worktree, worktree_for(root, run_id, stage, base))


async def close_stage_worktree(wt: Worktree, message: str, *, keep: bool = False) -> str:
    """Commit the stage's changes on its branch, remove the folder unless ``keep``; returns the diff."""

    def finish() -> str:
        commit_worktree(wt, message)
        diff = branch_diff(wt)
        if not keep:
            remove_worktree(wt)
        return diff

    return await asyncio.to_thread(finish)


async def merge_stage_branch(root: Path, branch: str, strategy: str, message: str) -> str:
    return await asyncio.to_thread(merge_branch, root, branch, strategy, message)


async def discard_killed_run(root: Path, run_id: str) -> list[Path]:
    """Remove a killed run's worktree folders (work left in them is committed on their branches).
    Never fails the kill: a folder that cannot be removed is logged and left."""
    message = f"loopcraft: run {run_id} was killed; work left in its worktree"
    try:
        return await asyncio.to_thread(discard_run_worktrees, root, run_id, message)
    except LoopcraftError as exc:
        log.warning("run %s was killed but its worktrees were not all removed: %s", run_id, exc)
        return []
