"""User-facing errors: each carries the one line a person reads and an exit code."""

from __future__ import annotations


class LoopcraftError(Exception):
    """Base for every error a user may see. ``str(err)`` is the one-line message."""

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ConfigError(LoopcraftError):
    """A configuration file, variable or flag has a bad value."""


class ModelSpecError(LoopcraftError):
    """A model string is not ``provider/model[:effort]`` or names an unknown provider."""


class ScriptError(LoopcraftError):
    """A scripted-model script file is missing or malformed."""


class NotFoundError(LoopcraftError):
    """A named thing (workflow, run, stage, prompt, session) does not exist."""

    exit_code = 4


class SandboxRequiredError(LoopcraftError):
    """A sandbox is required (``--sandbox required`` / ``agent.sandbox_required``) and none works here."""

    exit_code = 9


_KIND_PREFIXES = ("config error: ", "script error: ")


def error_line(message: str) -> str:
    """``message`` as the one ``error: …`` line a command prints: never ``error: error: …`` (a
    message that already starts with ``error:`` keeps one), and ``config error: X`` reads
    ``error: config: X``."""
    text = message.strip()
    while text[:6].lower() == "error:":
        text = text[6:].lstrip()
    for prefix in _KIND_PREFIXES:
        if text.startswith(prefix):
            text = prefix.split(" ", 1)[0] + ": " + text[len(prefix) :]
    return f"error: {text}"
