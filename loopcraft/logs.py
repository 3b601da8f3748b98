"""loopcraft's log file: engine, agent, model retries and provider errors, in one rotating file.

The file is ``.loopcraft/logs/loopcraft.log`` in the repository (``~/.loopcraft/logs/`` outside
one), at most :data:`MAX_BYTES` with :data:`BACKUPS` older files beside it. The level is
``--log-level`` (or ``-v`` for debug), else ``LOOPCRAFT_LOG_LEVEL``, else ``info``; litellm's own
loggers write there at ``warning`` and above, never to the terminal. Times are ISO-8601 UTC.
Nothing here logs a secret: callers pass scrubbed messages (see ``LiteLLMClient._scrub``).
"""

from __future__ import annotations

import enum
import logging
import logging.handlers
import os
import sys
import time
from pathlib import Path

from loopcraft.errors import ConfigError, LoopcraftError

LEVEL_ENV = "LOOPCRAFT_LOG_LEVEL"
MAX_BYTES = 2_000_000
BACKUPS = 3
LOG_NAME = "loopcraft.log"
LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogLevel(enum.StrEnum):
    """The levels ``--log-level`` takes (listed by ``--help`` and shell completion)."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


_handler: logging.Handler | None = None


def log_dir(root: Path | None) -> Path:
    """The folder of the log file: a git work tree's ``.loopcraft/logs``, else the user's
    ``~/.loopcraft/logs`` (no ``.loopcraft`` is made in a folder that is not a repository)."""
    from loopcraft.paths import home_dir, state_dir

    in_repo = root is not None and (root / ".git").exists()
    return (state_dir(root) if in_repo else home_dir()) / "logs"


def log_path(root: Path | None) -> Path:
    return log_dir(root) / LOG_NAME


def active_log_path() -> Path | None:
    """The file this process logs to, once :func:`setup_logging` ran."""
    if isinstance(_handler, logging.handlers.RotatingFileHandler):
        return Path(_handler.baseFilename)
    return None


def resolve_level(flag: str | None, verbose: bool = False) -> int:
    """``-v`` (debug), else the flag, else ``LOOPCRAFT_LOG_LEVEL``, else info; a bad name is a
    ConfigError naming the choices."""
    if verbose:
        return logging.DEBUG
    name = (flag or os.environ.get(LEVEL_ENV) or "info").strip().lower()
    if name not in LogLevel.__members__:
        choices = ", ".join(LogLevel.__members__)
        raise ConfigError(
            f"bad log level {name!r} (from {'--log-level' if flag else LEVEL_ENV}): use {choices}"
        )
    return int(logging.getLevelName(name.upper()))


def setup_logging(root: Path | None, level: int = logging.INFO, *, echo: bool = False) -> Path:
    """Send the ``loopcraft`` loggers (and litellm's, at warning) to the rotating file; with
    ``echo`` also to stderr (``-v`` on a headless command). Returns the file's path; calling it
    again replaces the earlier setup."""
    global _handler
    _teardown()
    path = log_path(root)
    ours = logging.getLogger("loopcraft")
    try:
        _log_folder(root, path)
    except (OSError, LoopcraftError):  # a read-only repo, `.loopcraft` a file: no log file; the
        handler = None  # command that needs the folder says so in one line
    else:
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
        )
        handler.setFormatter(_utc_formatter())
        _add(ours, handler)
    ours.setLevel(level)
    if echo:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("log: %(levelname)s %(name)s: %(message)s"))
        _add(ours, stream)
    _handler = handler
    quiet_litellm()
    return path


def _log_folder(root: Path | None, path: Path) -> None:
    if root is not None and (root / ".git").exists():
        from loopcraft.paths import ensure_state_dir

        ensure_state_dir(root)  # first use: owner-only, with its .gitignore
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# loopcraft's log files never go into git\n*\n")


def _add(logger: logging.Logger, handler: logging.Handler) -> None:
    handler._loopcraft = True  # type: ignore[attr-defined]
    logger.addHandler(handler)


def _teardown() -> None:
    """Remove and close the handlers an earlier :func:`setup_logging` installed."""
    global _handler
    for name in ("loopcraft", *LITELLM_LOGGERS):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "_loopcraft", False)]:
            logger.removeHandler(old)
            old.close()
    _handler = None


def quiet_litellm() -> None:
    """litellm's loggers: never on the terminal (its own handlers muted); warnings and worse go
    to loopcraft's log file when there is one."""
    for name in LITELLM_LOGGERS:
        logger = logging.getLogger(name)
        logger.propagate = False
        for handler in logger.handlers:
            if handler is not _handler:
                handler.setLevel(logging.CRITICAL + 1)
        if _handler is None:
            logger.setLevel(logging.CRITICAL)
            continue
        logger.setLevel(logging.WARNING)
        if _handler not in logger.handlers:
            logger.addHandler(_handler)  # marked ``_loopcraft``: removed by the next setup


def _utc_formatter() -> logging.Formatter:
    formatter = logging.Formatter(_FORMAT)
    formatter.converter = time.gmtime
    formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
    formatter.default_msec_format = "%s.%03dZ"
    return formatter


def log_unexpected(exc: BaseException) -> str:
    """Log ``exc`` with its traceback (setting up the log file if nothing did yet) and return
    the one line a user reads: what broke and where the details are."""
    path = active_log_path()
    if path is None:
        try:
            from loopcraft.paths import repo_root

            path = setup_logging(repo_root())
        except OSError:
            path = None
    logging.getLogger("loopcraft.unexpected").error("unexpected error", exc_info=exc)
    where = f"the traceback is in {path}" if path is not None else "no log file could be written"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (
        f"unexpected error: {type(exc).__name__}{': ' + first if first else ''}; {where} (please report it)"
    )
