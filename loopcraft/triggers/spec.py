"""Trigger models and the helpers a workflow declares them with (``cron()``, ``every()``,
``on_files()``, ``on_git()``, ``on_webhook()``). Each trigger listens to one event name; an
event recorded under that name (by the scheduler, the file watcher, a git hook, a webhook or
``loopcraft event``) becomes one run of the trigger's workflow."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopcraft.errors import LoopcraftError

Kind = Literal["cron", "every", "files", "git", "webhook"]
Overlap = Literal["skip", "queue", "cancel_previous"]
Catchup = Literal["none", "one", "all"]
GIT_HOOKS = ("post-commit", "pre-push", "post-merge", "post-checkout", "post-rewrite", "pre-commit")


class TriggerError(LoopcraftError):
    """A trigger cannot be used (bad cron string, unknown workflow, inputs that do not fit)."""


class Trigger(BaseModel):
    """One trigger: what fires it (``kind`` + ``spec``), the workflow it starts and how."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    spec: str  # the cron expression, the interval, the glob(s), the git hook or the webhook name
    workflow: str = ""
    name: str = ""
    inputs: dict[str, Any] = Field(default_factory=dict)
    overlap: Overlap = "queue"
    catchup: Catchup = "none"
    timezone: str = "UTC"
    debounce: float = 2.0
    secret_env: str | None = None  # webhooks: the environment variable holding the HMAC secret
    source: str = ""  # where it was declared (file or workflow), for messages

    @property
    def event(self) -> str:
        """The event name this trigger listens to."""
        if self.kind == "git":
            return f"git.{self.spec}"
        if self.kind == "webhook":
            return self.spec
        return f"{'schedule' if self.kind in ('cron', 'every') else 'files'}.{self.name}"

    def with_defaults(self, workflow: str, index: int) -> Trigger:
        """A copy with its workflow and (if unset) a name like ``review-change.git``."""
        name = self.name or (f"{workflow}.{self.kind}" + (f".{index}" if index else ""))
        return self.model_copy(update={"workflow": self.workflow or workflow, "name": name})


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_interval(text: str) -> float:
    """``"1s"``, ``"90"``, ``"5m"``, ``"2h"``, ``"1d"`` in seconds; raises :class:`TriggerError`."""
    match = _DURATION.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise TriggerError(f'bad interval {text!r}: use a positive number with s, m, h or d, e.g. "5m"')
    return float(match.group(1)) * _UNITS[match.group(2)]


def cron(expression: str, *, timezone: str = "UTC", **options: Any) -> Trigger:
    """Fire on a cron schedule (``"0 9 * * 1-5"``) in ``timezone`` (an IANA name)."""
    return Trigger(kind="cron", spec=expression, timezone=timezone, **options)


def every(interval: str, **options: Any) -> Trigger:
    """Fire every ``interval`` (``"30s"``, ``"5m"``, ``"1h"``)."""
    return Trigger(kind="every", spec=interval, **options)


def on_files(*globs: str, debounce: float = 2.0, **options: Any) -> Trigger:
    """Fire when files matching the globs (``"src/**/*.py"``) change, once per quiet ``debounce``."""
    return Trigger(kind="files", spec=" ".join(globs), debounce=debounce, **options)


def on_git(hook: str = "post-commit", **options: Any) -> Trigger:
    """Fire on a git hook (installed with ``loopcraft hooks install``)."""
    return Trigger(kind="git", spec=hook, **options)


def on_webhook(name: str, *, secret_env: str | None = None, **options: Any) -> Trigger:
    """Fire on ``POST /hooks/NAME`` (``serve --http``) or ``loopcraft event NAME``."""
    return Trigger(kind="webhook", spec=name, secret_env=secret_env, **options)
