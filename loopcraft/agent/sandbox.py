"""The OS sandbox for the shell tool: wraps a ``bash -c`` argv in bubblewrap (``bwrap``) so the
workspace is writable except ``.git/`` and ``.loopcraft/``, the rest of the filesystem is read-only,
``/tmp`` is private and the network is off unless allowed. Where no sandbox exists the caller is
told once per process, and ``agent.sandbox_required`` refuses instead."""

from __future__ import annotations

import shutil
import subprocess
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
    if config.sandbox == "workspace-write":
        wrap += ["--bind", str(root), str(root)]
        for name in PROTECTED_DIRS:
            if (root / name).exists():
                wrap += ["--ro-bind", str(root / name), str(root / name)]
    else:
        wrap += ["--ro-bind", str(root), str(root)]
    if not config.sandbox_network:
        wrap.append("--unshare-net")
    wrap += ["--die-with-parent", "--chdir", str(root), "--"]
    return [*wrap, *argv], None
