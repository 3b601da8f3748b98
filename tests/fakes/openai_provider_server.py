"""A loopback OpenAI server faithful to the public API for tests: ``/v1/chat/completions`` (SSE
chunks with interleaved streamed tool calls, usage with cached tokens on the last chunk) and
``/v1/responses`` (the documented stream events: response.created, output_item.added/done for
reasoning, function_call and message items, function_call_arguments.delta, output_text.delta,
response.completed with usage), both served from one queue of scripted replies.

Strict mode (the default) rejects what the real API rejects, with its error text: an effort the
model does not accept (gpt-5.5: no ``minimal``), ``max_tokens`` on a reasoning model, function
tools with reasoning on in chat completions, tool results answering no call, tool arguments
that are not JSON, and on ``/v1/responses`` with ``store: false`` a reasoning item sent back
without the encrypted content this server issued, or a function call sent back without the
reasoning item that preceded it. Every request is kept in ``.requests`` as (path, body).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import LoopbackServer

EFFORTS = {
    "gpt-5.5": {"none", "low", "medium", "high", "xhigh"},
    "gpt-5": {"minimal", "low", "medium", "high"},
}


@dataclass
class Reply:
    reasoning: str = ""  # a reasoning item (Responses) with this summary
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    cached_tokens: int = 0


class StrictError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class OpenAIProviderServer(LoopbackServer[Reply]):
    """ThreadingHTTPServer on 127.0.0.1:<free port> in a daemon thread; a context manager."""

    def __init__(self, strict: bool = True, chunk: int = 6) -> None:
        super().__init__(_handler_for, lambda: Reply(text="ok"))
        self.strict = strict
        self.chunk = chunk
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.rejections: list[str] = []
        self.reasoning_for_call: dict[str, str] = {}  # function_call item id -> reasoning item id before it
        self.encrypted: dict[str, str] = {}  # reasoning item id -> encrypted content issued

    @property
    def base_url(self) -> str:
        return f"{self.address}/v1"

    def respond(self, **kwargs: Any) -> OpenAIProviderServer:
        return self._push(Reply(**kwargs))

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    # --- validation -------------------------------------------------------------------

    def _check_effort(self, model: str, effort: str | None) -> None:
        allowed = EFFORTS.get(model)
        if effort is not None and allowed is not None and effort not in allowed:
            raise StrictError(
                f"Unsupported value: 'reasoning_effort' does not support '{effort}' with this model. "
                f"Supported values are: {', '.join(repr(e) for e in sorted(allowed))}."
            )

    def validate_chat(self, body: dict[str, Any]) -> None:
        model, effort = body.get("model", ""), body.get("reasoning_effort")
        self._check_effort(model, effort)
        if "max_tokens" in body and model.startswith("gpt-5"):
            raise StrictError(
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
        if body.get("tools") and model.startswith("gpt-5.5") and effort not in (None, "none"):
            raise StrictError(
                f"Function tools with reasoning_effort are not supported for {model} in /v1/chat/completions. "
                "Please use /v1/responses instead."
            )
        open_calls: set[str] = set()
        for index, message in enumerate(body.get("messages") or []):
            if message.get("role") == "assistant":
                for call in message.get("tool_calls") or []:
                    arguments = call["function"]["arguments"]
                    try:
                        json.loads(arguments)
                    except (TypeError, ValueError) as exc:
                        raise StrictError(
                            f"messages.[{index}].tool_calls: invalid function arguments"
                        ) from exc
                    open_calls.add(call["id"])
            elif message.get("role") == "tool" and message.get("tool_call_id") not in open_calls:
                raise StrictError(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                    "message with 'tool_calls'."
                )

    def validate_responses(self, body: dict[str, Any]) -> None:
        self._check_effort(body.get("model", ""), (body.get("reasoning") or {}).get("effort"))
        stored = body.get("store", True)
        seen_reasoning: set[str] = set()
        calls: set[str] = set()
        for item in body.get("input") or []:
            kind = item.get("type")
            if kind == "reasoning":
                item_id = item.get("id", "")
                if not stored and self.encrypted.get(item_id) != item.get("encrypted_content"):
                    raise StrictError(
                        f"Item with id '{item_id}' not found. Items are not persisted when `store` is set to false. "
                        "Try again with `store` set to true, or remove this item from your input.",
                        404,
                    )
                seen_reasoning.add(item_id)
            elif kind == "function_call":
                json.loads(item.get("arguments") or "")
                needed = self.reasoning_for_call.get(item.get("id", ""))
                if needed and needed not in seen_reasoning:
                    raise StrictError(
                        f"Item '{item['id']}' of type 'function_call' was provided without its required "
                        f"'reasoning' item: '{needed}'."
                    )
                calls.add(item.get("call_id", ""))
            elif kind == "function_call_output" and item.get("call_id") not in calls:
                raise StrictError(
                    f"No tool call found for function call output with call_id {item.get('call_id')}."
                )


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _arguments(call: dict[str, Any]) -> str:
    args = call["arguments"]
    return args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)


def _handler_for(server: OpenAIProviderServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            path = self.path.rstrip("/")
            with server._lock:
                server.requests.append((path, body))
            chat = path.endswith("/chat/completions")
            if not chat and not path.endswith("/responses"):
                self._error(404, f"Invalid URL (POST {self.path})")
                return
            if server.strict:
                try:
                    server.validate_chat(body) if chat else server.validate_responses(body)
                except StrictError as exc:
                    server.rejections.append(str(exc))
                    self._error(exc.status, str(exc))
                    return
            reply = server._next()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            if chat:
                self._chat(body, reply)
            else:
                self._responses(body, reply)
            self.close_connection = True

        def _error(self, status: int, message: str) -> None:
            data = json.dumps(
                {"error": {"message": message, "type": "invalid_request_error", "code": None}}
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send(self, data: dict[str, Any] | str, event: str | None = None) -> None:
            text = data if isinstance(data, str) else json.dumps(data)
            prefix = f"event: {event}\n" if event else ""
            self.wfile.write(f"{prefix}data: {text}\n\n".encode())
            self.wfile.flush()

        def _usage(self, body: dict[str, Any], reply: Reply) -> tuple[int, int]:
            prompt = len(json.dumps(body.get("messages") or body.get("input"))) // 4
            return prompt, 10 + len(reply.text) // 4

        def _chat(self, body: dict[str, Any], reply: Reply) -> None:
            base = {
                "id": server._id("chatcmpl"),
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body["model"],
            }

            def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
                self._send({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

            chunk({"role": "assistant", "content": ""})
            for piece in _pieces(reply.text, server.chunk) if reply.text else []:
                chunk({"content": piece})
            calls = [(i, c, _pieces(_arguments(c), server.chunk)) for i, c in enumerate(reply.tool_calls)]
            for i, call, _ in calls:
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": call.get("id") or server._id("call"),
                                "type": "function",
                                "function": {"name": call["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            longest = max((len(p) for _, _, p in calls), default=0)
            for step in range(longest):  # interleaved: a piece of each call in turn
                for i, _, pieces in calls:
                    if step < len(pieces):
                        chunk({"tool_calls": [{"index": i, "function": {"arguments": pieces[step]}}]})
            chunk({}, "tool_calls" if reply.tool_calls else "stop")
            prompt, completion = self._usage(body, reply)
            self._send(
                {
                    **base,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "total_tokens": prompt + completion,
                        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
                        "completion_tokens_details": {"reasoning_tokens": 0},
                    },
                }
            )
            self._send("[DONE]")

        def _responses(self, body: dict[str, Any], reply: Reply) -> None:
            sequence = iter(range(10_000))
            response_id = server._id("resp")
            shell = {
                "id": response_id,
                "object": "response",
                "created_at": 1,
                "model": body["model"],
                "status": "in_progress",
                "output": [],
                "store": body.get("store", True),
            }

            def event(kind: str, **data: Any) -> None:
                self._send({"type": kind, "sequence_number": next(sequence), **data}, kind)

            event("response.created", response=shell)
            output: list[dict[str, Any]] = []
            reasoning_id = None
            if reply.reasoning:
                reasoning_id = server._id("rs")
                item: dict[str, Any] = {
                    "type": "reasoning",
                    "id": reasoning_id,
                    "summary": [{"type": "summary_text", "text": reply.reasoning}],
                }
                if "reasoning.encrypted_content" in (body.get("include") or []):
                    secret = "enc-" + hashlib.sha256(reply.reasoning.encode()).hexdigest()
                    server.encrypted[reasoning_id] = secret
                    item["encrypted_content"] = secret
                event("response.output_item.added", output_index=len(output), item={**item, "summary": []})
                event("response.output_item.done", output_index=len(output), item=item)
                output.append(item)
            if reply.text:
                message_id = server._id("msg")
                index = len(output)
                event(
                    "response.output_item.added",
                    output_index=index,
                    item={
                        "type": "message",
                        "id": message_id,
                        "role": "assistant",
                        "status": "in_progress",
                        "content": [],
                    },
                )
                for piece in _pieces(reply.text, server.chunk):
                    event(
                        "response.output_text.delta",
                        item_id=message_id,
                        output_index=index,
                        content_index=0,
                        delta=piece,
                    )
                part = {"type": "output_text", "text": reply.text, "annotations": []}
                event(
                    "response.output_text.done",
                    item_id=message_id,
                    output_index=index,
                    content_index=0,
                    text=reply.text,
                )
                done = {
                    "type": "message",
                    "id": message_id,
                    "role": "assistant",
                    "status": "completed",
                    "content": [part],
                }
                event("response.output_item.done", output_index=index, item=done)
                output.append(done)
            for call in reply.tool_calls:
                item_id, call_id, index, raw = (
                    server._id("fc"),
                    call.get("id") or server._id("call"),
                    len(output),
                    _arguments(call),
                )
                if reasoning_id:
                    server.reasoning_for_call[item_id] = reasoning_id
                start = {
                    "type": "function_call",
                    "id": item_id,
                    "call_id": call_id,
                    "name": call["name"],
                    "arguments": "",
                    "status": "in_progress",
                }
                event("response.output_item.added", output_index=index, item=start)
                for piece in _pieces(raw, server.chunk):
                    event(
                        "response.function_call_arguments.delta",
                        item_id=item_id,
                        output_index=index,
                        delta=piece,
                    )
                event(
                    "response.function_call_arguments.done",
                    item_id=item_id,
                    output_index=index,
                    arguments=raw,
                )
                done = {**start, "arguments": raw, "status": "completed"}
                event("response.output_item.done", output_index=index, item=done)
                output.append(done)
            prompt, completion = self._usage(body, reply)
            event(
                "response.completed",
                response={
                    **shell,
                    "status": "completed",
                    "output": output,
                    "usage": {
                        "input_tokens": prompt,
                        "output_tokens": completion,
                        "total_tokens": prompt + completion,
                        "input_tokens_details": {"cached_tokens": reply.cached_tokens},
                        "output_tokens_details": {"reasoning_tokens": 5 if reply.reasoning else 0},
                    },
                },
            )

    return Handler
