"""Run-level budgets: tokens, dollars, wall seconds and stage count, shared by every stage of a
run (parallel branches included).

A :class:`RunBudget` is an agent :class:`~loopcraft.agent.budget.Budget` (so every stage's agent
charges it turn by turn and wraps up when it runs out) plus a stage counter the engine checks
before starting each new stage. ``seconds`` counts the wall time of the current execution.

A nested workflow's budget (``@workflow(budget=...)`` on the child, or
``ctx.workflow(child, budget=...)``) is a :class:`RunBudget` with a ``parent``: whatever the
child's stages spend is charged to it and to every budget above it, and it is exhausted when it
or any budget above it is. The budget in force is carried by a context variable, so the child's
parallel branches see it too.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from contextvars import ContextVar
from typing import Any

from loopcraft.agent.budget import Budget, Limits
from loopcraft.errors import LoopcraftError
from loopcraft.models.types import Usage
from loopcraft.numbers import BUDGET_BOUNDS

BUDGET_KEYS = ("tokens", "dollars", "seconds", "stages")


class BudgetError(LoopcraftError):
    """A budget given on the command line or in code is malformed."""


def parse_budget(text: str, source: str = "--budget") -> dict[str, float]:
    """``tokens=50000,dollars=2,seconds=600,stages=20`` as a dict; raises :class:`BudgetError`
    (naming ``source``) for an unknown or repeated key or a value out of bounds."""
    pairs: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in BUDGET_KEYS:
            raise BudgetError(f"bad {source} {part!r}: use key=value with keys {', '.join(BUDGET_KEYS)}")
        pairs.append((key, value.strip()))
    return _checked(pairs, source)


def _checked(pairs: list[tuple[str, Any]], source: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in pairs:
        if key not in BUDGET_BOUNDS:
            raise BudgetError(f"bad {source} {key}={_text(value)}: unknown key; use {', '.join(BUDGET_KEYS)}")
        if key in out:
            raise BudgetError(f"bad {source}: {key} is given twice; give each limit once")
        bound = BUDGET_BOUNDS[key]
        try:
            out[key] = bound.check(value)
        except ValueError:
            raise BudgetError(f"bad {source} {key}={_text(value)}: must be {bound.allowed()}") from None
    return out


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_budget(budget: dict[str, Any] | None, source: str = "budget") -> dict[str, float] | None:
    """A budget dict from code, validated (unknown keys and out-of-bounds limits rejected)."""
    if not budget:
        return None
    if not isinstance(budget, dict):
        raise BudgetError(
            f"bad {source}: give a dict of {', '.join(BUDGET_KEYS)}, got {type(budget).__name__}"
        )
    return _checked([(str(k), v) for k, v in budget.items()], source)


_AGENT_KEYS = {
    "max_turns": "turns",
    "max_tool_calls": "tool_calls",
    "max_tokens": "tokens",
    "max_dollars": "dollars",
    "wall_time": "seconds",
}
_AGENT_LIMIT = re.compile(r"\b(" + "|".join(_AGENT_KEYS) + r")=([0-9.e+]+)s?")


def as_budget_key(text: str, keys: Collection[str] = BUDGET_KEYS) -> str:
    """``text`` with each agent limit (``max_tokens=10``, ``wall_time=60s``) named as the user
    wrote it in a budget (``tokens=10``, ``seconds=60``), for the budget keys among ``keys``."""

    def named(match: re.Match[str]) -> str:
        key = _AGENT_KEYS[match[1]]
        return f"{key}={match[2]}" if key in keys else match[0]

    return _AGENT_LIMIT.sub(named, text)


class RunBudget(Budget):
    """What a run (or a nested workflow, with ``parent``) has spent against its limits."""

    def __init__(
        self, budget: dict[str, Any] | None, *, parent: RunBudget | None = None, label: str = ""
    ) -> None:
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
        self.parent = parent
        self.label = label  # e.g. "workflow 'fix'" for a nested budget; "" for the run's

    @property
    def root(self) -> RunBudget:
        return self if self.parent is None else self.parent.root

    def _own(self, limit: str | None) -> str | None:
        return f"{limit} in {self.label}" if limit is not None and self.label else limit

    def charge(self, usage: Usage) -> None:
        super().charge(usage)
        if self.parent is not None:
            self.parent.charge(usage)

    def add_turn(self) -> None:
        super().add_turn()
        if self.parent is not None:
            self.parent.add_turn()

    def add_tool_calls(self, count: int = 1) -> None:
        super().add_tool_calls(count)
        if self.parent is not None:
            self.parent.add_tool_calls(count)

    def exceeded(self, *, counts: bool = True) -> str | None:
        limit = _run_key(super().exceeded(counts=counts))
        if limit is None and self.max_stages is not None and self.stages > self.max_stages:
            limit = f"stages={self.max_stages}"
        if limit is None and self.parent is not None:
            return self.parent.exceeded(counts=counts)
        return self._own(limit)

    def _stage_limit(self) -> str | None:
        """The exhausted limit that forbids one more stage here or above (nothing counted)."""
        limit = _run_key(super().exceeded())
        if limit is None and self.max_stages is not None and self.stages >= self.max_stages:
            limit = f"stages={self.max_stages}"
        if limit is None and self.parent is not None:
            return self.parent._stage_limit()
        return self._own(limit)

    def stage_allowed(self) -> str | None:
        """Count one more stage; the exhausted limit (as text) when it may not start."""
        limit = self._stage_limit()
        if limit is None:
            self.count_stage()
        return limit

    def count_stage(self) -> None:
        """One more stage (run or replayed) here and in every budget above."""
        self.stages += 1
        if self.parent is not None:
            self.parent.count_stage()


def _run_key(limit: str | None) -> str | None:
    return None if limit is None else as_budget_key(limit)


_scoped: ContextVar[RunBudget | None] = ContextVar("loopcraft_budget", default=None)


def current_budget(run_budget: RunBudget) -> RunBudget:
    """The budget in force here: the innermost nested workflow's, else the run's."""
    scoped = _scoped.get()
    return scoped if scoped is not None and scoped.root is run_budget else run_budget


def enter_budget(budget: RunBudget) -> Any:
    """Make ``budget`` the one in force for this task and the tasks it starts; returns a reset token."""
    return _scoped.set(budget)


def leave_budget(token: Any) -> None:
    _scoped.reset(token)


def nested_budget(
    parent: RunBudget, limits: dict[str, Any] | None, label: str, raised: dict[str, Any] | None = None
) -> RunBudget | None:
    """A child budget under ``parent`` (None when ``limits`` is empty). Limits that the run was
    resumed with (``raised``) lift the child's same limits to at least that much."""
    checked = check_budget(limits)
    if not checked:
        return None
    for key, value in (check_budget(raised) or {}).items():
        if key in checked and value > checked[key]:
            checked[key] = value
    return RunBudget(checked, parent=parent, label=label)


def merge_budget(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """``new`` limits override ``old`` ones key by key (raising a budget to resume a run)."""
    if not new:
        return old
    return {**(old or {}), **new}
