"""Typed events an agent publishes while it runs (the engine and the TUI subscribe).

Every event is a small dataclass with a ``kind`` string, so consumers can dispatch on
``event.kind`` or on the class.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from loopcraft.models.types import Usage


@dataclass
class TurnStart:
    turn: int
    model: str
    kind: str = field(default="turn_start", init=False)


@dataclass
class TextDelta:
    text: str
    turn: int
    kind: str = field(default="text_delta", init=False)


@dataclass
class TurnEnd:
    """The model answered: its full text and how many tool calls it made."""

    turn: int
    text: str
    tool_calls: int
    model: str
    kind: str = field(default="turn_end", init=False)


@dataclass
class ToolCallStart:
    call_id: str
    name: str
    arguments: str
    kind: str = field(default="tool_call_start", init=False)


@dataclass
class ToolCallEnd:
    call_id: str
    name: str
    output: str
    is_error: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str = field(default="tool_call_end", init=False)


@dataclass
class UsageUpdate:
    turn_usage: Usage
    total: Usage
    turn: int
    kind: str = field(default="usage", init=False)


@dataclass
class Compaction:
    method: str  # "verbatim" or "summary"
    tokens_before: int
    tokens_after: int
    dropped_lines: int = 0
    reason: str = "threshold"  # "threshold", "on_demand" or "overflow" (the model's window was exceeded)
    kind: str = field(default="compaction", init=False)


@dataclass
class BudgetWarning:
    """A limit was hit (``limit`` names it) or a repeated action was detected."""

    limit: str
    message: str
    kind: str = field(default="budget_warning", init=False)


@dataclass
class Steered:
    text: str
    skipped_tool_calls: int = 0
    kind: str = field(default="steered", init=False)


@dataclass
class FollowUpQueued:
    text: str
    kind: str = field(default="follow_up_queued", init=False)


@dataclass
class Stopped:
    status: str
    reason: str
    kind: str = field(default="stopped", init=False)


@dataclass
class ModelRetries:
    """A model call that took more than one attempt: each failed attempt (``model``,
    ``error_class``) and what came next (``then``: ``retry`` the same model, ``fallback`` to the
    next in the chain, ``gave_up``: the call failed). Journaled, so ``loopcraft stats`` counts them."""

    turn: int
    attempts: list[dict[str, Any]]
    kind: str = field(default="model_retries", init=False)


AgentEvent = (
    TurnStart
    | TextDelta
    | TurnEnd
    | ToolCallStart
    | ToolCallEnd
    | UsageUpdate
    | Compaction
    | BudgetWarning
    | Steered
    | FollowUpQueued
    | Stopped
    | ModelRetries
)
EventCallback = Callable[[AgentEvent], Awaitable[None] | None]
