"""Reasoning per provider: what an effort turns into for a model family, the output cap
(with the thinking budget inside it), and the reasoning state a reply carries that must be
sent back on the next turn (Anthropic thinking blocks with their signatures, OpenAI
Responses reasoning items with their encrypted content).

The effort table (also in the README):

- Anthropic (``anthropic/*``): ``off`` sends ``thinking: {type: disabled}``; every other
  effort sends ``thinking: {type: enabled, budget_tokens: N}`` with N from
  :data:`ANTHROPIC_BUDGETS`, always below ``max_tokens`` (the model's real output limit).
- OpenAI (``openai/*``): the effort becomes ``reasoning_effort``, mapped to a level the model
  accepts (litellm's model map says which): ``off`` → ``none`` (or ``minimal`` on models
  without ``none``), ``minimal`` → ``minimal`` (or ``low``), ``max`` → ``xhigh`` (or ``high``).
- Other providers get ``reasoning_effort`` with ``off`` left out and ``max`` as ``high``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loopcraft.models.spec import ModelSpec

ANTHROPIC_BUDGETS: dict[str, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16_384,
    "max": 32_000,
}
ANTHROPIC_MIN_BUDGET = 1024  # the API rejects a smaller budget_tokens
ANSWER_ROOM = 1024  # output tokens kept for the answer beyond the thinking budget
DEFAULT_OUTPUT_LIMIT = 8192  # a model litellm does not know and the config does not size

# Keys of an assistant message that carry provider reasoning state (kept in the transcript).
REASONING_KEYS = ("thinking_blocks", "reasoning_items")

ModelInfo = Callable[[str], dict[str, Any]]


def _litellm_info(model: str) -> dict[str, Any]:
    """litellm's bundled model info for ``model`` ({} when it does not know it)."""
    from loopcraft.models.litellm_loader import load_litellm

    try:
        return dict(load_litellm().get_model_info(model))
    except Exception:
        return {}


def output_limit(spec: ModelSpec, configured: int | None, info: ModelInfo = _litellm_info) -> int | None:
    """The output cap to send: ``max_output_tokens`` from the config, else, for Anthropic (whose API
    requires ``max_tokens``), the model's real output limit from litellm's model info. Other
    providers get None unless configured: their default already is the model's limit."""
    if configured:
        return configured
    if spec.provider != "anthropic":
        return None
    known = info(spec.litellm_model).get("max_output_tokens")
    return known if isinstance(known, int) and known > 0 else DEFAULT_OUTPUT_LIMIT


def fit_window(
    limit: int | None, spec: ModelSpec, input_chars: int, window: int | None, info: ModelInfo = _litellm_info
) -> int | None:
    """``limit`` lowered so the prompt plus the output fit the context window (Anthropic rejects a
    request whose input + ``max_tokens`` exceeds it); the input is estimated at 3 characters a token."""
    if limit is None:
        return None
    window = window or info(spec.litellm_model).get("max_input_tokens")
    if not isinstance(window, int) or window <= 0:
        return limit
    return max(ANTHROPIC_MIN_BUDGET + ANSWER_ROOM, min(limit, window - input_chars // 3))


def _openai_level(spec: ModelSpec, effort: str, info: ModelInfo) -> str | None:
    details = info(spec.litellm_model)

    def supports(level: str) -> bool:
        return bool(details.get(f"supports_{level}_reasoning_effort"))

    if effort == "off":
        return "none" if supports("none") else "minimal" if supports("minimal") else None
    if effort == "minimal":
        return "minimal" if supports("minimal") or not details else "low"
    if effort == "max":
        return "xhigh" if supports("xhigh") else "high"
    return effort


def reasoning_params(
    spec: ModelSpec, max_tokens: int | None = None, info: ModelInfo = _litellm_info
) -> dict[str, Any]:
    """litellm keyword arguments for the spec's effort (none when no effort is given)."""
    effort = spec.effort
    if effort is None or spec.provider == "scripted":
        return {}
    if spec.provider == "anthropic":
        if effort == "off":
            return {"thinking": {"type": "disabled"}}
        budget = ANTHROPIC_BUDGETS[effort]
        if max_tokens is not None:
            budget = min(budget, max(ANTHROPIC_MIN_BUDGET, max_tokens - ANSWER_ROOM))
        return {"thinking": {"type": "enabled", "budget_tokens": budget}}
    if spec.provider in ("openai", "azure"):
        level = _openai_level(spec, effort, info)
        return {"reasoning_effort": level} if level else {}
    if effort == "off":
        return {}
    return {"reasoning_effort": "high" if effort == "max" else effort}


def request_max_tokens(spec: ModelSpec, limit: int | None, params: dict[str, Any]) -> int | None:
    """``max_tokens`` to send: the output limit, raised when needed so the thinking budget fits inside."""
    thinking = params.get("thinking") or {}
    budget = thinking.get("budget_tokens") if thinking.get("type") == "enabled" else None
    if budget and (limit is None or limit <= budget):
        return budget + ANSWER_ROOM
    return limit


class ReasoningState:
    """Folds streamed reasoning pieces into what goes back on the next request.

    Anthropic streams a thinking block as text deltas and then one signature delta (litellm
    hands both over as one-block ``thinking_blocks`` lists); a redacted block arrives whole.
    OpenAI Responses reasoning items arrive complete on the final chunk (``reasoning_items``).
    """

    def __init__(self) -> None:
        self.blocks: list[dict[str, Any]] = []
        self.items: list[dict[str, Any]] = []

    def add_thinking(self, pieces: list[Any]) -> None:
        for piece in pieces:
            block = _as_dict(piece)
            kind = block.get("type")
            if kind == "redacted_thinking":
                self.blocks.append({"type": "redacted_thinking", "data": block.get("data", "")})
                continue
            if kind != "thinking":
                continue
            current = self.blocks[-1] if self.blocks else None
            if current is None or current.get("type") != "thinking" or current.get("signature"):
                current = {"type": "thinking", "thinking": ""}
                self.blocks.append(current)
            current["thinking"] += block.get("thinking") or ""
            if block.get("signature"):
                current["signature"] = block["signature"]

    def add_items(self, items: list[Any]) -> None:
        for item in items:
            data = _as_dict(item)
            if data.get("type") == "reasoning" and data not in self.items:
                self.items.append(data)

    def fields(self) -> dict[str, Any]:
        """The assistant message's reasoning keys (empty when the reply carried none)."""
        out: dict[str, Any] = {}
        if self.blocks:
            out["thinking_blocks"] = self.blocks
        if self.items:
            out["reasoning_items"] = self.items
        return out


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dict(dump())
    return dict(vars(value)) if hasattr(value, "__dict__") else {}
