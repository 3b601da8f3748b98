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
