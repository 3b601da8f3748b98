"""A loopback OpenAI-compatible server for tests: ``/v1/chat/completions`` streaming SSE
(or plain JSON) with text, tool calls and usage, plus scripted failures and slowness.

    with OpenAIServer() as server:
        server.fail(429, retry_after=0.3).respond(text="hi", usage={"prompt_tokens": 10})
        config.models["openai_compatible/test-model"] = ModelOptions(api_base=server.base_url)

Behaviours are consumed in order, one per request; when the queue is empty the server
answers "ok". Every request body is recorded in ``.requests`` (arrival times in ``.times``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_REASONS = {400: "bad_request", 401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


@dataclass
class Behaviour:
    status: int = 200
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] | None = None
    retry_after: float | None = None
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # more error headers (rate-limit resets)


class OpenAIServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port>, in a daemon thread; a context manager."""

    def __init__(self, chunk_size: int = 8) -> None:
        self.chunk_size = chunk_size
        self.delay_per_chunk = 0.0
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []
        self.disconnects = 0
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-server", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    # --- behaviours -------------------------------------------------------------------

    def respond(
        self,
        text: str = "",
        tool_calls: list[dict[str, Any]] | None = None,
        usage: dict[str, int] | None = None,
    ) -> OpenAIServer:
        """Queue one answer. ``tool_calls``: [{"name", "arguments" (dict or str), "id"?}];
        ``usage``: prompt_tokens, completion_tokens, cached_tokens."""
        self._queue.append(Behaviour(text=text, tool_calls=list(tool_calls or []), usage=usage))
        return self

    def fail(
        self,
        status: int,
        retry_after: float | None = None,
        times: int = 1,
        message: str = "",
        headers: dict[str, str] | None = None,
    ) -> OpenAIServer:
        """Queue ``times`` error answers with HTTP ``status`` (and a retry-after header, and ``headers``)."""
        for _ in range(times):
            self._queue.append(
                Behaviour(
                    status=status,
                    retry_after=retry_after,
                    message=message or f"fake error {status}",
                    headers=dict(headers or {}),
                )
            )
        return self

    def slow(self, delay_per_chunk: float) -> OpenAIServer:
        """Wait this long before each streamed chunk, from now on."""
        self.delay_per_chunk = delay_per_chunk
        return self

    def next_behaviour(self) -> Behaviour:
        with self._lock:
            return self._queue.popleft() if self._queue else Behaviour(text="ok")

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> OpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def stopping(self) -> threading.Event:
        return self._stopping


def _tool_arguments(call: dict[str, Any]) -> str:
    args = call.get("arguments", {})
    return args if isinstance(args, str) else json.dumps(args)


def _usage_block(behaviour: Behaviour, request: dict[str, Any]) -> dict[str, Any]:
    usage = behaviour.usage or {}
    prompt = usage.get("prompt_tokens", len(json.dumps(request.get("messages", []))) // 4)
    completion = usage.get("completion_tokens", max(1, len(behaviour.text) // 4))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": usage.get("cached_tokens", 0)},
    }


def _handler_for(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                body = {}
            with server._lock:
                server.requests.append(body)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                server.times.append(time.monotonic())
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            behaviour = server.next_behaviour()
            if behaviour.status != 200:
                self._error(behaviour)
            elif body.get("stream"):
                self._stream(behaviour, body)
            else:
                self._whole(behaviour, body)

        def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, behaviour: Behaviour) -> None:
            headers = {"retry-after": str(behaviour.retry_after)} if behaviour.retry_after is not None else {}
            headers.update(behaviour.headers)
            code = _REASONS.get(behaviour.status, "server_error")
            payload = {"error": {"message": behaviour.message, "type": code, "code": code}}
            self._json(behaviour.status, payload, headers)

        def _whole(self, behaviour: Behaviour, request: dict[str, Any]) -> None:
            message: dict[str, Any] = {"role": "assistant", "content": behaviour.text or None}
            if behaviour.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": c.get("id", f"call_{i}"),
                        "type": "function",
                        "function": {"name": c["name"], "arguments": _tool_arguments(c)},
                    }
                    for i, c in enumerate(behaviour.tool_calls)
                ]
            finish = "tool_calls" if behaviour.tool_calls else "stop"
            self._json(
                200,
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": request.get("model", "fake"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": _usage_block(behaviour, request),
                },
            )

        def _send(self, payload: dict[str, Any] | str) -> bool:
            if server.delay_per_chunk and server.stopping.wait(server.delay_per_chunk):
                return False
            data = payload if isinstance(payload, str) else json.dumps(payload)
            try:
                self.wfile.write(f"data: {data}\n\n".encode())
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                with server._lock:
                    server.disconnects += 1
                return False
            return True

        def _stream(self, behaviour: Behaviour, request: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            base = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": request.get("model", "fake"),
            }

            def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
                return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

            size = server.chunk_size
            pieces: list[dict[str, Any]] = [chunk({"role": "assistant", "content": ""})]
            pieces += [
                chunk({"content": behaviour.text[i : i + size]}) for i in range(0, len(behaviour.text), size)
            ]
            for index, call in enumerate(behaviour.tool_calls):
                args = _tool_arguments(call)
                parts = [args[i : i + size] for i in range(0, len(args), size)] or [""]
                for n, part in enumerate(parts):
                    function: dict[str, Any] = {"arguments": part}
                    entry: dict[str, Any] = {"index": index, "function": function}
                    if n == 0:
                        entry.update(id=call.get("id", f"call_{index}"), type="function")
                        function["name"] = call["name"]
                    pieces.append(chunk({"tool_calls": [entry]}))
            pieces.append(chunk({}, "tool_calls" if behaviour.tool_calls else "stop"))
            if (request.get("stream_options") or {}).get("include_usage"):
                pieces.append({**base, "choices": [], "usage": _usage_block(behaviour, request)})
            for piece in pieces:
                if not self._send(piece):
                    return
            self._send("[DONE]")

    return Handler
