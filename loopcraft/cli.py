"""The ``loopcraft`` command: the TUI by default, headless commands for scripts and CI.

``loopcraft`` alone (or with just ``--model``) opens the interactive app straight away,
without importing typer and its help machinery: the first frame comes sooner. Any other
command line goes to the typer app in :mod:`loopcraft.cli_commands`. Either way a
:class:`LoopcraftError` becomes one ``error: <line>`` on stderr and its exit code.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from loopcraft.errors import LoopcraftError, error_line

_MODEL_FLAGS = ("--model", "-m")


@dataclass(frozen=True)
class CommandLine:
    """What ``loopcraft``'s arguments ask for: the app (with an optional model) or a command."""

    opens_app: bool
    model: str | None = None


def classify(argv: Sequence[str]) -> CommandLine:
    """The app when ``argv`` is empty or only ``--model X`` / ``-m X`` / ``--model=X``;
    anything else (commands, ``--help``, ``--version``, odd spellings) is for typer."""
    args = list(argv)
    if not args:
        return CommandLine(True)
    if len(args) == 2 and args[0] in _MODEL_FLAGS and not args[1].startswith("-"):
        return CommandLine(True, args[1])
    if len(args) == 1 and args[0].startswith("--model=") and not args[0].startswith("--model=-"):
        return CommandLine(True, args[0].removeprefix("--model="))
    return CommandLine(False)


def open_app(model: str | None) -> None:
    """Load the configuration (with ``model`` as the command-line flag) and run the app.

    The imports before the first frame (Textual, pydantic) allocate a few hundred thousand
    long-lived objects; the collector is off meanwhile, and they are frozen afterwards, as the
    app's collection policy (``tui/gcpolicy.py``) would do first thing anyway."""
    gc.disable()
    try:
        from loopcraft.config import load_repo_config

        root, config = load_repo_config(model)
        if model:
            from loopcraft.models.spec import parse_model

            parse_model(model)
        require_terminal()
        from loopcraft.logs import resolve_level, setup_logging

        setup_logging(root, resolve_level(None))
        from loopcraft.tui.app import run_app
    finally:
        gc.freeze()
        gc.enable()
    run_app(root, config, model)


NO_TERMINAL = (
    "no terminal: the interactive app needs one; for scripts use `loopcraft chat -p PROMPT` "
    "or `loopcraft run WORKFLOW` (`loopcraft --help` lists every command)"
)


def require_terminal() -> None:
    """The app draws on a terminal and reads keys from it: without one (stdin or stdout not a
    tty, e.g. ``loopcraft < /dev/null`` or in a pipe) say so at once instead of hanging."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise LoopcraftError(NO_TERMINAL)


def _exit_with(message: str, code: int) -> None:
    print(error_line(message), file=sys.stderr)
    sys.exit(code)


def run_command() -> None:
    """The typer app; a usage error (unknown option, missing argument) is one ``error:`` line
    naming it and the command's ``--help``, exit 2, instead of click's usage block."""
    try:  # newer typer vendors click as typer._click; older ones use click itself
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover
        from click import exceptions as click  # type: ignore[no-redef]

    import typer

    from loopcraft.cli_commands import app

    try:
        code = app(standalone_mode=False, prog_name="loopcraft")
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "loopcraft"
        message = " ".join(exc.format_message().split()).replace("Value error, ", "")
        _exit_with(f"{message.rstrip('.')}; see {where} --help", 2)
    except typer.Abort:
        _exit_with("interrupted", 130)
    except click.ClickException as exc:
        _exit_with(" ".join(exc.format_message().split()), exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def main() -> None:
    """Console-script entry point."""
    completing = "_LOOPCRAFT_COMPLETE" in os.environ  # the shell asks typer for completions
    line = CommandLine(False) if completing else classify(sys.argv[1:])
    try:
        if line.opens_app:
            open_app(line.model)
            return
        run_command()
    except LoopcraftError as exc:  # the app's, or raised outside a command (e.g. in a callback)
        _exit_with(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        if not line.opens_app:
            raise
        _exit_with("interrupted", 130)
    except Exception as exc:  # a bug: one line naming the log file, the traceback in it
        from loopcraft.logs import log_unexpected

        _exit_with(log_unexpected(exc), 1)
