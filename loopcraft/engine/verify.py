"""The public verification API: checks, verdicts, their deterministic reduction, and the ledger.

Everything here is pure (no model, no journal): a loop's decision is a function of recorded facts
(check results, reviewers' verdicts, the decisions of earlier turns), so a resumed run decides
exactly what the first one would have. Verification fails closed: a malformed verdict, a reviewer
that failed or timed out, or a missing one never approves.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from loopcraft.engine.artifacts import write_durably

Alignment = Literal["required", "consistent", "beyond", "contradicts"]
DecisionStatus = Literal["complete", "continue", "blocked", "needs_human"]
BLOCKING_ALIGNMENTS = frozenset({"required", "consistent"})
BLOCKING_PRIORITY = 1  # priority 0 (veto/critical) and 1 (blocking) block; 2 and 3 are notes
_NON_WORD = re.compile(r"[^a-z0-9]+")


class Finding(BaseModel):
    """One reviewer finding. ``priority`` 0 is the most severe (0 veto, 1 blocking, 2–3 notes);
    ``alignment`` says how it relates to the objective: only ``required`` or ``consistent``
    findings can block, ``beyond`` (extra scope) and ``contradicts`` never do."""

    title: str = Field(min_length=1)
    body: str = ""
    priority: int = Field(default=2, ge=0, le=3)
    alignment: Alignment = "required"
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    file: str | None = None
    lines: str | None = None

    @property
    def blocking(self) -> bool:
        return self.priority <= BLOCKING_PRIORITY and self.alignment in BLOCKING_ALIGNMENTS

    @property
    def key(self) -> str:
        """The de-duplication key: the file and the normalised title."""
        return f"{self.file or ''}::{_NON_WORD.sub(' ', self.title.lower()).strip()}"


class Verdict(BaseModel):
    """A reviewer's structured verdict (the ``schema`` reviewers' tasks return)."""

    approve: bool
    findings: list[Finding] = Field(default_factory=list)
    validation_gaps: list[str] = Field(default_factory=list)
    reviewer_error: str | None = None
    score: float | None = None  # for scored verifiers (``mean_at_least``)
    summary: str = ""


class CheckResult(BaseModel):
    """The outcome of ``ctx.check``: an external command run in a workspace. A timeout is a failure."""

    name: str = ""
    cmd: str = ""
    passed: bool
    code: int | None  # None when the command timed out (killed)
    output: str = ""  # the tail of stdout+stderr
    artifact: str | None = None  # the full output's file
    duration: float = 0.0
    timed_out: bool = False


class Decision(BaseModel):
    """What a loop does next, and why, with the de-duplicated blocking findings."""

    status: DecisionStatus
    reason: str
    approvals: int = 0
    reviewers: int = 0
    blocking: list[Finding] = Field(default_factory=list)
    blocker: str | None = None  # the plurality blocker's key (for the repeated-blocker rule)
    mean: float | None = None


@dataclass(frozen=True)
class Rule:
    """How verdicts combine: ``quorum`` (k approvals), ``unanimous``, or ``mean_at_least`` (scores)."""

    kind: Literal["quorum", "unanimous", "mean"]
    k: int = 0
    threshold: float = 0.0
    scale: tuple[float, float] = (1.0, 20.0)
    veto: bool = False

    def describe(self) -> str:
        if self.kind == "quorum":
            return f"quorum {self.k}"
        if self.kind == "unanimous":
            return "unanimous"
        return f"mean ≥ {self.threshold:g}"


def quorum(k: int, *, veto: bool = False) -> Rule:
    """Complete when at least ``k`` verdicts approve (and, with ``veto``, no verdict has a blocker)."""
    if k < 1:
        raise ValueError(f"quorum({k}): k must be at least 1")
    return Rule("quorum", k=k, veto=veto)


def unanimous(*, veto: bool = False) -> Rule:
    """Complete when every expected verdict approves."""
    return Rule("unanimous", veto=veto)


def mean_at_least(threshold: float, *, scale: tuple[float, float] = (1.0, 20.0), veto: bool = True) -> Rule:
    """Complete when every verdict has a valid score within ``scale`` and their mean is at least
    ``threshold`` (and, with ``veto`` — the default — nothing blocking was found)."""
    return Rule("mean", threshold=threshold, scale=scale, veto=veto)


def parse_verdict(raw: Any) -> tuple[Verdict | None, str | None]:
    """A verdict from what a reviewer returned (a Verdict, a dict, JSON text, a stage result with
    ``structured``/``text``, an exception, None); ``(None, why)`` when it does not parse."""
    if raw is None:
        return None, "missing verdict"
    if isinstance(raw, BaseException):
        return None, f"reviewer failed: {(str(raw).splitlines() or [type(raw).__name__])[0]}"
    if isinstance(raw, Verdict):
        return raw, None
    structured = getattr(raw, "structured", None)
    if structured is not None:
        return parse_verdict(structured if not isinstance(structured, BaseModel) else structured.model_dump())
    if hasattr(raw, "text") and not isinstance(raw, str | dict):
        return parse_verdict(raw.text)
    try:
        if isinstance(raw, str):
            return Verdict.model_validate_json(raw), None
        if isinstance(raw, BaseModel):
            raw = raw.model_dump()
        return Verdict.model_validate(raw), None
    except (ValidationError, ValueError, TypeError) as exc:
        first = (str(exc).splitlines() or ["invalid"])[0]
        return None, f"malformed verdict ({first})"


async def as_verdict(call: Awaitable[Any]) -> Verdict:
    """Await a reviewer's call (e.g. ``ctx.task(..., schema=Verdict)``) and return its verdict; a
    reviewer that fails or answers something malformed becomes a rejecting ``Verdict`` with
    ``reviewer_error`` instead of failing the loop. An error that ends the run (budget exceeded,
    blocked) is raised as it is."""
    try:
        raw = await call
    except Exception as exc:
        if getattr(exc, "run_status", "failed") != "failed":
            raise
        raw = exc
    verdict, problem = parse_verdict(raw)
    if verdict is None:
        return Verdict(approve=False, reviewer_error=problem or "no verdict")
    return verdict


def dedupe(findings: Sequence[Finding]) -> list[Finding]:
    """Findings de-duplicated by (file, normalised title): the most severe copy kept, first-seen order."""
    kept: dict[str, Finding] = {}
    for finding in findings:
        seen = kept.get(finding.key)
        if seen is None or finding.priority < seen.priority:
            kept[finding.key] = finding
    return sorted(kept.values(), key=lambda f: f.priority)


def reduce_verdicts(verdicts: Sequence[Any], rule: Rule, *, expected: int | None = None) -> Decision:
    """Reduce reviewers' verdicts to a :class:`Decision` (``complete`` or ``continue``), deterministically.

    ``expected`` is how many verdicts there should be: missing ones count as not approving. An
    approval counts only if the verdict parses, approves and reports no reviewer error."""
    total = max(expected or 0, len(verdicts))
    parsed: list[Verdict] = []
    problems: list[str] = []
    for index, raw in enumerate(list(verdicts) + [None] * (total - len(verdicts))):
        verdict, problem = parse_verdict(raw)
        if verdict is not None and verdict.reviewer_error:
            problem = f"reviewer error: {verdict.reviewer_error}"
        if problem is not None:
            problems.append(f"reviewer {index + 1}: {problem}")
        if verdict is not None:
            parsed.append(verdict)
    valid = [v for v in parsed if not v.reviewer_error]
    approvals = sum(1 for v in valid if v.approve)
    blocking = dedupe([f for v in valid for f in v.findings if f.blocking])
    counts = Counter(key for v in valid for key in {f.key for f in v.findings if f.blocking})
    order = {f.key: i for i, f in enumerate(blocking)}
    blocker = min(counts, key=lambda k: (-counts[k], order[k])) if counts else None

    def decision(status: DecisionStatus, reason: str, mean: float | None = None) -> Decision:
        return Decision(
            status=status,
            reason=reason,
            approvals=approvals,
            reviewers=total,
            blocking=blocking,
            blocker=blocker,
            mean=mean,
        )

    notes = f"; {'; '.join(problems)}" if problems else ""

    if total == 0:
        return decision("continue", "no verdicts")
    if rule.veto and blocking:
        return decision("continue", f"vetoed: {len(blocking)} blocking finding(s){notes}")
    if rule.kind == "mean":
        low, high = rule.scale
        scores = [v.score for v in valid if v.score is not None and low <= v.score <= high]
        if len(scores) != total:
            return decision("continue", f"{total - len(scores)} of {total} scores missing or invalid{notes}")
        mean = sum(scores) / total
        ok = mean >= rule.threshold
        reason = f"mean score {mean:.2f} {'≥' if ok else '<'} {rule.threshold:g}{notes}"
        return decision("complete" if ok else "continue", reason, mean)
    need = rule.k if rule.kind == "quorum" else total
    ok = approvals >= need
    reason = f"{approvals} of {total} approved ({rule.describe()}){notes}"
    return decision("complete" if ok else "continue", reason)


def decide_turn(
    review: Decision,
    *,
    turn: int,
    max_turns: int,
    history: Sequence[Decision] = (),
    check: CheckResult | None = None,
    changed: bool = True,
    repeat_limit: int = 3,
) -> Decision:
    """A loop turn's decision from its recorded facts: complete only if the check passed (when there
    is one) and the review completed; ``blocked`` when the turn changed nothing or the same plurality
    blocker repeats ``min(repeat_limit, max_turns)`` turns in a row; ``needs_human`` at the cap."""

    def decision(status: DecisionStatus, reason: str) -> Decision:
        return review.model_copy(update={"status": status, "reason": reason})

    if not changed:
        return decision("blocked", f"no progress: turn {turn} changed nothing")
    if check is not None and not check.passed:
        why = f"check {check.name or check.cmd!r} failed ({_check_outcome(check)}); {review.reason}"
    elif review.status == "complete":
        return review
    else:
        why = review.reason
    repeats = min(repeat_limit, max_turns)
    if review.blocker is not None and repeats > 1:
        recent = [d.blocker for d in list(history)[-(repeats - 1) :]]
        if len(recent) == repeats - 1 and all(b == review.blocker for b in recent):
            title = next((f.title for f in review.blocking if f.key == review.blocker), review.blocker)
            return decision("blocked", f"the same blocker for {repeats} turns: {title}")
    if turn >= max_turns:
        return decision("needs_human", f"turn cap ({max_turns}) reached; {why}")
    return decision("continue", why)


def _check_outcome(check: CheckResult) -> str:
    return "timed out" if check.timed_out else f"exit {check.code}"


class Ledger:
    """A run's ledger: a JSON file (``ledger.json`` in the run folder) rewritten atomically after
    every event. Events are keyed: recording a key already in the ledger replaces nothing and
    appends nothing, so a resumed run, replaying its workflow, continues the same ledger with each
    event once."""

    def __init__(self, path: Path, on_note: Callable[[str, str, str], None] | None = None) -> None:
        self.path = path
        self.on_note = on_note  # ctx.ledger(): publishes a new event's note (headless prints it)
        self.events: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}
        self._load()

    def _load(self) -> None:
        """Read the file again (another Ledger on the same path may have written it)."""
        if self.path.is_file():
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.events = list(data.get("events", []))
            self.state = dict(data.get("state", {}))

    def record(self, key: str, kind: str, data: Any, *, note: str | None = None) -> bool:
        """Append the event ``key`` (once); returns whether it was new. ``note`` is a one-line
        summary kept with the event and, the first time, shown as the run's progress (headless
        ``run`` prints it, e.g. ``turn 2: continue — 1/3 approve, check failed (exit 1)``)."""
        self._load()
        if any(e["key"] == key for e in self.events):
            return False
        payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        event = {"key": key, "kind": kind, "at": time.time(), "data": payload}
        if note:
            event["note"] = note
        self.events.append(event)
        self._write()
        if note and self.on_note is not None:
            self.on_note(key, kind, note)
        return True

    def set(self, **state: Any) -> None:
        """Update the ledger's summary state (status, turn, …) and rewrite it."""
        self._load()
        self.state.update(
            {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in state.items()}
        )
        self._write()

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind]

    def _write(self) -> None:
        """One event per line: readable, and encoded by the fast (C) JSON encoder."""
        state = json.dumps(self.state, default=str, ensure_ascii=False)
        events = ",\n".join(json.dumps(e, default=str, ensure_ascii=False) for e in self.events)
        write_durably(self.path, f'{{"state": {state},\n"events": [\n{events}\n]}}\n')
