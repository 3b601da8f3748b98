"""Error classification, retry-after parsing, retry decisions and the all-failed error."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from loopcraft.config import RetryConfig
from loopcraft.errors import LoopcraftError, ScriptError
from loopcraft.models.errors import ModelCallError, classify, loopcraft_cause, retry_after, short_message
from loopcraft.models.litellm_loader import load_litellm
from loopcraft.models.retry import backoff_delay, decide
from loopcraft.models.types import Attempt

litellm = load_litellm()
_REQ = httpx.Request("POST", "http://x/v1/chat/completions")


def _common() -> dict[str, str]:
    return {"message": "boom", "model": "m", "llm_provider": "openai"}


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (litellm.RateLimitError(response=httpx.Response(429, request=_REQ), **_common()), "rate_limit"),
        (litellm.AuthenticationError(**_common()), "auth"),
        (litellm.NotFoundError(**_common()), "not_found"),
        (litellm.ContextWindowExceededError(**_common()), "context_overflow"),
        (litellm.ContentPolicyViolationError(**_common()), "content_refusal"),
        (litellm.Timeout(**_common()), "timeout"),
        (litellm.InternalServerError(response=httpx.Response(500, request=_REQ), **_common()), "server"),
        (litellm.BadRequestError(**_common()), "bad_request"),
        (litellm.APIConnectionError(**_common()), "connection"),
        (asyncio.CancelledError(), "cancelled"),
        (ValueError("what"), "unknown"),
    ],
)
def test_classify_litellm_exceptions(exc: BaseException, expected: str) -> None:
    assert classify(exc) == expected


def test_classify_unwraps_midstream_wrapper_and_reads_retry_after() -> None:
    inner = litellm.RateLimitError(
        response=httpx.Response(429, headers={"retry-after": "1.5"}, request=_REQ), **_common()
    )
    from litellm.exceptions import MidStreamFallbackError

    wrapped = MidStreamFallbackError(
        message="x", model="m", llm_provider="scripted", original_exception=inner
    )
    assert classify(wrapped) == "rate_limit"
    assert retry_after(wrapped) == 1.5


def test_retry_after_ms_wins_and_missing_is_none() -> None:
    exc = litellm.RateLimitError(
        response=httpx.Response(429, headers={"retry-after-ms": "250", "retry-after": "9"}, request=_REQ),
        **_common(),
    )
    assert retry_after(exc) == pytest.approx(0.25)
    assert retry_after(ValueError("x")) is None


def test_bad_request_mentioning_context_length_is_overflow() -> None:
    exc = litellm.BadRequestError(
        message="This model's maximum context length is 8192", model="m", llm_provider="openai"
    )
    assert classify(exc) == "context_overflow"


def test_status_codes_classify_when_class_is_generic() -> None:
    class Weird(Exception):
        def __init__(self, code: int) -> None:
            super().__init__("weird")
            self.status_code = code

    assert [classify(Weird(c)) for c in (408, 409, 429, 503, 401, 404, 422)] == [
        "timeout",
        "server",
        "rate_limit",
        "server",
        "auth",
        "not_found",
        "bad_request",
    ]


def test_loopcraft_cause_found_through_wrappers() -> None:
    script_error = ScriptError("script error: x.yaml: stages: bad")
    try:
        try:
            raise script_error
        except ScriptError as e:
            raise litellm.APIConnectionError(**_common()) from e
    except Exception as outer:
        assert loopcraft_cause(outer) is script_error
    assert loopcraft_cause(ValueError("plain")) is None


def test_short_message_strips_prefixes_and_is_one_line() -> None:
    exc = litellm.RateLimitError(
        response=httpx.Response(429, request=_REQ), message="slow\ndown", model="m", llm_provider="openai"
    )
    text = short_message(exc)
    assert text.startswith("429 ")
    assert "\n" not in text and "litellm." not in text and "slow down" in text


def test_model_call_error_message_and_class() -> None:
    attempts = [
        Attempt("openai/x", False, "rate_limit", "429 slow down"),
        Attempt("openai/x", False, "rate_limit", "429 still slow"),
        Attempt("scripted/y", False, "auth", "401 bad key"),
    ]
    err = ModelCallError(attempts)
    assert isinstance(err, LoopcraftError)
    assert (
        str(err) == "all models failed: openai/x: rate_limit (429 still slow); scripted/y: auth (401 bad key)"
    )
    assert err.error_class == "auth" and err.attempts == attempts


def test_decide_retry_fallback_and_stop() -> None:
    cfg = RetryConfig(max_retries=2)
    assert decide("rate_limit", 0, cfg) == "retry"
    assert decide("server", 2, cfg) == "next_model"
    assert decide("auth", 0, cfg) == "next_model"
    assert decide("context_overflow", 0, cfg) == "next_model"
    assert decide("content_refusal", 0, cfg) == "stop"
    assert decide("cancelled", 0, cfg) == "stop"


def test_backoff_is_exponential_jittered_capped_and_honours_retry_after() -> None:
    cfg = RetryConfig(base_delay=1.0, max_delay=5.0)
    rng = random.Random(7)
    delays = [backoff_delay(n, cfg, rng=rng) for n in range(6)]
    for n, delay in enumerate(delays):
        ceiling = min(2**n, 5.0)
        assert ceiling * 0.5 <= delay <= ceiling
    assert backoff_delay(0, cfg, retry_after=3.0) == 3.0
    assert backoff_delay(0, cfg, retry_after=100.0) == 5.0
