"""``serve --http HOST:PORT``: ``POST /hooks/NAME`` records event NAME when its body is signed
GitHub-style (``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>``) with the secret in the
environment variable the webhook trigger names. Unsigned or wrongly signed: 401, nothing recorded;
a body over the limit: 413; a body that is not a JSON object: 400. Secrets and headers are never
recorded (the payload is the body; ``X-GitHub-Delivery`` is the dedupe key)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
from typing import TYPE_CHECKING

from loopcraft.triggers.inbox import MAX_PAYLOAD_BYTES

if TYPE_CHECKING:
    from loopcraft.triggers.serve import Server

_REASONS = {
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
}


def signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def serve_webhooks(server: Server, host: str, port: int) -> None:
    """Accept webhooks until cancelled."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, message = await _handle(server, reader)
        except (asyncio.IncompleteReadError, ValueError, ConnectionError):
            status, message = 400, {"error": "bad request"}
        body = json.dumps(message).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + body)
            await writer.drain()
            writer.close()

    listener = await asyncio.start_server(handle, host, port)
    server.say(f"serve: webhooks at http://{host}:{port}/hooks/NAME")
    async with listener:
        await listener.serve_forever()


async def _handle(server: Server, reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    request = (await reader.readline()).decode("latin-1").split()
    headers: dict[str, str] = {}
    while True:
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            break
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    if len(request) < 2:
        return 400, {"error": "bad request"}
    method, path = request[0], request[1]
    name = path.split("?", 1)[0].removeprefix("/hooks/")
    if not path.startswith("/hooks/") or not name:
        return 404, {"error": "not found: POST /hooks/NAME"}
    if method != "POST":
        return 405, {"error": "use POST"}
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_PAYLOAD_BYTES:
        if length <= 4 * MAX_PAYLOAD_BYTES:  # read it away: the sender gets the 413, not a broken pipe
            with contextlib.suppress(asyncio.IncompleteReadError):
                await reader.readexactly(length)
        return 413, {"error": f"body over {MAX_PAYLOAD_BYTES} bytes"}
    body = await reader.readexactly(length) if length else b""
    trig = next((t for t in server.triggers.for_event(name) if t.kind == "webhook"), None)
    if trig is None:
        return 404, {"error": f"no webhook trigger named {name!r}"}
    secret = os.environ.get(trig.secret_env or "", "")
    given = headers.get("x-hub-signature-256", "")
    if not secret or not given or not hmac.compare_digest(signature(secret, body), given):
        return 401, {"error": "missing or wrong X-Hub-Signature-256"}
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError:
        return 400, {"error": "the body is not JSON"}
    if not isinstance(payload, dict):
        return 400, {"error": "the body must be a JSON object"}
    event_id = server._record_external(name, payload, "webhook", headers.get("x-github-delivery") or None)
    return 202, {"event": event_id}
