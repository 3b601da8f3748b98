"""The shared skeleton of the provider fakes: a ThreadingHTTPServer on 127.0.0.1:<free port> in a
daemon thread, a queue of scripted replies consumed one per request, sequential ids, and the
context-manager lifecycle. Subclasses give the handler class and the default reply."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar

R = TypeVar("R")

# A file body that trips every JSON and SSE escaping path: non-ASCII, quotes, backslashes, tabs.
TRICKY_CONTENT = 'héllo — "quoted" \\back\\slash\\ \ttab\tend\n日本語 line 2\n'


class LoopbackServer(Generic[R]):
    def __init__(
        self, handler: Callable[[Any], type[BaseHTTPRequestHandler]], default: Callable[[], R]
    ) -> None:
        self._default = default
        self._queue: deque[R] = deque()
        self._lock = threading.Lock()
        self._counter = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=type(self).__name__, daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def _push(self, reply: R) -> Self:
        with self._lock:
            self._queue.append(reply)
        return self

    def _next(self) -> R:
        with self._lock:
            return self._queue.popleft() if self._queue else self._default()

    def _id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}_{self._counter:04d}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
