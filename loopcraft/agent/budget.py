"""Runtime limits on an agent: turns, tool calls, wall time, tokens and dollars.

:class:`Limits` says how much may be spent (``None`` = unlimited); :class:`Budget` counts
what has been spent and names the first exhausted limit. One ``Budget`` may be shared by
several agents (a workflow's run-level budget): each agent charges it as it goes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace

from loopcraft.config import AgentConfig
from loopcraft.models.types import Usage


@dataclass(frozen=True)
class Limits:
    max_turns: int | None = None
    max_tool_calls: int | None = None
    wall_time: float | None = None  # seconds
    max_tokens: int | None = None
    max_dollars: float | None = None

    @classmethod
    def from_config(cls, config: AgentConfig, overrides: Limits | None = None) -> Limits:
        """The config's limits, with every non-None field of ``overrides`` taking precedence."""
        base = cls(
            config.max_turns, config.max_tool_calls, config.wall_time, config.max_tokens, config.max_dollars
        )
        if overrides is None:
            return base
        changed = {
            f.name: getattr(overrides, f.name)
            for f in fields(overrides)
            if getattr(overrides, f.name) is not None
        }
        return replace(base, **changed)


class Budget:
    """What has been spent against some :class:`Limits`; safe to share between agents."""

    def __init__(self, limits: Limits | None = None, *, clock=time.monotonic) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self.started = clock()
        self.turns = 0
        self.tool_calls = 0
        self.usage = Usage()

    def restart_clock(self) -> None:
        self.started = self._clock()

    def charge(self, usage: Usage) -> None:
        self.usage = self.usage + usage

    def add_turn(self) -> None:
        self.turns += 1

    def add_tool_calls(self, count: int = 1) -> None:
        self.tool_calls += count

    @property
    def elapsed(self) -> float:
        return self._clock() - self.started

    def exceeded(self, *, counts: bool = True) -> str | None:
        """The first exhausted limit as ``name=value`` text, or None.

        ``counts=False`` checks only what a model call itself spends (tokens, dollars,
        time), so a turn that used the last allowed turn may still run its tools.
        """
        lim = self.limits
        if counts and lim.max_turns is not None and self.turns >= lim.max_turns:
            return f"max_turns={lim.max_turns}"
        if counts and lim.max_tool_calls is not None and self.tool_calls >= lim.max_tool_calls:
            return f"max_tool_calls={lim.max_tool_calls}"
        if lim.max_tokens is not None and self.usage.total_tokens >= lim.max_tokens:
            return f"max_tokens={lim.max_tokens}"
        if lim.max_dollars is not None and self.usage.cost_usd >= lim.max_dollars:
            return f"max_dollars={lim.max_dollars:g}"
        if lim.wall_time is not None and self.elapsed >= lim.wall_time:
            return f"wall_time={lim.wall_time:g}s"
        return None

    def tokens_left(self) -> int | None:
        """Tokens still allowed (None: no token limit); never below 0."""
        lim = self.limits.max_tokens
        return None if lim is None else max(0, lim - self.usage.total_tokens)

    def tool_calls_left(self) -> bool:
        lim = self.limits.max_tool_calls
        return lim is None or self.tool_calls < lim


def tokens_left(budgets: list[Budget]) -> int | None:
    """The fewest tokens any of ``budgets`` still allows (None: none limits tokens)."""
    left = [n for n in (b.tokens_left() for b in budgets) if n is not None]
    return min(left) if left else None


def first_exceeded(budgets: list[Budget], *, counts: bool = True) -> str | None:
    """The first exhausted limit across several budgets (the agent's own, then shared ones)."""
    for budget in budgets:
        if (limit := budget.exceeded(counts=counts)) is not None:
            return limit
    return None
