"""Fire times: a cron expression's (croniter, in the trigger's IANA time zone) or an interval's
(aligned to multiples of it since the epoch, so every process computes the same slots)."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from loopcraft.triggers.spec import Trigger, parse_interval

MAX_CATCHUP = 1000


def next_fire(trig: Trigger, after: float) -> float:
    """The first fire time strictly after ``after`` (epoch seconds)."""
    if trig.kind == "every":
        interval = parse_interval(trig.spec)
        return (math.floor(after / interval) + 1) * interval
    from croniter import croniter

    start = datetime.fromtimestamp(after, ZoneInfo(trig.timezone))
    return float(croniter(trig.spec, start).get_next(float))


def fires_between(trig: Trigger, after: float, until: float, limit: int = MAX_CATCHUP) -> list[float]:
    """The fire times in ``(after, until]``, at most ``limit`` (the earliest ones)."""
    times: list[float] = []
    when = next_fire(trig, after)
    while when <= until and len(times) < limit:
        times.append(when)
        when = next_fire(trig, when)
    return times


def last_fire_before(trig: Trigger, after: float, until: float) -> float | None:
    """The latest fire time in ``(after, until]``, if any (``catchup = "one"``)."""
    if trig.kind == "every":
        interval = parse_interval(trig.spec)
        when = math.floor(until / interval) * interval
    else:
        from croniter import croniter

        start = datetime.fromtimestamp(until, ZoneInfo(trig.timezone))
        when = float(croniter(trig.spec, start).get_prev(float))
        if next_fire(trig, when) <= until:  # ``until`` is itself a fire time
            when = next_fire(trig, when)
    return when if after < when <= until else None
