"""Retry policy: which error classes back off and retry, which advance the fallback
chain, which stop everything, and how long to wait before the next try."""

from __future__ import annotations

import random
from typing import Literal

from loopcraft.config import RetryConfig
from loopcraft.models.types import Attempt, ErrorClass

Decision = Literal["retry", "next_model", "stop"]

RETRYABLE: frozenset[ErrorClass] = frozenset({"rate_limit", "server", "overloaded", "timeout", "connection"})
# Never retried nor handed to another model: the caller must see them as they are.
TERMINAL: frozenset[ErrorClass] = frozenset({"cancelled", "content_refusal"})


def is_terminal(error_class: ErrorClass | None) -> bool:
    """True when no retry and no other model may be tried after this error."""
    return error_class in TERMINAL


def decide(error_class: ErrorClass, retries_done: int, config: RetryConfig) -> Decision:
    """What to do after a failed attempt at one model that has had ``retries_done`` retries."""
    if error_class in TERMINAL:
        return "stop"
    if error_class in RETRYABLE and retries_done < config.max_retries:
        return "retry"
    return "next_model"


def backoff_delay(
    retries_done: int,
    config: RetryConfig,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``retries_done + 1``.

    Exponential from ``base_delay`` with full jitter in [50 %, 100 %], capped at ``max_delay``;
    a provider's retry-after replaces it when given (capped at ``max_delay`` too).
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), config.max_delay)
    ceiling = min(config.base_delay * (2**retries_done), config.max_delay)
    jitter = (rng or random).uniform(0.5, 1.0)
    return ceiling * jitter


def failed_outcomes(attempts: list[Attempt]) -> list[dict[str, str | None]]:
    """Each failed attempt of one call with what followed it: ``retry`` (the same model again),
    ``fallback`` (the next model of the chain) or ``gave_up`` (nothing: the call failed)."""
    out: list[dict[str, str | None]] = []
    for index, attempt in enumerate(attempts):
        if attempt.ok:
            continue
        after = attempts[index + 1] if index + 1 < len(attempts) else None
        then = "gave_up" if after is None else "retry" if after.model == attempt.model else "fallback"
        out.append({"model": attempt.model, "error_class": attempt.error_class or "unknown", "then": then})
    return out
