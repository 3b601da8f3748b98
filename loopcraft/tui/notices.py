"""The chat's lifecycle notices about runs: started, resumed, paused, needs input and how it ended,
each said once per change of the run's status however the app notices it (an engine event or the
journal re-read for another process's run); plus the one-line notices of a stage's mark (stalled,
waiting for a limit). Budget notices and heartbeats are the engine's own lines."""

from __future__ import annotations

from typing import Any

from loopcraft.engine.activity import clock
from loopcraft.engine.names import short_id
from loopcraft.engine.results import FINAL_STATES

_RESUMABLE = FINAL_STATES | {"paused", "crashed"}  # a run that goes running from one of these resumed


class RunNotices:
    """Which notice a run's new status gives (None: nothing to say), remembering what was said."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}  # run id → the last status a notice was decided for

    def started_here(self, run_id: str) -> None:
        """The app said it started this run itself: no second "started" notice."""
        self._seen[run_id] = "running"

    def on_status(self, run: Any, before: str | None) -> tuple[str, str] | None:
        """The notice (text, kind) for ``run`` now in ``run.status``, ``before`` its last known
        status (None: first seen); each change is decided once."""
        status = "running" if run.status == "pending" else run.status
        last = self._seen.get(run.id)
        if last == status:
            return None
        self._seen[run.id] = status
        name = f"run {run.workflow} {short_id(run.id)}"
        if status in FINAL_STATES:
            if last is None and before in FINAL_STATES:
                return None  # it had ended before the app looked
            reason = f": {run.error}" if run.error else ""
            return f"{name} {run.status}{reason}", "info" if status == "completed" else "warning"
        previous = last or before
        if status == "running":
            if previous is None:
                return f"{name} started", "info"
            if previous in _RESUMABLE:
                return f"{name} resumed", "info"
            return None  # e.g. a gate answered: it just goes on
        if status == "paused":
            return f"{name} paused: /workflow resume continues it", "warning"
        if status == "awaiting_input":
            return f"{name} needs input: F4 answers it", "warning"
        return None


def flag_notice(stage: str, event: Any) -> tuple[str, str]:
    """The notice of a stage's mark (a ``StageFlag``): stalled, waiting until a reset, or cleared."""
    if event.flag == "stalled":
        return f"stage {stage} stalled: {event.detail}", "warning"
    if event.flag == "waiting" and event.until is not None:
        return (
            f"stage {stage} waiting until {clock(event.until)} ({event.detail}); it continues on its own",
            "warning",
        )
    return f"stage {stage}: {event.detail or 'active again'}", "info"
