"""A loopback Anthropic Messages server for tests: ``POST /v1/messages`` streaming SSE the way
the public API documents it (message_start, content_block_start/delta/stop with thinking,
signature, text and ``input_json_delta`` pieces, message_delta with the stop reason and usage
incl. cache fields, message_stop), scripted errors (429 + retry-after, 529, an
``overloaded_error`` event inside a stream, 400 prompt too long) and a ``max_tokens`` stop.

In strict mode (the default) each request is validated as the real API does and rejected
with its 400 error text: ``max_tokens`` required, a thinking budget of at least 1024 and
below ``max_tokens``, alternating roles, tool_result ids answering the previous turn's
tool_use ids, tool inputs that are objects, and, with thinking enabled, the assistant turn
of the current tool loop starting with a thinking block whose text and signature are the
ones this server issued. Every request body is kept in ``.requests``.

    with AnthropicServer() as server:
        server.respond(thinking="plan", tool_calls=[{"name": "write", "arguments": {...}}])
        config.models["anthropic/claude-sonnet-4-5"] = ModelOptions(api_base=server.base_url)
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import LoopbackServer

PROMPT_TOO_LONG = "prompt is too long: 250000 tokens > 200000 maximum"


@dataclass
class Reply:
    status: int = 200
    thinking: str = ""
    redacted: str = ""
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None  # default: tool_use when there are tool calls, else end_turn
    cut_at: int | None = None  # max_tokens stop: the last tool input is cut after this many chars
    error_type: str = ""
    message: str = ""
    retry_after: float | None = None
    overload_in_stream: bool = False
    usage: dict[str, int] = field(default_factory=dict)


class StrictError(Exception):
    """A request the real API would reject (400 invalid_request_error)."""


class AnthropicServer(LoopbackServer[Reply]):
    """ThreadingHTTPServer on 127.0.0.1:<free port> in a daemon thread; a context manager."""

    def __init__(self, strict: bool = True, chunk: int = 7) -> None:
        super().__init__(_handler_for, lambda: Reply(text="ok"))
        self.strict = strict
        self.chunk = chunk
        self.requests: list[dict[str, Any]] = []
        self.rejections: list[str] = []
        self.issued: dict[str, str] = {}  # signature -> thinking text it signs

    @property
    def base_url(self) -> str:
        return self.address

    # --- behaviours -------------------------------------------------------------------

    def respond(self, **kwargs: Any) -> AnthropicServer:
        """Queue one reply (fields of :class:`Reply`); tool_calls: [{"name", "arguments": dict|str}]."""
        return self._push(Reply(**kwargs))

    def fail(self, status: int, message: str = "", retry_after: float | None = None) -> AnthropicServer:
        kinds = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error"}
        text = message or ("Overloaded" if status == 529 else f"fake error {status}")
        return self._push(
            Reply(
                status=status,
                error_type=kinds.get(status, "api_error"),
                message=text,
                retry_after=retry_after,
            )
        )

    def overload_in_stream(self) -> AnthropicServer:
        return self._push(Reply(overload_in_stream=True))

    # --- validation -------------------------------------------------------------------

    def validate(self, body: dict[str, Any]) -> None:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise StrictError("max_tokens: Field required")
        thinking = body.get("thinking") or {}
        enabled = thinking.get("type") == "enabled"
        if enabled:
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise StrictError(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                )
            if budget >= max_tokens:
                raise StrictError("`max_tokens` must be greater than `thinking.budget_tokens`")
        messages = body.get("messages") or []
        if not messages or messages[0].get("role") != "user":
            raise StrictError('messages: first message must use the "user" role')
        previous_tool_ids: list[str] = []
        for index, message in enumerate(messages):
            role = message.get("role")
            if index and role == messages[index - 1].get("role"):
                raise StrictError(
                    f'messages: roles must alternate between "user" and "assistant" (at {index})'
                )
            blocks = _blocks(message)
            if role == "user":
                results = [str(b.get("tool_use_id")) for b in blocks if b.get("type") == "tool_result"]
                if previous_tool_ids and sorted(results) != sorted(previous_tool_ids):
                    raise StrictError(
                        f"messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after"
                    )
                previous_tool_ids = []
                continue
            for block in blocks:
                if block.get("type") == "tool_use" and not isinstance(block.get("input"), dict):
                    raise StrictError(
                        f"messages.{index}.content: tool_use.input: Input should be a valid dictionary"
                    )
                if block.get("type") == "thinking" and self.issued.get(
                    block.get("signature", "")
                ) != block.get("thinking"):
                    raise StrictError(f"messages.{index}.content: Invalid `signature` in `thinking` block")
            previous_tool_ids = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        if enabled:
            self._check_thinking_turn(messages)

    def _check_thinking_turn(self, messages: list[dict[str, Any]]) -> None:
        """With thinking on, the assistant turn of the tool loop in progress must start with thinking."""
        last_user_text = max(
            (i for i, m in enumerate(messages) if m.get("role") == "user" and not _is_tool_results(m)),
            default=0,
        )
        for index in range(last_user_text + 1, len(messages)):
            message = messages[index]
            if message.get("role") != "assistant":
                continue
            blocks = _blocks(message)
            if blocks and blocks[0].get("type") not in ("thinking", "redacted_thinking"):
                raise StrictError(
                    f"messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                    f"`{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` message must "
                    "start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks)."
                )


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _is_tool_results(message: dict[str, Any]) -> bool:
    blocks = _blocks(message)
    return bool(blocks) and all(b.get("type") == "tool_result" for b in blocks)


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _handler_for(server: AnthropicServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with server._lock:
                server.requests.append(body)
            if not self.path.rstrip("/").endswith("/v1/messages"):
                self._error(404, "not_found_error", f"no route {self.path}")
                return
            if server.strict:
                try:
                    server.validate(body)
                except StrictError as exc:
                    server.rejections.append(str(exc))
                    self._error(400, "invalid_request_error", str(exc))
                    return
            reply = server._next()
            if reply.status != 200:
                self._error(reply.status, reply.error_type, reply.message, reply.retry_after)
                return
            self._stream(body, reply)

        def _error(self, status: int, kind: str, message: str, retry_after: float | None = None) -> None:
            data = json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("request-id", server._id("req"))
            if retry_after is not None:
                self.send_header("retry-after", str(retry_after))
            self.end_headers()
            self.wfile.write(data)

        def _event(self, name: str, data: dict[str, Any]) -> None:
            payload = f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()
            self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            self.wfile.flush()

        def _stream(self, body: dict[str, Any], reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            usage = {
                "input_tokens": reply.usage.get("input_tokens", len(json.dumps(body.get("messages"))) // 4),
                "output_tokens": 1,
                "cache_creation_input_tokens": reply.usage.get("cache_creation_input_tokens", 0),
                "cache_read_input_tokens": reply.usage.get("cache_read_input_tokens", 0),
            }
            message: dict[str, Any] = {
                "id": server._id("msg"),
                "type": "message",
                "role": "assistant",
                "model": body.get("model"),
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            }
            self._event("message_start", {"message": message})
            if reply.overload_in_stream:
                self._event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
                self._end()
                return
            index = 0
            enabled = (body.get("thinking") or {}).get("type") == "enabled"
            if enabled and reply.thinking:
                signature = "sig-" + hashlib.sha256(reply.thinking.encode()).hexdigest()[:32]
                server.issued[signature] = reply.thinking
                self._block(
                    index,
                    {"type": "thinking", "thinking": "", "signature": ""},
                    [{"type": "thinking_delta", "thinking": p} for p in _pieces(reply.thinking, server.chunk)]
                    + [{"type": "signature_delta", "signature": signature}],
                )
                index += 1
            if enabled and reply.redacted:
                self._block(index, {"type": "redacted_thinking", "data": reply.redacted}, [])
                index += 1
            if reply.text:
                self._block(
                    index,
                    {"type": "text", "text": ""},
                    [{"type": "text_delta", "text": p} for p in _pieces(reply.text, server.chunk)],
                )
                index += 1
            stop = reply.stop_reason or ("tool_use" if reply.tool_calls else "end_turn")
            for position, call in enumerate(reply.tool_calls):
                args = call["arguments"]
                raw = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
                if reply.cut_at is not None and position == len(reply.tool_calls) - 1:
                    raw, stop = raw[: reply.cut_at], "max_tokens"
                start = {
                    "type": "tool_use",
                    "id": call.get("id") or server._id("toolu"),
                    "name": call["name"],
                    "input": {},
                }
                self._block(
                    index,
                    start,
                    [{"type": "input_json_delta", "partial_json": p} for p in _pieces(raw, server.chunk)],
                )
                index += 1
            output_tokens = reply.usage.get("output_tokens", 10 + len(reply.thinking + reply.text) // 4)
            self._event(
                "message_delta",
                {
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": output_tokens},
                },
            )
            self._event("message_stop", {})
            self._end()

        def _block(self, index: int, start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
            self._event("content_block_start", {"index": index, "content_block": start})
            for delta in deltas:
                self._event("content_block_delta", {"index": index, "delta": delta})
            self._event("content_block_stop", {"index": index})

        def _end(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            time.sleep(0)

    return Handler
