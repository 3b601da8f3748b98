"""The OS sandbox for the shell tool: wraps a ``bash -c`` argv in bubblewrap (``bwrap``) so the
workspace is writable except ``.git/`` and ``.loopcraft/``, the rest of the filesystem is read-only,
``/tmp`` is private and the network is off unless allowed. Where no sandbox exists the caller is
told once per process, and ``agent.sandbox_required`` refuses instead."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from loopcraft.agent.tools.base import ToolError
from loopcraft.config import AgentConfig
from loopcraft.errors import SandboxRequiredError

PROTECTED_DIRS = (".git", ".loopcraft")
_warned: set[str] = set()


@lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """The ``bwrap`` binary when it exists and really works here (user namespaces may be off)."""
    found = shutil.which("bwrap")
    if found is None:
        return None
    try:
        probe = subprocess.run(
            [found, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-net", "true"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found if probe.returncode == 0 else None


class SandboxUnavailableError(ToolError):
    """``agent.sandbox_required`` is set and no sandbox works on this machine."""


def require_sandbox(config: AgentConfig) -> None:
    """Refuse up front (before a run starts) when a sandbox is required and none works here."""
    if not config.sandbox_required:
        return
    if config.sandbox == "off":
        raise SandboxRequiredError(
            'a sandbox is required but agent.sandbox is off; set agent.sandbox = "workspace-write" '
            "or drop --sandbox required"
        )
    if bwrap_path() is None:
        raise SandboxRequiredError(
            "a sandbox is required but no OS sandbox works here; install bubblewrap "
            "(`apt-get install bubblewrap`) or drop --sandbox required / agent.sandbox_required"
        )


def sandboxed_argv(argv: list[str], workspace: Path, config: AgentConfig) -> tuple[list[str], str | None]:
    """``argv`` wrapped in the configured sandbox, and a one-time notice when none is available."""
    if config.sandbox == "off":
        return argv, None
    bwrap = bwrap_path()
    if bwrap is None:
        if config.sandbox_required:
            raise SandboxUnavailableError(
                "refused: agent.sandbox_required is set but no OS sandbox works here (install bubblewrap: "
                "`apt-get install bubblewrap`), so the command was not run"
            )
        notice = None
        if "none" not in _warned:
            _warned.add("none")
            notice = "[note: no OS sandbox (bubblewrap) is available; the shell runs with rule checks only]"
        return argv, notice
    root = workspace.resolve()
    wrap = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for kept in _kept_under_tmp(root):
        wrap += ["--ro-bind", str(kept), str(kept)]
    if config.sandbox == "workspace-write":
        wrap += ["--bind", str(root), str(root)]
        for name in PROTECTED_DIRS:
            if (root / name).exists():
                wrap += ["--ro-bind", str(root / name), str(root / name)]
        for granted in granted_paths(root, config.allow_paths):  # a stage's grant, on top
            wrap += ["--bind", str(granted), str(granted)]
    else:
        wrap += ["--ro-bind", str(root), str(root)]
    if not config.sandbox_network:
        wrap.append("--unshare-net")
    wrap += ["--die-with-parent", "--chdir", str(root), "--"]
    return [*wrap, *argv], None


def granted_paths(root: Path, allow_paths: list[str]) -> list[Path]:
    """The existing paths inside ``root`` that ``allow_paths`` (workspace-relative, globs allowed)
    name: bound writable over the read-only protected folders. A path that does not exist yet
    can't be bound (the file tools can still create it); one leading out of ``root`` is skipped."""
    found: list[Path] = []
    for pattern in allow_paths:
        pattern = pattern.removesuffix("/**")
        matches = root.glob(pattern) if any(c in pattern for c in "*?[") else [root / pattern]
        for path in matches:
            if not path.exists():
                continue
            real = path.resolve()
            if real.is_relative_to(root) and real != root and real not in found:
                found.append(real)
    return found


def _kept_under_tmp(root: Path) -> list[Path]:
    """What lives under ``/tmp`` that the shell still needs to see, read-only, on top of its private
    ``/tmp``: the interpreter's environment and ``PATH`` folders (a virtualenv in a checkout under
    ``/tmp``), and a worktree's shared git folder."""
    wanted = [Path(sys.prefix), Path(sys.base_prefix)]
    wanted += [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    git_file = root / ".git"
    if git_file.is_file():  # a worktree: its .git names a folder inside the main repository's .git
        text = git_file.read_text(errors="replace").strip()
        if text.startswith("gitdir:"):
            gitdir = (root / text.removeprefix("gitdir:").strip()).resolve()
            wanted += [gitdir.parent.parent]  # <repo>/.git (worktrees/<name> inside it)
    kept: list[Path] = []
    for path in wanted:
        try:
            real = path.resolve()
        except OSError:
            continue
        under_tmp = real.is_relative_to("/tmp") and real != Path("/tmp") and real.exists()
        overlaps_root = real.is_relative_to(root) or root.is_relative_to(real)
        if under_tmp and not overlaps_root and real not in kept:
            kept.append(real)
    return kept
