"""Loopback stand-ins for a webhook receiver, the Telegram Bot API and a Discord webhook.

One ``FakeEndpoint`` answers every POST from a script: each request takes the next scripted
answer (status, headers, JSON) or, when the script is empty, 200. ``hang`` makes it hold every
request until ``close``. Telegram's ``getUpdates`` is answered from ``updates`` (each handed
out once). Every request is kept with its arrival time.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeEndpoint:
    def __init__(self) -> None:
        self.requests: list[tuple[float, str, Any]] = []
        self.script: list[tuple[int, dict[str, str], Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.hang = False
        self.released = threading.Event()
        self.cond = threading.Condition()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                if self.path.endswith("/getUpdates"):
                    with endpoint.cond:
                        updates, endpoint.updates = endpoint.updates, []
                    self._answer(200, {}, {"ok": True, "result": updates})
                    return
                with endpoint.cond:
                    endpoint.requests.append((time.monotonic(), self.path, body))
                    endpoint.cond.notify_all()
                    scripted = endpoint.script.pop(0) if endpoint.script else None
                if endpoint.hang:
                    endpoint.released.wait(30)
                    return
                status, headers, answer = scripted or (200, {}, {"ok": True})
                self._answer(status, headers, answer)

            def _answer(self, status: int, headers: dict[str, str], answer: Any) -> None:
                data = json.dumps(answer).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self, path_end: str = "") -> list[Any]:
        with self.cond:
            return [b for _, p, b in self.requests if p.endswith(path_end)]

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"{len(self.requests)} requests, expected {count}")

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
