"""The fixed choices of command-line options, as enums: ``--help`` and shell completion list
them, and a wrong value is one usage error naming the choices. Kept free of heavy imports
(``loopcraft --help`` loads this)."""

from __future__ import annotations

import enum


class GateMode(enum.StrEnum):
    """``--gates``: how a headless run meets a human gate."""

    auto = "auto"  # ask with a terminal, else stop
    ask = "ask"  # in the terminal (an editor gate opens $VISUAL / $EDITOR)
    wait = "wait"  # for `loopcraft answer` from another shell
    stop = "stop"  # end the run as needs_human


class SandboxChoice(enum.StrEnum):
    """``--sandbox``: the shell's OS sandbox for this command."""

    required = "required"
    workspace_write = "workspace-write"
    read_only = "read-only"
    off = "off"
