"""Which files the file tools see: git's own ignore rules, in one place.

In a git work tree the list is git's: ``git ls-files --cached --others --exclude-standard``
(through GitPython), so negations (``!keep.log``), nested ``.gitignore`` files,
``.git/info/exclude`` and the user's ``core.excludesFile`` count exactly as git counts them.
Outside one (or when git cannot answer) every ``.gitignore`` from the workspace root down is
read with pathspec's gitignore semantics: the deepest file that has a say decides, and the
last matching line in it wins. Either way the folders in :data:`ALWAYS_SKIPPED` are never
listed, and only regular files whose real path stays inside the workspace are.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import git
import pathspec

ALWAYS_SKIPPED = frozenset(
    {
        ".git",
        ".loopcraft",  # the journal: opening its SQLite files here would drop the owner's locks
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
    }
)

_Spec = tuple[str, pathspec.GitIgnoreSpec]  # (folder prefix relative to the root, its .gitignore)


def visible_files(root: Path, start: Path) -> list[str]:
    """Workspace-relative posix paths of the files under ``start`` (a folder or a file inside
    ``root``, both resolved) that are not ignored, sorted."""
    rel_start = _relative(root, start)
    listed = _git_listed(root, rel_start)
    if listed is None:
        listed = list(_walk_unignored(root, rel_start))
    return sorted({rel for rel in listed if _shown(root, rel)})


def ignored_entries(root: Path, folder: Path) -> set[str]:
    """Names of the entries of ``folder`` (inside ``root``, both resolved) that git's ignore rules
    ignore: ``git check-ignore`` in a work tree, the same ``.gitignore`` reading as
    :func:`visible_files` outside one."""
    rel_dir = _relative(root, folder)
    prefix = rel_dir + "/" if rel_dir else ""
    entries = {
        prefix + entry.name + ("/" if entry.is_dir() else ""): entry.name for entry in folder.iterdir()
    }
    if not entries:
        return set()
    checked = _git_ignored(root, list(entries))
    if checked is None:
        specs = _ancestor_specs(root, rel_dir) + _spec_of(root, rel_dir)
        checked = {rel for rel in entries if _ignored(specs, rel.rstrip("/"), rel.endswith("/"))}
    return {entries[rel] for rel in checked if rel in entries}


def _git_ignored(root: Path, rels: list[str]) -> set[str] | None:
    """Which of ``rels`` (entries of one folder, a folder ending in ``/``) git ignores: matched by
    an ignore rule and holding nothing tracked. None outside a work tree."""
    runner = git.Git(str(root))
    try:
        out = runner.check_ignore("--", *rels)
    except git.GitCommandError as exc:
        if exc.status == 1:  # none of them is ignored
            return set()
        return None
    except (git.GitCommandNotFound, OSError):
        return None
    matched = {rel for rel in str(out).splitlines() if rel}
    if not matched:
        return set()
    try:
        tracked = str(runner.ls_files("--cached", "-z", "--", *sorted(matched))).split("\0")
    except git.GitCommandError:
        return None
    holds_tracked = {rel for rel in matched for path in tracked if path and (path + "/").startswith(rel)}
    return matched - holds_tracked


def _relative(root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return "" if rel == "." else rel


def _shown(root: Path, rel: str) -> bool:
    """Not under an always-skipped folder, and a regular file whose real path stays in ``root``."""
    if any(part in ALWAYS_SKIPPED for part in rel.split("/")[:-1]):
        return False
    try:
        real = (root / rel).resolve()
        return (real == root or root in real.parents) and stat.S_ISREG(real.stat().st_mode)
    except OSError:
        return False


def _git_listed(root: Path, rel_start: str) -> list[str] | None:
    """git's list of tracked and not-ignored untracked files under ``rel_start`` (relative to
    ``root``, which git runs in); None when ``root`` is not in a work tree or git fails."""
    skipped = [f"--exclude={name}/" for name in sorted(ALWAYS_SKIPPED)]  # untracked only: saves time
    try:
        out = git.Git(str(root)).ls_files(
            "--cached", "--others", "--exclude-standard", "-z", *skipped, "--", rel_start or "."
        )
    except (git.GitCommandError, git.GitCommandNotFound, OSError):
        return None
    # an untracked nested repository shows as ``name/``: git does not look inside it
    return [rel for rel in str(out).split("\0") if rel and not rel.endswith("/")]


def _walk_unignored(root: Path, rel_start: str) -> Iterator[str]:
    """Files under ``rel_start`` not ignored by any ``.gitignore`` from ``root`` down."""
    specs = _ancestor_specs(root, rel_start)
    start = root / rel_start
    if start.is_file():
        if not _ignored(specs, rel_start, is_dir=False):
            yield rel_start
        return
    yield from _walk(root, rel_start, specs)


def _walk(root: Path, rel_dir: str, specs: list[_Spec]) -> Iterator[str]:
    folder = root / rel_dir if rel_dir else root
    specs = specs + _spec_of(root, rel_dir)
    prefix = rel_dir + "/" if rel_dir else ""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        rel = prefix + entry.name
        is_dir = entry.is_dir(follow_symlinks=False)
        if (is_dir and entry.name in ALWAYS_SKIPPED) or _ignored(specs, rel, is_dir):
            continue
        if is_dir:
            yield from _walk(root, rel, specs)
        else:
            yield rel


def _ancestor_specs(root: Path, rel_start: str) -> list[_Spec]:
    """The ``.gitignore`` files of the folders above ``rel_start``, from ``root`` down (a folder's
    own is read by :func:`_walk`)."""
    if not rel_start:
        return []
    parts = rel_start.split("/")[:-1]
    folders = ["", *("/".join(parts[: i + 1]) for i in range(len(parts)))]
    return [spec for folder in folders for spec in _spec_of(root, folder)]


def _spec_of(root: Path, rel_dir: str) -> list[_Spec]:
    path = (root / rel_dir / ".gitignore") if rel_dir else root / ".gitignore"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [(rel_dir + "/" if rel_dir else "", pathspec.GitIgnoreSpec.from_lines(lines))]


def _ignored(specs: list[_Spec], rel: str, is_dir: bool) -> bool:
    """git's verdict: the deepest ``.gitignore`` with a matching line decides."""
    for prefix, spec in reversed(specs):
        if not rel.startswith(prefix):
            continue
        local = rel[len(prefix) :] + ("/" if is_dir else "")
        verdict = spec.check_file(local).include
        if verdict is not None:
            return bool(verdict)
    return False
