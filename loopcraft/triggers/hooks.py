"""``loopcraft hooks install|uninstall [HOOK…]``: git hook scripts that record ``git.<hook>``
events (``loopcraft event git.<hook> --git-hook <hook>``: the commit, branch and changed paths).
A hook already there is kept and chained (moved to ``<hook>.loopcraft-chained`` and run first,
its exit code kept); uninstall puts it back. A hook never fails the git command because of us."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from loopcraft.errors import LoopcraftError
from loopcraft.triggers.spec import GIT_HOOKS

MARKER = "# loopcraft-hook: records a git event for `loopcraft serve`"
CHAINED = ".loopcraft-chained"


def hooks_dir(root: Path) -> Path:
    done = subprocess.run(
        ["git", "rev-parse", "--git-path", "hooks"], cwd=root, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise LoopcraftError(f"{root} is not a git repository; run `git init` first")
    path = Path(done.stdout.strip())
    return path if path.is_absolute() else root / path


def _script(hook: str) -> str:
    python = shlex.quote(sys.executable)
    return (
        "#!/bin/sh\n"
        f"{MARKER}\n"
        f'if [ -x "$0{CHAINED}" ]; then "$0{CHAINED}" "$@" || exit $?; fi\n'
        f"{python} -m loopcraft event git.{hook} --git-hook {hook} >/dev/null "
        '|| echo "loopcraft: could not record the git event (see above)" >&2\n'
        "exit 0\n"
    )


def _check(hooks: list[str]) -> list[str]:
    for hook in hooks:
        if hook not in GIT_HOOKS:
            raise LoopcraftError(f"unknown git hook {hook!r}; one of {', '.join(GIT_HOOKS)}")
    return hooks or ["post-commit"]


def is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def install(root: Path, hooks: list[str]) -> list[str]:
    """Install the hooks (default post-commit); the lines to print."""
    folder = hooks_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for hook in _check(hooks):
        path = folder / hook
        note = ""
        if path.exists() and not is_ours(path):
            chained = folder / (hook + CHAINED)
            if chained.exists():
                raise LoopcraftError(f"{chained} already exists; move it away, then install again")
            path.rename(chained)
            note = f" (your existing hook runs first, kept as {chained.name})"
        path.write_text(_script(hook), encoding="utf-8")
        os.chmod(path, 0o755)
        lines.append(f"installed {path}{note}")
    return lines


def uninstall(root: Path, hooks: list[str]) -> list[str]:
    """Remove our hooks (default: every one installed) and restore chained ones."""
    folder = hooks_dir(root)
    names = _check(hooks) if hooks else [h for h in GIT_HOOKS if is_ours(folder / h)]
    lines = []
    for hook in names:
        path = folder / hook
        if not is_ours(path):
            lines.append(f"{path}: not a loopcraft hook; left alone")
            continue
        path.unlink()
        chained = folder / (hook + CHAINED)
        if chained.exists():
            chained.rename(path)
            lines.append(f"removed the loopcraft {hook} hook; restored your own {path}")
        else:
            lines.append(f"removed {path}")
    return lines or ["no loopcraft hooks installed"]
