"""Schedules: a cron trigger's next fire times are croniter's in the trigger's time zone
(DST included); an interval's slots are aligned; placeholders fill from an event."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from loopcraft import cron, every
from loopcraft.triggers.load import fill_inputs
from loopcraft.triggers.schedule import fires_between, last_fire_before, next_fire
from loopcraft.triggers.spec import TriggerError, parse_interval

CASES = [
    ("0 9 * * 1-5", "UTC", "2026-03-06T18:00:00"),
    ("*/15 * * * *", "UTC", "2026-01-01T00:07:00"),
    ("0 9 * * 1-5", "Europe/Berlin", "2026-03-27T10:00:00"),  # across the spring DST change
    ("30 2 * * *", "America/New_York", "2026-03-07T12:00:00"),  # 02:30 does not exist on 8 March
    ("0 0 1 * *", "Asia/Kolkata", "2026-12-15T00:00:00"),
    ("0 */6 * * *", "Australia/Sydney", "2026-04-04T12:00:00"),  # across the autumn DST change
]


@pytest.mark.parametrize(("expression", "zone", "start"), CASES)
def test_cron_next_fire_times_match_croniter_in_the_time_zone(expression: str, zone: str, start: str) -> None:
    tz = ZoneInfo(zone)
    begin = datetime.fromisoformat(start).replace(tzinfo=tz).timestamp()
    trig = cron(expression, timezone=zone, name="t", workflow="w")
    expected = croniter(expression, datetime.fromtimestamp(begin, tz))
    want = [expected.get_next(float) for _ in range(8)]
    got = fires_between(trig, begin, want[-1])
    assert got == want
    assert next_fire(trig, begin) == want[0]
    assert last_fire_before(trig, begin, want[3]) == want[3]
    assert last_fire_before(trig, want[3], want[3] + 1) is None


def test_every_slots_are_aligned_so_every_process_computes_the_same_ones() -> None:
    trig = every("5m", name="t", workflow="w")
    assert next_fire(trig, 1000.0) == 1200.0
    assert fires_between(trig, 1000.0, 2100.0) == [1200.0, 1500.0, 1800.0, 2100.0]
    assert parse_interval("90") == 90 and parse_interval("1d") == 86400
    with pytest.raises(TriggerError, match="bad interval"):
        parse_interval("0s")


def test_placeholders_fill_from_the_event_and_a_missing_one_is_named() -> None:
    context = {"commit": "abc", "paths": ["a.py", "b.py"], "payload": {"job": {"id": 7}}}
    filled = fill_inputs(
        {"target": "{commit}~1..{commit}", "files": "{paths}", "job": "{payload.job.id}", "n": 3},
        context,
        text_fields=frozenset({"files"}),
    )
    assert filled == {"target": "abc~1..abc", "files": "a.py b.py", "job": 7, "n": 3}
    with pytest.raises(TriggerError, match=r"placeholder \{payload.nope\}"):
        fill_inputs({"x": "{payload.nope}"}, context)
