"""``ctx.score`` as a durable step (once per name, replayed on resume) and ``stats`` over seeded
runs in a real SQLite journal, checked against hand-computed rates, ICIR and percentiles."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from loopcraft import Context, workflow
from loopcraft.engine.journal import Journal, StepRow
from loopcraft.engine.stats import journal_stats, parse_age, percentile, stats_lines
from loopcraft.errors import LoopcraftError
from tests.engine_fakes import open_engine

FLAGS: dict[str, bool] = {}
SCORED: list[float] = []


@workflow(description="scores, then fails until the flag is set", name="scoring")
async def scoring(ctx: Context) -> float:
    value = await ctx.score("quality", 2.5)
    SCORED.append(value)

    if not FLAGS.get("go"):  # stands in for a crash after the score: the resume replays it
        raise RuntimeError("not yet")
    await ctx.tool("after", lambda: "ok")
    return value


@workflow(description="scores one name twice", name="twice")
async def twice(ctx: Context) -> None:
    await ctx.score("x", 1)
    await ctx.score("x", 2)


async def test_score_is_durable_once_and_replayed(git_repo: Path) -> None:
    FLAGS.clear()
    SCORED.clear()
    engine = await open_engine(git_repo)
    engine.register(scoring, twice)
    try:
        first = await engine.run("scoring", {})
        assert first.status == "failed"
        FLAGS["go"] = True
        again = await engine.resume(first.id)
        assert again.status == "completed"
        scores = [r for r in await engine.journal.load_steps(first.id) if r.kind == "score"]
        assert [(r.name, r.output, r.status) for r in scores] == [("quality", 2.5, "completed")]
        assert SCORED == [2.5, 2.5]  # the replay returns the recorded value
        dup = await engine.run("twice", {})
        assert dup.status == "failed"
        assert "already recorded" in (dup.error or "")
    finally:
        await engine.close()


async def _seed(
    journal: Journal, run_id: str, status: str, *, cost: float, seconds: float, **extra: object
) -> None:
    now = time.time() - 3600
    await journal.create_run(run_id, "wf", {})
    usage = {"input_tokens": 100, "output_tokens": 10, "cache_read_tokens": 25, "cost_usd": cost}
    await journal.update_run(
        run_id,
        status=status,
        created=now,
        finished=now + seconds if status != "running" else None,
        usage=usage,
        **extra,
    )


def _step(run_id: str, pos: int, kind: str, name: str, status: str, **fields: object) -> StepRow:
    return StepRow(run_id, f"root/{pos}:{kind}:{name}", f"root/{pos}", kind, name, status, seq=pos, **fields)  # type: ignore[arg-type]


async def test_stats_match_hand_computed_values(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "j.db")
    try:
        await _seed(journal, "r1", "completed", cost=1.0, seconds=10)
        await _seed(journal, "r2", "completed", cost=2.0, seconds=20)
        await _seed(journal, "r3", "failed", cost=3.0, seconds=30, error="stage worker failed")
        await _seed(journal, "r4", "budget_exceeded", cost=4.0, seconds=40, error="budget tokens=100 reached")
        await _seed(journal, "r5", "running", cost=9.0, seconds=0)
        await journal.create_run("old", "wf", {})
        await journal.update_run(
            "old", status="completed", created=time.time() - 30 * 86400, finished=time.time()
        )
        for rid, turns in (("r1", 1.0), ("r2", 3.0)):
            await journal.start_step(_step(rid, 0, "score", "turns", "completed", output=turns))
        for index, rid in enumerate(("r1", "r2", "r3", "r4")):
            usage = {"input_tokens": 100, "output_tokens": 10, "cost_usd": float(index + 1)}
            status = "failed" if rid == "r3" else "completed"
            error = {"type": "StageFailure", "message": "boom"} if rid == "r3" else None
            await journal.start_step(
                _step(
                    rid,
                    1,
                    "task",
                    "worker",
                    status,
                    usage=usage,
                    error=error,
                    started=0.0,
                    finished=float(index + 1),
                )
            )

        [entry] = await journal_stats(journal, workflow="wf", since=7 * 86400)
        assert (entry["runs"], entry["live"], entry["completed"]) == (4, 1, 2)
        assert entry["completion_rate"] == 0.5
        done = entry["scores"]["completed"]  # values 1, 1, 0, 0
        assert done["mean"] == 0.5
        assert done["std"] == pytest.approx(math.sqrt(1 / 3))
        assert done["icir"] == pytest.approx(0.5 / math.sqrt(1 / 3))
        turns = entry["scores"]["turns"]  # values 1, 3
        assert (turns["n"], turns["mean"], turns["std"]) == (2, 2.0, pytest.approx(math.sqrt(2)))
        assert turns["icir"] == pytest.approx(2 / math.sqrt(2))
        assert entry["per_run"]["cost"] == {"p50": 2.5, "p95": pytest.approx(3.85)}
        assert entry["per_completed_run"]["cost"] == {"p50": 1.5, "p95": pytest.approx(1.95)}
        assert entry["per_run"]["tokens"]["p50"] == 110
        assert entry["duration"] == {"p50": pytest.approx(25.0), "p95": pytest.approx(38.5)}
        assert entry["cache_read_share"] == 0.25
        assert entry["ended"] == {"budget_exceeded": {"tokens": 1}, "failed": {"StageFailure": 1}}
        [worker] = entry["stages"]
        assert (worker["stage"], worker["runs"], worker["failed"], worker["cost_total"]) == (
            "worker",
            4,
            1,
            10.0,
        )
        assert worker["duration"]["p50"] == 2.5 and worker["cache_read_share"] == 0.0
        assert entry["most_expensive"] == ["worker"] and entry["most_failing"] == ["worker"]
        [all_time] = await journal_stats(journal)
        assert all_time["runs"] == 5  # the 30-day-old run counts without --since
        text = "\n".join(stats_lines([entry]))
        assert "wf: 4 runs (1 still running), completed 2 (50%)" in text
    finally:
        await journal.close()


def test_percentile_and_age() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert parse_age("7d") == 7 * 86400 and parse_age("90s") == 90
    with pytest.raises(LoopcraftError, match="bad --since"):
        parse_age("soon")


def test_fork_reuses_earlier_steps_but_not_the_groups_holding_the_stage() -> None:
    from loopcraft.engine.fork import reused_steps

    turn = "root/1:workflow:turn-1"
    steps = [
        _step("r", 0, "tool", "worktree", "completed"),
        StepRow("r", turn, "root/1", "workflow", "turn-1", "completed", seq=1),
        StepRow("r", f"{turn}/0:task:worker", f"{turn}/0", "task", "worker", "completed", seq=2),
        StepRow("r", f"{turn}/1:task:flaky", f"{turn}/1", "task", "flaky", "failed", seq=3),
        StepRow("r", f"{turn}/2:task:review", f"{turn}/2", "task", "review", "completed", seq=4),
        StepRow("r", "root/2:score:turns", "root/2", "score", "turns", "completed", seq=5),
    ]
    kept = reused_steps(steps, steps[4])
    assert [s.name for s in kept] == ["worktree", "worker"]  # not turn-1 (holds it), not the failed step


def test_eval_cases_file_errors_name_the_line(tmp_path: Path) -> None:
    from loopcraft.engine.evals import EvalError, read_cases

    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"inputs": {"topic": "a"}, "check": "true"}\n{"topic": "b"}\n\n[1]\n')
    with pytest.raises(EvalError, match=r"cases.jsonl:4: bad case"):
        read_cases(cases)
    cases.write_text('{"inputs": {"topic": "a"}}\n{"name": "two", "topic": "b", "check": "true"}\n')
    first, second = read_cases(cases)
    assert (first.name, first.inputs, first.check) == ("case-1", {"topic": "a"}, None)
    assert (second.name, second.inputs, second.check) == ("two", {"topic": "b"}, "true")
    with pytest.raises(EvalError, match="no cases file"):
        read_cases(tmp_path / "missing.jsonl")


def test_trend_cuts_the_span_into_slices_oldest_first() -> None:
    from loopcraft.engine.stats import RunFacts, trend
    from loopcraft.models.types import Usage

    def run(rid: str, created: float, status: str, cost: float) -> RunFacts:
        return RunFacts(rid, "wf", status, None, created, 1.0, Usage(cost_usd=cost))

    runs = [run("a", 0, "completed", 1.0), run("b", 10, "failed", 3.0), run("c", 40, "completed", 2.0)]
    t = trend(runs, buckets=4)  # slices of 10 s: [0, 10) [10, 20) [20, 30) [30, 40]
    assert (t["start"], t["step"]) == (0, 10.0)
    assert t["cost"] == [1.0, 3.0, None, 2.0]
    assert t["completion"] == [1.0, 0.0, None, 1.0]
    assert trend([])["cost"] == [] and trend(runs[:1])["completion"] == [1.0]
