"""reduce_verdicts and decide_turn: table-driven, every rule and every malformed input (fails closed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loopcraft import (
    CheckResult,
    Decision,
    Finding,
    Ledger,
    Verdict,
    decide_turn,
    dedupe,
    mean_at_least,
    parse_verdict,
    quorum,
    reduce_verdicts,
    unanimous,
)
from loopcraft.engine.steps.protocol import StepError

YES = Verdict(approve=True)
NO = Verdict(approve=False)
BLOCKER = Finding(title="Missing null check", priority=1, alignment="required", file="a.py")
BEYOND = Finding(title="Add caching", priority=0, alignment="beyond", file="a.py")
NOTE = Finding(title="Rename var", priority=3, file="b.py")


def no_with(*findings: Finding) -> Verdict:
    return Verdict(approve=False, findings=list(findings))


def scored(score: float | None, *findings: Finding) -> Verdict:
    return Verdict(approve=True, score=score, findings=list(findings))


CASES: list[tuple[str, list[Any], Any, int | None, str]] = [
    # name, verdicts, rule, expected, status
    ("quorum 2 of 3 approve", [YES, YES, NO], quorum(2), None, "complete"),
    ("quorum 1 of 3 approve", [YES, NO, NO], quorum(2), None, "continue"),
    ("quorum all approve", [YES, YES, YES], quorum(2), None, "complete"),
    ("quorum malformed json counts as no", [YES, "{not json", NO], quorum(2), None, "continue"),
    ("quorum json text that parses", [YES, json.dumps({"approve": True}), NO], quorum(2), None, "complete"),
    ("quorum dict that parses", [YES, {"approve": True}], quorum(2), None, "complete"),
    ("quorum wrong-shaped dict", [YES, {"approve": "maybe"}], quorum(2), None, "continue"),
    ("quorum missing approve field", [YES, {"findings": []}], quorum(2), None, "continue"),
    (
        "quorum bad priority",
        [YES, {"approve": True, "findings": [{"title": "x", "priority": 9}]}],
        quorum(2),
        None,
        "continue",
    ),
    (
        "quorum reviewer error never approves",
        [YES, Verdict(approve=True, reviewer_error="timeout")],
        quorum(2),
        None,
        "continue",
    ),
    ("quorum reviewer exception", [YES, StepError("reviewer timed out")], quorum(2), None, "continue"),
    ("quorum missing verdict (None)", [YES, None], quorum(2), None, "continue"),
    ("quorum fewer verdicts than expected", [YES], quorum(2), 3, "continue"),
    ("quorum empty", [], quorum(1), None, "continue"),
    ("quorum non-verdict object", [YES, 42], quorum(2), None, "continue"),
    (
        "quorum blocker without veto still completes",
        [YES, YES, no_with(BLOCKER)],
        quorum(2),
        None,
        "complete",
    ),
    ("quorum veto on a blocker", [YES, YES, no_with(BLOCKER)], quorum(2, veto=True), None, "continue"),
    (
        "quorum veto ignores beyond-the-objective",
        [YES, YES, no_with(BEYOND)],
        quorum(2, veto=True),
        None,
        "complete",
    ),
    ("quorum veto ignores notes", [YES, YES, no_with(NOTE)], quorum(2, veto=True), None, "complete"),
    ("unanimous all approve", [YES, YES], unanimous(), None, "complete"),
    ("unanimous one rejects", [YES, NO], unanimous(), None, "continue"),
    ("unanimous one missing", [YES], unanimous(), 2, "continue"),
    ("unanimous one malformed", [YES, "garbage"], unanimous(), None, "continue"),
    (
        "unanimous reviewer error",
        [YES, Verdict(approve=True, reviewer_error="crashed")],
        unanimous(),
        None,
        "continue",
    ),
    (
        "unanimous veto",
        [YES, Verdict(approve=True, findings=[BLOCKER])],
        unanimous(veto=True),
        None,
        "continue",
    ),
    ("mean at least passes", [scored(15), scored(14), scored(16)], mean_at_least(14), None, "complete"),
    ("mean below threshold", [scored(10), scored(14), scored(16)], mean_at_least(14), None, "continue"),
    ("mean a missing score fails", [scored(20), scored(None)], mean_at_least(14), None, "continue"),
    ("mean a score out of scale fails", [scored(20), scored(25)], mean_at_least(14), None, "continue"),
    ("mean a score below scale fails", [scored(20), scored(0)], mean_at_least(14), None, "continue"),
    ("mean malformed verdict fails", [scored(20), "nope"], mean_at_least(14), None, "continue"),
    ("mean missing verifier fails", [scored(20), scored(20)], mean_at_least(14), 3, "continue"),
    ("mean vetoed whatever the mean", [scored(20), scored(20, BLOCKER)], mean_at_least(14), None, "continue"),
    (
        "mean veto off lets a blocker pass",
        [scored(20), scored(20, BLOCKER)],
        mean_at_least(14, veto=False),
        None,
        "complete",
    ),
    (
        "mean reviewer error fails",
        [scored(20), Verdict(approve=True, score=20, reviewer_error="x")],
        mean_at_least(14),
        None,
        "continue",
    ),
]


@pytest.mark.parametrize(
    ("verdicts", "rule", "expected", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_reduce_verdicts(verdicts: list[Any], rule: Any, expected: int | None, status: str) -> None:
    decision = reduce_verdicts(verdicts, rule, expected=expected)
    assert decision.status == status, decision.reason
    assert decision.reason


def test_reduce_is_deterministic_and_names_the_problems() -> None:
    verdicts = [YES, "{bad", Verdict(approve=True, reviewer_error="timed out")]
    first = reduce_verdicts(verdicts, quorum(2))
    assert first == reduce_verdicts(verdicts, quorum(2))
    assert first.approvals == 1 and first.reviewers == 3
    assert "reviewer 2: malformed verdict" in first.reason
    assert "reviewer 3: reviewer error: timed out" in first.reason


def test_blocking_findings_are_deduplicated_by_file_and_normalised_title() -> None:
    same = Finding(title="  missing NULL-check ", priority=0, file="a.py")
    other_file = Finding(title="Missing null check", priority=1, file="b.py")
    decision = reduce_verdicts(
        [no_with(BLOCKER), no_with(same, other_file), no_with(BEYOND, NOTE)], quorum(2)
    )
    assert [(f.file, f.priority) for f in decision.blocking] == [("a.py", 0), ("b.py", 1)]
    assert decision.blocker == BLOCKER.key  # raised by two reviewers: the plurality blocker
    assert len(dedupe([BLOCKER, same, BLOCKER])) == 1


def test_parse_verdict_from_a_stage_like_result() -> None:
    class Result:
        structured = None
        text = json.dumps({"approve": True, "findings": [{"title": "t"}]})

    verdict, problem = parse_verdict(Result())
    assert problem is None and verdict is not None and verdict.approve


def _review(status: str, blocker: str | None = None) -> Decision:
    blocking = [Finding(title=blocker, priority=1)] if blocker else []
    key = blocking[0].key if blocking else None
    return Decision(status=status, reason="r", blocking=blocking, blocker=key)  # type: ignore[arg-type]


PASS = CheckResult(name="tests", cmd="pytest", passed=True, code=0)
FAIL = CheckResult(name="tests", cmd="pytest", passed=False, code=1)
TIMEOUT = CheckResult(name="tests", cmd="pytest", passed=False, code=None, timed_out=True)

TURNS: list[tuple[str, dict[str, Any], str, str]] = [
    ("approved and check passes", {"review": _review("complete"), "check": PASS}, "complete", ""),
    ("approved, no check", {"review": _review("complete")}, "complete", ""),
    (
        "approved but check fails",
        {"review": _review("complete"), "check": FAIL},
        "continue",
        "failed (exit 1)",
    ),
    (
        "approved but check timed out",
        {"review": _review("complete"), "check": TIMEOUT},
        "continue",
        "timed out",
    ),
    ("rejected, turns left", {"review": _review("continue"), "turn": 1}, "continue", ""),
    ("cap reached", {"review": _review("continue"), "turn": 4}, "needs_human", "turn cap (4)"),
    (
        "check fails at the cap",
        {"review": _review("complete"), "check": FAIL, "turn": 4},
        "needs_human",
        "failed",
    ),
    ("no change", {"review": _review("complete"), "changed": False}, "blocked", "no progress"),
    (
        "same blocker three turns",
        {"review": _review("continue", "X"), "turn": 3, "history": [_review("continue", "X")] * 2},
        "blocked",
        "same blocker for 3 turns: X",
    ),
    (
        "blocker changed",
        {
            "review": _review("continue", "X"),
            "turn": 3,
            "history": [_review("continue", "Y"), _review("continue", "X")],
        },
        "continue",
        "",
    ),
    (
        "same blocker min(3, max_turns=2)",
        {
            "review": _review("continue", "X"),
            "turn": 2,
            "max_turns": 2,
            "history": [_review("continue", "X")],
        },
        "blocked",
        "same blocker for 2 turns",
    ),
]


@pytest.mark.parametrize(("facts", "status", "says"), [t[1:] for t in TURNS], ids=[t[0] for t in TURNS])
def test_decide_turn(facts: dict[str, Any], status: str, says: str) -> None:
    facts = {"turn": 1, "max_turns": 4, **facts}
    decision = decide_turn(facts.pop("review"), **facts)
    assert decision.status == status
    assert says in decision.reason


def test_the_ledger_keeps_each_event_once_across_instances(tmp_path: Any) -> None:
    path = tmp_path / "ledger.json"
    first = Ledger(path)
    assert first.record("turn-1:check", "check", PASS)
    first.set(status="running", turn=1)
    again = Ledger(path)  # a resumed run: replays its workflow, records the same events again
    assert not again.record("turn-1:check", "check", PASS)
    assert again.record("turn-1:decision", "decision", _review("continue"))
    data = json.loads(path.read_text())
    assert [e["key"] for e in data["events"]] == ["turn-1:check", "turn-1:decision"]
    assert data["state"] == {"status": "running", "turn": 1}
    assert not list(tmp_path.glob(".*.tmp"))
