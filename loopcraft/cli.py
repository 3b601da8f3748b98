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
from typing import NoReturn

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


# Commands that call a model: litellm's import (seconds) starts before typer, config and the engine.
_MODEL_COMMANDS = frozenset({"run", "resume", "fork", "eval", "serve"})
_VALUED_GLOBALS = frozenset({"--model", "-m", "--log-level"})  # global options that take a value


def needs_model(argv: Sequence[str], stdin_is_tty: bool = True) -> bool:
    """True when ``argv`` runs a command that will call a model: ``run``, ``resume``, ``fork``,
    ``eval``, ``serve``, and ``chat`` with ``-p`` or a prompt on stdin (``--help`` never does)."""
    args = list(argv)
    if any(a in ("--help", "-h") for a in args):
        return False
    command, index = None, 0
    while index < len(args):
        arg = args[index]
        if arg in _VALUED_GLOBALS:
            index += 2
            continue
        if not arg.startswith("-"):
            command = arg
            break
        index += 1
    if command in _MODEL_COMMANDS:
        return True
    if command != "chat":
        return False
    rest = args[index + 1 :]
    return any(a in ("-p", "--prompt") or a.startswith("--prompt=") for a in rest) or not stdin_is_tty


def open_app(model: str | None) -> None:
    """Run the app with ``model`` as the command-line flag. The first frame shows a preview of the
    configuration (read without pydantic); the app validates it right after that frame, and a bad
    one ends the app with its one ``error:`` line (``run_app`` raises it).

    The imports before the first frame (Textual) allocate a few hundred thousand long-lived
    objects; the collector is off meanwhile, and they are frozen afterwards, as the app's
    collection policy (``tui/gcpolicy.py``) would do first thing anyway."""
    gc.disable()
    try:
        from loopcraft.config_preview import preview_config
        from loopcraft.paths import repo_root

        root = repo_root()
        preview = preview_config(root, model)
        if model:
            from loopcraft.models.spec import parse_model

            parse_model(model)
        try:
            require_terminal()
        except LoopcraftError:  # no app to validate it after its first frame: a bad config is said first
            from loopcraft.config import load_config

            load_config(root, flags={"model": model})
            raise
        from loopcraft.logs import resolve_level, setup_logging

        setup_logging(root, resolve_level(None))
        from loopcraft.tui.app import run_app
    finally:
        gc.freeze()
        gc.enable()
    run_app(root, None, model, preview)


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
    except click.NoArgsIsHelpError as exc:  # a command group given no command: name what is missing
        where = exc.ctx.command_path if exc.ctx is not None else "loopcraft"
        _exit_with(f"missing command: {where} COMMAND; see {where} --help", 2)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "loopcraft"
        message = " ".join(exc.format_message().split()).replace("Value error, ", "")
        _exit_with(f"{message.rstrip('.')}; see {where} --help", 2)
    except typer.Abort:
        _exit_with("interrupted", 130)
    except click.ClickException as exc:
        _exit_with(" ".join(exc.format_message().split()), exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _filesystem_failure(exc: OSError) -> bool:
    """A file or folder that cannot be made or written (full disk, read-only, a file in the way):
    the user's to fix, so one line naming the path and exit 8, not a bug report."""
    import errno

    places = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
    places |= {errno.ENOTDIR, errno.EEXIST, errno.ENOENT, errno.EISDIR}
    return exc.filename is not None and exc.errno in places


def entry() -> None:
    """The ``loopcraft`` console script and ``python -m loopcraft``: :func:`main`, then exit
    without the interpreter's teardown. Once litellm is loaded (thousands of modules), freeing
    it all takes about a second after the command is done; non-daemon threads are joined and
    exit handlers run first, as on a normal exit, so nothing but that teardown is skipped."""
    try:
        main()
    except SystemExit as exc:
        _exit_now(exc.code)
    _exit_now(0)


def _exit_now(code: object) -> NoReturn:
    import atexit
    import threading

    shutdown = getattr(threading, "_shutdown", None)  # the interpreter's own join of non-daemon threads
    if callable(shutdown):
        shutdown()
    atexit._run_exitfuncs()
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"), as the interpreter reports it
        print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (``| head``) or a closed stream
            status = status or 1
    os._exit(status)


def main() -> None:
    """The command line: the app, or a headless command (see :func:`entry`)."""
    completing = "_LOOPCRAFT_COMPLETE" in os.environ  # the shell asks typer for completions
    line = CommandLine(False) if completing else classify(sys.argv[1:])
    try:
        if line.opens_app:
            open_app(line.model)
            return
        if not completing and needs_model(sys.argv[1:], sys.stdin.isatty()):
            from loopcraft.models.litellm_loader import preload_litellm

            preload_litellm()
        run_command()
    except LoopcraftError as exc:  # the app's, or raised outside a command (e.g. in a callback)
        _exit_with(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        if not line.opens_app:
            raise
        _exit_with("interrupted", 130)
    except OSError as exc:
        if not _filesystem_failure(exc):
            from loopcraft.logs import log_unexpected

            _exit_with(log_unexpected(exc), 1)
        from loopcraft.paths import place_error

        _exit_with(str(place_error(exc.filename, exc)), 8)
    except Exception as exc:  # a bug: one line naming the log file, the traceback in it
        from loopcraft.logs import log_unexpected

        _exit_with(log_unexpected(exc), 1)
