"""Model-call errors: classify any provider exception, read its retry-after, and the
one error a caller sees when every model in the chain failed (or, when it asked, the
context overflow it may fix itself by shrinking the request).

Classification never imports litellm: it looks at class names in the exception's MRO,
its HTTP status and, last, its message. Exceptions raised inside a streaming custom
provider arrive wrapped (``MidStreamFallbackError.original_exception``); they are unwrapped.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loopcraft.errors import LoopcraftError
from loopcraft.models.types import Attempt, ErrorClass

# Checked in order against the names of the exception's classes (most specific first).
_BY_CLASS_NAME: tuple[tuple[str, ErrorClass], ...] = (
    ("ContextWindowExceededError", "context_overflow"),
    ("ContentPolicyViolationError", "content_refusal"),
    ("AuthenticationError", "auth"),
    ("MissingApiKeyError", "auth"),
    ("PermissionDeniedError", "auth"),
    ("NotFoundError", "not_found"),
    ("RateLimitError", "rate_limit"),
    ("Timeout", "timeout"),
    ("APITimeoutError", "timeout"),
    ("TimeoutException", "timeout"),
    ("TimeoutError", "timeout"),
    ("InternalServerError", "server"),
    ("ServiceUnavailableError", "server"),
    ("BadGatewayError", "server"),
    ("BadRequestError", "bad_request"),
    ("UnprocessableEntityError", "bad_request"),
    ("UnsupportedParamsError", "bad_request"),
    ("JSONDecodeError", "malformed"),
)

_OVERLOADED_WORDS = re.compile(r"overloaded", re.I)
_CONTEXT_WORDS = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|too many tokens", re.I
)


class MissingApiKeyError(Exception):
    """A model's ``api_key_env`` names an unset variable (classified as ``auth``)."""


def unwrap(exc: BaseException) -> BaseException:
    """The underlying exception behind litellm's mid-stream wrapper (or ``exc`` itself)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "original_exception", None)
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def loopcraft_cause(exc: BaseException) -> LoopcraftError | None:
    """A :class:`LoopcraftError` somewhere in ``exc``'s wrap/cause chain (e.g. a ScriptError)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, LoopcraftError):
            return item
        inner = getattr(item, "original_exception", None)
        todo += [inner if isinstance(inner, BaseException) else None, item.__cause__, item.__context__]
    return None


def status_code(exc: BaseException) -> int | None:
    """The HTTP status an exception carries, when it carries one."""
    for candidate in (exc, unwrap(exc)):
        code = getattr(candidate, "status_code", None)
        if isinstance(code, int):
            return code
    return None


def _in_stream(exc: BaseException) -> bool:
    return any(cls.__name__ == "MidStreamFallbackError" for cls in type(exc).__mro__)


def provider_status(exc: BaseException) -> int | None:
    """The HTTP status the provider answered with. litellm reports Anthropic's 529 (its
    ``overloaded_error``) as 500, and an error event inside a 200 stream as 500 too: the first
    is given back its 529, the second has no status (None)."""
    inner = unwrap(exc)
    code = status_code(inner)
    overloaded = code == 529 or (
        code is not None and code >= 500 and _OVERLOADED_WORDS.search(_decoded(str(inner)))
    )
    if _in_stream(exc) and code is not None and code >= 500:
        return None
    return 529 if overloaded else code


def _by_status(code: int) -> ErrorClass | None:
    if code == 529:
        return "overloaded"
    if code == 408:
        return "timeout"
    if code in (409, 429):
        return "rate_limit" if code == 429 else "server"
    if code >= 500:
        return "server"
    if code in (401, 402, 403):
        return "auth"
    if code == 404:
        return "not_found"
    if code == 413:
        return "context_overflow"
    if 400 <= code < 500:
        return "bad_request"
    return None


