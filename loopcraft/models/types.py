"""Plain data that crosses the model seam: requests, deltas, tool calls, usage, results."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Message = dict[str, Any]  # OpenAI chat format: {"role": ..., "content": ..., ...}
ToolSchema = dict[str, Any]  # OpenAI tool format: {"type": "function", "function": {...}}

ErrorClass = Literal[
    "rate_limit",
    "server",
    "overloaded",
    "timeout",
    "connection",
    "auth",
    "not_found",
    "bad_request",
    "context_overflow",
    "content_refusal",
    "cancelled",
    "malformed",
    "unknown",
]

OverflowPolicy = Literal["fallback", "raise"]


def function_tool(name: str, description: str, parameters: dict[str, Any]) -> ToolSchema:
    """The OpenAI function-tool schema: ``parameters`` is the JSON schema of the arguments object."""
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


# The key of the object that stands in, in replayed history, for arguments that were not valid JSON.
INVALID_ARGUMENTS = "_invalid_arguments"


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it

    def parsed(self) -> dict[str, Any]:
        """The arguments as a dict; raises ValueError when they are not a JSON object."""
        value = json.loads(self.arguments or "{}")
        if not isinstance(value, dict):
            raise ValueError("tool arguments must be a JSON object")
        if INVALID_ARGUMENTS in value:
            raise ValueError(str(value[INVALID_ARGUMENTS]))
        return value

    def replayable(self, truncated: bool = False) -> ToolCall:
        """This call with arguments every provider accepts back in history: unparseable ones
        are replaced by an object saying so (litellm refuses to send invalid JSON)."""
        try:
            value = json.loads(self.arguments or "{}")
        except ValueError:
            value = None
        if isinstance(value, dict):
            return self
        why = "cut off by the output limit" if truncated else "not a valid JSON object"
        note = {
            INVALID_ARGUMENTS: f"the arguments were {why} ({len(self.arguments)} characters) and were not run"
        }
        return ToolCall(self.id, self.name, json.dumps(note))

    def to_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cost_usd + other.cost_usd,
        )

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens - other.input_tokens,
            self.output_tokens - other.output_tokens,
            self.cache_read_tokens - other.cache_read_tokens,
            self.cache_write_tokens - other.cache_write_tokens,
            self.cost_usd - other.cost_usd,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage:
        return cls(**(data or {}))


@dataclass
class Attempt:
    """One try at one model: what happened and what it cost."""

    model: str
    ok: bool
    error_class: ErrorClass | None = None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    reset_at: float | None = None  # a rate or usage limit: when the provider said it resets (epoch)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["usage"] = self.usage.to_dict()
        if data["reset_at"] is None:
            del data["reset_at"]
        return data


@dataclass
class Delta:
    """A streamed piece of the response: text, or a tool call's name/arguments growing."""

    kind: Literal["text", "tool_call"]
    text: str = ""
    tool_index: int = 0
    tool_name: str | None = None


@dataclass
class CompletionRequest:
    model: str
    messages: list[Message]
    tools: list[ToolSchema] = field(default_factory=list)
    fallback_models: list[str] = field(default_factory=list)
    stage: str = "chat"  # which scripted-model turns apply; metadata for real providers
    response_format: dict[str, Any] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    pinned_model: str | None = None  # replay: use exactly this model (no chain walk)
    # On context overflow: "fallback" moves on along the chain; "raise" stops the chain and raises
    # ContextOverflowError so the caller can shrink the request (the agent compacts) and call again.
    overflow: OverflowPolicy = "fallback"


@dataclass
class CompletionResult:
    text: str
    tool_calls: list[ToolCall]
    finish_reason: str
    usage: Usage
    model: str  # the model string that actually answered
    latency_s: float
    attempts: list[Attempt] = field(default_factory=list)
    # Provider reasoning state to send back verbatim (``thinking_blocks``, ``reasoning_items``).
    reasoning: dict[str, Any] = field(default_factory=dict)

    @property
    def truncated(self) -> bool:
        """True when the output cap stopped the reply (``length`` / ``max_tokens``)."""
        return self.finish_reason in ("length", "max_tokens")

    def assistant_message(self) -> Message:
        """The reply as history: tool-call arguments always valid JSON, reasoning state kept."""
        msg: Message = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            msg["tool_calls"] = [tc.replayable(self.truncated).to_message() for tc in self.tool_calls]
        msg.update(self.reasoning)
        return msg

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tool_calls": [asdict(tc) for tc in self.tool_calls],
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "model": self.model,
            "latency_s": self.latency_s,
            "attempts": [a.to_dict() for a in self.attempts],
            **({"reasoning": self.reasoning} if self.reasoning else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompletionResult:
        return cls(
            text=data.get("text", ""),
            tool_calls=[ToolCall(**tc) for tc in data.get("tool_calls", [])],
            finish_reason=data.get("finish_reason", "stop"),
            usage=Usage.from_dict(data.get("usage")),
            model=data.get("model", ""),
            latency_s=data.get("latency_s", 0.0),
            attempts=[
                Attempt(**{**a, "usage": Usage.from_dict(a.get("usage"))}) for a in data.get("attempts", [])
            ],
            reasoning=dict(data.get("reasoning") or {}),
        )


DeltaCallback = Callable[[Delta], Awaitable[None] | None]
