"""Run-level budgets: tokens, dollars, wall seconds and stage count, shared by every stage of a
run (parallel branches included).

A :class:`RunBudget` is an agent :class:`~loopcraft.agent.budget.Budget` (so every stage's agent
charges it turn by turn and wraps up when it runs out) plus a stage counter the engine checks
before starting each new stage. ``seconds`` counts the wall time of the current execution.
"""

from __future__ import annotations

from typing import Any

from loopcraft.agent.budget import Budget, Limits
from loopcraft.errors import LoopcraftError

BUDGET_KEYS = ("tokens", "dollars", "seconds", "stages")


class BudgetError(LoopcraftError):
    """A budget given on the command line or in code is malformed."""


def parse_budget(text: str) -> dict[str, float]:
    """``tokens=50000,dollars=2,seconds=600,stages=20`` as a dict; raises :class:`BudgetError`."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in BUDGET_KEYS:
            raise BudgetError(f"bad budget {part!r}: use key=value with keys {', '.join(BUDGET_KEYS)}")
        try:
            number = float(value)
        except ValueError:
            raise BudgetError(f"bad budget {part!r}: {value.strip()!r} is not a number") from None
        if number <= 0:
            raise BudgetError(f"bad budget {part!r}: the limit must be positive")
        out[key] = number
    return out


def check_budget(budget: dict[str, Any] | None) -> dict[str, float] | None:
    """A budget dict from code, validated (unknown keys and non-positive limits rejected)."""
    if not budget:
        return None
    return parse_budget(",".join(f"{k}={v}" for k, v in budget.items()))


class RunBudget(Budget):
    """What a run has spent against its limits, across all its stages."""

    def __init__(self, budget: dict[str, Any] | None) -> None:
        checked = check_budget(budget) or {}
        tokens, dollars, seconds = checked.get("tokens"), checked.get("dollars"), checked.get("seconds")
        super().__init__(
            Limits(
                max_tokens=int(tokens) if tokens is not None else None,
                max_dollars=dollars,
                wall_time=seconds,
            )
        )
        self.raw = checked
        self.max_stages = int(checked["stages"]) if "stages" in checked else None
        self.stages = 0

    def exceeded(self, *, counts: bool = True) -> str | None:
        limit = super().exceeded(counts=counts)
        if limit is None and self.max_stages is not None and self.stages > self.max_stages:
            return f"stages={self.max_stages}"
        return limit

    def stage_allowed(self) -> str | None:
        """Count one more stage; the exhausted limit (as text) when it may not start."""
        limit = super().exceeded()
        if limit is not None:
            return limit
        if self.max_stages is not None and self.stages >= self.max_stages:
            return f"stages={self.max_stages}"
        self.stages += 1
        return None


def merge_budget(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """``new`` limits override ``old`` ones key by key (raising a budget to resume a run)."""
    if not new:
        return old
    return {**(old or {}), **new}