def classify(exc: BaseException) -> ErrorClass:
    """What kind of failure ``exc`` is; decides retry, fallback or escalation."""
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    inner = unwrap(exc)
    names = {cls.__name__ for cls in type(inner).__mro__}
    if "BadRequestError" in names and _CONTEXT_WORDS.search(str(inner)):
        return "context_overflow"
    if status_code(inner) == 529 or (
        "BadRequestError" not in names and _OVERLOADED_WORDS.search(_decoded(str(inner)))
    ):
        return "overloaded"  # Anthropic's 529, or its overloaded_error event inside a stream
    for name, error_class in _BY_CLASS_NAME:
        if name in names:
            return error_class
    code = status_code(inner)
    by_status = _by_status(code) if code is not None else None
    if "APIConnectionError" in names or isinstance(inner, ConnectionError | OSError):
        # litellm reports unexpected provider failures as connection errors with a status.
        return by_status if by_status not in (None, "server") else "connection"
    if by_status is not None:
        return by_status
    if "ConnectError" in names or "NetworkError" in names:
        return "connection"
    return "unknown"


def _headers_of(exc: BaseException) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for candidate in (unwrap(exc), exc):
        response = getattr(candidate, "response", None)
        for headers in (
            getattr(response, "headers", None),
            getattr(candidate, "litellm_response_headers", None),
            getattr(candidate, "headers", None),
        ):
            if isinstance(headers, Mapping) or hasattr(headers, "get"):
                found.append(headers)  # type: ignore[arg-type]
    return found


