"""What each stage of a run was last doing: its last agent event (when, and in words), its turn count,
and its mark (``stalled``, or ``waiting`` for a rate or usage limit to reset), read back from the
journal's events for ``show`` and the app, and folded from live events by the watchdog.

The words for an event (:func:`describe`) are shared by every view, so the graph, the chat and
``show`` say the same thing (``tool bash started``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopcraft.engine.graph import Graph
    from loopcraft.engine.journal import Journal


@dataclass
class Activity:
    """One stage's activity as the journal's events tell it."""

    last: float | None = None  # epoch seconds of its last agent event
    turns: int = 0  # the number of its latest model turn (started or answered)
    flag: str | None = None  # "stalled" | "waiting" | None
    detail: str = ""
    until: float | None = None  # waiting: when the limit resets (the wait's deadline)


def describe(kind: str, event: Any) -> str:
    """An agent event in a few words: ``model call (turn 3)``, ``tool bash started``."""

    def get(name: str) -> Any:
        return event.get(name) if isinstance(event, dict) else getattr(event, name, None)

    turn, name = get("turn"), get("name")
    if kind == "turn_start":
        return f"model call (turn {turn})"
    if kind == "text_delta":
        return f"model streaming (turn {turn})"
    if kind in ("turn_end", "usage"):
        return f"model answered (turn {turn})"
    if kind == "tool_call_start":
        return f"tool {name} started"
    if kind == "tool_call_end":
        return f"tool {name} finished"
    return kind.replace("_", " ")


def ago(seconds: float) -> str:
    """``12s ago``, ``4m ago``, ``2h ago``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    return f"{int(seconds // 3600)}h ago"


def clock(moment: float) -> str:
    """A moment as the local ``HH:MM`` (``HH:MM:SS`` when it is less than ten minutes away)."""
    near = abs(moment - time.time()) < 600
    return time.strftime("%H:%M:%S" if near else "%H:%M", time.localtime(moment))


def flag_text(flag: str | None, detail: str, until: float | None) -> str:
    """A mark as one line: ``waiting until 14:05 (rate limit on …)``, ``stalled: no activity …``."""
    if flag == "waiting":
        return f"waiting until {clock(until)}" + (f" ({detail})" if detail else "") if until else "waiting"
    if flag == "stalled":
        return f"stalled: {detail}" if detail else "stalled"
    return ""


_ACTIVITY_SQL = (
    "SELECT json_extract(payload, '$.key'), MAX(ts), MAX(CASE WHEN json_extract(payload, '$.kind') "
    "IN ('turn_start', 'turn_end') THEN json_extract(payload, '$.event.turn') END) FROM events "
    "WHERE run_id = ? AND type = 'stage_event' GROUP BY 1"
)
_FLAGS_SQL = "SELECT payload FROM events WHERE run_id = ? AND type = 'stage_flag' ORDER BY seq"


async def load_activity(journal: Journal, run_id: str) -> dict[str, Activity]:
    """Every stage's activity from the run's journaled events (two queries)."""
    found: dict[str, Activity] = {}
    for key, last, turns in await journal.select(_ACTIVITY_SQL, (run_id,)):
        if isinstance(key, str):
            found[key] = Activity(last=last, turns=int(turns or 0))
    for (payload,) in await journal.select(_FLAGS_SQL, (run_id,)):
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        key = data.get("key") if isinstance(data, dict) else None
        if not isinstance(key, str):
            continue
        item = found.setdefault(key, Activity())
        item.flag, item.detail, item.until = data.get("flag"), data.get("detail") or "", data.get("until")
    return found


def apply_activity(graph: Graph, activity: dict[str, Activity]) -> Graph:
    """Copy each stage's activity onto its graph node; a mark shows on running nodes only."""
    for node in graph.walk():
        item = activity.get(node.key)
        if item is None:
            continue
        node.turns, node.last_active = item.turns, item.last
        if node.status == "running" and item.flag:
            node.flag, node.flag_detail, node.until = item.flag, item.detail, item.until
    return graph


async def load_waits(journal: Journal, run_id: str) -> dict[str, tuple[float, str]]:
    """The limit waits a stage was in when its last execution stopped: stage key → (deadline, detail)."""
    waits: dict[str, tuple[float, str]] = {}
    for (payload,) in await journal.select(_FLAGS_SQL, (run_id,)):
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("key"), str):
            continue
        if data.get("flag") == "waiting" and isinstance(data.get("until"), int | float):
            waits[data["key"]] = (float(data["until"]), str(data.get("detail") or ""))
        elif data.get("flag") != "stalled":  # cleared (a stall's own marks never end a wait)
            waits.pop(data["key"], None)
    return waits
