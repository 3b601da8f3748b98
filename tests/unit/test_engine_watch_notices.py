"""Issue 16, items 6 and 7, the pure parts: reading a limit's reset time from a provider's headers,
telling a limit from other model failures, the chat's once-per-change lifecycle notices, the
watchdog's stall marks and heartbeat line, and a graph label with activity and a mark at 100 columns."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from loopcraft.config import Config, EngineConfig, NotifyConfig
from loopcraft.engine.budgets import RunBudget
from loopcraft.engine.events import EngineEvent, StageAdded, StageEvent, StageFlag, StageStatus
from loopcraft.engine.watchdog import Watchdog
from loopcraft.models.errors import ModelCallError, limit_hit, limit_reset
from loopcraft.models.types import Attempt
from loopcraft.tui.notices import RunNotices
from loopcraft.tui.panes.graph import GraphModel, node_label


class _Response:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class _RateLimited(Exception):
    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("429")
        self.response = _Response(headers)


NOW = 1_800_000_000.0


def test_retry_after_comes_first_then_the_exhausted_limits_reset() -> None:
    assert limit_reset(_RateLimited({"retry-after": "2"}), NOW) == 2.0
    openai = {
        "x-ratelimit-remaining-requests": "12",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    assert limit_reset(_RateLimited(openai), NOW) == 360.0  # the exhausted one, not the sooner one
    anthropic = {
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": "2027-01-15T08:00:30Z",
    }
    expected = time.mktime(time.strptime("2027-01-15 08:00:30", "%Y-%m-%d %H:%M:%S")) - time.timezone
    assert abs((limit_reset(_RateLimited(anthropic), NOW) or 0) - (expected - NOW)) < 1
    assert limit_reset(_RateLimited({"x-ratelimit-reset": str(NOW + 90)}), NOW) == 90.0
    assert limit_reset(_RateLimited({"x-ratelimit-reset-requests": "250ms"}), NOW) == 0.25
    assert limit_reset(_RateLimited({}), NOW) is None


def test_a_limit_is_every_model_of_the_chain_rate_limited() -> None:
    def tried(*attempts: tuple[str, str, float | None]) -> ModelCallError:
        return ModelCallError(
            [Attempt(m, False, error_class=c, error="429 slow down", reset_at=r) for m, c, r in attempts]  # type: ignore[arg-type]
        )

    hit = limit_hit(tried(("a/x", "rate_limit", NOW + 60), ("b/y", "rate_limit", NOW + 30)))
    assert hit is not None and hit.models == ["a/x", "b/y"] and hit.reset_at == NOW + 30
    assert hit.limit == "rate limit"
    none = limit_hit(tried(("a/x", "rate_limit", None)))
    assert none is not None and none.reset_at is None
    assert limit_hit(tried(("a/x", "rate_limit", NOW), ("b/y", "auth", None))) is None
    quota = ModelCallError([Attempt("a/x", False, error_class="rate_limit", error="insufficient_quota")])
    assert (found := limit_hit(quota)) is not None and found.limit == "usage limit"
    assert limit_hit(ValueError("x")) is None


@dataclass
class _Run:
    id: str
    status: str
    workflow: str = "goal"
    error: str | None = None


def test_lifecycle_notices_are_said_once_per_change() -> None:
    notices = RunNotices()
    rid = "20261203-120000-abc123"
    said = [
        notices.on_status(_Run(rid, status), before)
        for status, before in [
            ("pending", None),
            ("running", "pending"),
            ("running", "running"),
            ("paused", "running"),
            ("running", "paused"),
            ("awaiting_input", "running"),
            ("running", "awaiting_input"),
            ("budget_exceeded", "running"),
            ("budget_exceeded", "budget_exceeded"),  # the journal re-read: not again
            ("running", "budget_exceeded"),
            ("completed", "running"),
        ]
    ]
    texts = [s[0] for s in said if s is not None]
    assert texts == [
        "run goal abc123 started",
        "run goal abc123 paused: /workflow resume continues it",
        "run goal abc123 resumed",
        "run goal abc123 needs input: F4 answers it",
        "run goal abc123 budget_exceeded",
        "run goal abc123 resumed",
        "run goal abc123 completed",
    ]
    other = RunNotices()
    assert other.on_status(_Run("r-1", "completed"), "completed") is None  # ended before the app looked
    other.started_here("r-2")
    assert other.on_status(_Run("r-2", "pending"), None) is None  # the app said it already


@dataclass
class _Rt:
    config: Config
    run_id: str = "20261203-120000-abc123"
    budget: RunBudget = field(default_factory=lambda: RunBudget(None))
    live: dict[str, Any] = field(default_factory=dict)
    journal: Any = None
    workflow: Any = None
    paused: bool = False
    events: list[EngineEvent] = field(default_factory=list)

    def emit(self, event: EngineEvent) -> None:
        self.events.append(event)


def test_the_watchdog_marks_a_silent_stage_once_and_clears_it_on_activity() -> None:
    @dataclass
    class _Wf:
        name: str = "goal"

    rt = _Rt(
        Config(engine=EngineConfig(stall_after=10), notify=NotifyConfig(heartbeat_minutes=1)), workflow=_Wf()
    )
    dog = Watchdog(rt)
    key = "root/0:task:fix"
    rt.live[key] = object()
    dog.saw(StageAdded(rt.run_id, key, "fix"))
    dog.saw(StageStatus(rt.run_id, key, "running"))
    dog.saw(StageEvent(rt.run_id, key, "tool_call_start", {"name": "bash"}))
    start = dog.stages[key].last
    dog.tick(start + 5)
    assert not rt.events
    rt.paused = True
    dog.tick(start + 11)
    assert not rt.events  # a paused run is not stalled
    rt.paused = False
    dog.tick(start + 11)
    dog.tick(start + 12)
    flags = [e for e in rt.events if isinstance(e, StageFlag)]
    assert len(flags) == 1 and flags[0].flag == "stalled"
    assert flags[0].detail == "no model or tool activity for 11s; last: tool bash started"
    dog.saw(StageEvent(rt.run_id, key, "tool_call_end", {"name": "bash"}))
    cleared = [e for e in rt.events if isinstance(e, StageFlag)][-1]
    assert cleared.flag is None and "tool bash finished" in cleared.detail
    dog.saw(StageFlag(rt.run_id, key, "waiting", "rate limit on m", time.time() + 999))
    rt.events.clear()
    dog.tick(start + 100)  # waiting for a limit is not a stall; the heartbeat is due (60 s)
    assert [type(e).__name__ for e in rt.events] == ["Heartbeat"]
    line = rt.events[0].line  # type: ignore[attr-defined]
    assert line.startswith("run goal abc123 still running") and "fix turn 0 (waiting)" in line
    assert "last activity" in line and "tool bash finished" in line


def test_a_running_label_shows_its_mark_turns_and_last_activity_within_100_columns() -> None:
    graph = GraphModel("r1")
    key = "root/0:task:a-rather-long-stage-name-for-the-review"
    graph.add(key, "a-rather-long-stage-name-for-the-review")
    graph.set_status(key, "running", model="anthropic/claude-sonnet-4-5:high")
    graph.add_usage(key, 45_200, 0.1)
    node = graph.nodes[key]
    graph.saw_activity(key, "turn_end", type("E", (), {"turn": 7})())
    node.last_active = time.time() - 12
    graph.set_flag(key, "waiting", "rate limit on m", time.time() + 120)
    text = node_label(node, width=60).plain
    assert "waiting until" in text and "45.2k tok" in text and "turn 7" in text and "12s ago" in text
    essential = text.split(" · turn 7")[0]  # status, mark, time and tokens fit; the activity may be cut
    assert len(essential) <= 60 and "…" in essential, essential
    roomy = node_label(node, width=100).plain
    assert "a-rather-long-stage-name-for-the-review" in roomy and len(roomy.split(" · anthropic")[0]) <= 100
    graph.set_status(key, "completed")
    done = node_label(node).plain
    assert "waiting" not in done and "ago" not in done and "turn 7" in done