def _parse_seconds(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_to_datetime(value) if value else None
    return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait (``retry-after-ms`` or ``retry-after``), if any."""
    for headers in _headers_of(exc):
        try:
            millis = headers.get("retry-after-ms")
            if millis is not None:
                return max(0.0, float(millis) / 1000)
            seconds = headers.get("retry-after")
            if seconds is not None:
                parsed = _parse_seconds(str(seconds).strip())
                if parsed is not None:
                    return parsed
        except (TypeError, ValueError):
            continue
    return None


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Reset headers of the rate limits a provider reports, and the header saying how much is left of each.
_RESET_FAMILIES = ("requests", "tokens", "input-tokens", "output-tokens")


def _reset_seconds(value: str, now: float) -> float | None:
    """Seconds until a reset header's moment: ``6m0s``/``20ms`` (OpenAI), an RFC 3339 time
    (Anthropic), an HTTP date, plain seconds, or epoch seconds (a number past 10**9)."""
    text = value.strip()
    if not text:
        return None
    if _DURATION.match(text):
        return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, number - now) if number > 1e9 else max(0.0, number)
    try:
        import datetime

        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return max(0.0, moment.timestamp() - now)
    except ValueError:
        pass
    return _parse_seconds(text)


def limit_reset(exc: BaseException, now: float | None = None) -> float | None:
    """Seconds until a rate or usage limit resets, as the provider said: ``retry-after`` (or
    ``-ms``) first, else the reset headers of the exhausted limits (``x-ratelimit-reset-*``,
    ``anthropic-ratelimit-*-reset``, ``x-ratelimit-reset``); None when it said nothing."""
    given = retry_after(exc)
    if given is not None:
        return given
    now = time.time() if now is None else now
    for headers in _headers_of(exc):
        exhausted: list[float] = []
        every: list[float] = []
        for family in _RESET_FAMILIES:
            for prefix in ("x-ratelimit", "anthropic-ratelimit"):
                try:
                    reset = headers.get(f"{prefix}-reset-{family}") or headers.get(f"{prefix}-{family}-reset")
                    left = headers.get(f"{prefix}-remaining-{family}") or headers.get(
                        f"{prefix}-{family}-remaining"
                    )
                except (TypeError, ValueError):
                    continue
                seconds = _reset_seconds(str(reset), now) if reset is not None else None
                if seconds is None:
                    continue
                every.append(seconds)
                if left is not None and str(left).strip() in ("0", "0.0"):
                    exhausted.append(seconds)
        if exhausted or every:
            return max(exhausted or every)
        try:
            plain = headers.get("x-ratelimit-reset")
        except (TypeError, ValueError):
            plain = None
        if plain is not None and (seconds := _reset_seconds(str(plain), now)) is not None:
            return seconds
    return None


_USAGE_WORDS = re.compile(r"quota|usage limit|insufficient|billing|credit", re.I)


@dataclass
class LimitHit:
    """Every model of a call was stopped by a rate or usage limit: which, on which models, and the
    earliest time one of them said it resets (None when none said)."""

    limit: str  # "rate limit" or "usage limit"
    models: list[str]
    reset_at: float | None
    detail: str = ""

    @property
    def model_text(self) -> str:
        return ", ".join(self.models)


def limit_hit(error: BaseException) -> LimitHit | None:
    """The :class:`LimitHit` a :class:`ModelCallError` is, when the last try at each model of its
    chain was a rate limit; None for any other failure."""
    attempts = getattr(error, "attempts", None)
    if not isinstance(error, ModelCallError) or not attempts:
        return None
    last: dict[str, Attempt] = {}
    for attempt in attempts:
        last[attempt.model] = attempt
    if any(a.error_class != "rate_limit" for a in last.values()):
        return None
    resets = [a.reset_at for a in last.values() if a.reset_at is not None]
    detail = next((a.error for a in reversed(list(last.values())) if a.error), "") or ""
    kind = "usage limit" if _USAGE_WORDS.search(detail) else "rate limit"
    return LimitHit(kind, list(last), min(resets) if resets else None, detail)


_BYTES_LITERAL = re.compile(r"""\bb(['"])(.*?)\1""", re.S)


def _decoded(text: str) -> str:
    """``text`` with Python's ``b'...'`` renderings of response bodies turned back into text."""

    def plain(match: re.Match[str]) -> str:
        try:
            return match[2].encode("latin-1").decode("unicode_escape").encode("latin-1").decode("utf-8")
        except (UnicodeError, ValueError):
            return match[2]

    return _BYTES_LITERAL.sub(plain, text)


_JSON_BODY = re.compile(r"\{.*\}", re.S)


def _provider_message(text: str) -> str:
    """``text`` with a JSON error body (``{"error": {"type", "message"}}``) reduced to its type and message."""
    match = _JSON_BODY.search(text)
    if not match:
        return text
    try:
        body = json.loads(match[0])
    except ValueError:
        return text
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return text
    kind = error.get("type")
    plain = f"{kind}: {error['message']}" if isinstance(kind, str) else error["message"]
    return text[: match.start()] + plain + text[match.end() :]


_PREFIX = re.compile(r"^(litellm\.)?\w*(Error|Exception)\s*[:-]\s*")


def short_message(exc: BaseException, limit: int = 160) -> str:
    """One line describing ``exc``: status code and the provider's message, trimmed."""
    inner = unwrap(exc)
    text = str(getattr(inner, "message", None) or inner) or type(inner).__name__
    text = " ".join(_provider_message(_decoded(text)).split())
    while True:
        trimmed = _PREFIX.sub("", text)
        if trimmed == text:
            break
        text = trimmed
    code = provider_status(exc)
    if code is None and status_code(inner) is not None:
        text = f"{text} (inside the stream)"  # the HTTP status was 200; litellm's 500 is its own
    elif code is not None and not text.startswith(str(code)):
        text = f"{code} {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ModelCallError(LoopcraftError):
    """Every model in the chain failed; carries every attempt and the last error class."""

    def __init__(self, attempts: list[Attempt]) -> None:
        self.attempts = list(attempts)
        last_per_model: dict[str, Attempt] = {}
        for attempt in attempts:
            last_per_model[attempt.model] = attempt
        parts = [f"{model}: {a.error_class} ({a.error})" for model, a in last_per_model.items()]
        last_class = attempts[-1].error_class if attempts else None
        self.error_class: ErrorClass = last_class or "unknown"
        super().__init__("all models failed: " + "; ".join(parts) if parts else "no model was tried")


class ContextOverflowError(ModelCallError):
    """``model`` rejected the request as too long for its context window, and the request asked
    (``overflow="raise"``) to hear about it rather than move on; ``attempts`` holds every try so far
    and ``index`` is the model's place in the request's chain (model, then fallbacks, duplicates dropped)."""

    def __init__(self, attempts: list[Attempt], model: str, index: int = 0) -> None:
        super().__init__(attempts)
        self.model = model
        self.index = index
        self.error_class = "context_overflow"
        detail = attempts[-1].error if attempts else None
        self.message = f"context overflow on {model}" + (f" ({detail})" if detail else "")
        self.args = (self.message,)
