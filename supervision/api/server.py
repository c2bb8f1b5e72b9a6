"""``ApiService``: the HTTP API, its event stream and the dashboard, in the API's own process
(``supervision.api.process`` starts it and carries its calls to the trading process).

FastAPI on uvicorn, on the API process's main thread; route handlers that call the facade run
on the loop's worker threads (each call waits for the trading process's answer). Nothing on
the trading path waits for this server: the actors only publish events, which the trading
process's journal keeps and sends over, and the stream reads the copy
(``supervision.api.events``).

Guard (``_Guard``, in front of every request): every path under ``/api/`` needs the bearer
token (``/health`` and the dashboard's static files do not: they hold no data); wrong tokens
are slowed down per client address; bodies over ``max_body_bytes`` get 413 before the app sees
them; every answer gets headers that keep browsers from sniffing, framing or caching it, and
none sets a cookie. CORS is off unless ``[api] cors_origins`` lists origins.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from loguru import logger
from prometheus_client import Counter, Gauge

from supervision.api.auth import BadTokenThrottle
from supervision.api.events import EventStream
from supervision.api.queries import jsonable

STATIC = Path(__file__).resolve().parent / "static"
STATUS_MAX_AGE_S = 0.25
"""A status answer is at most this old (one snapshot serves every client meanwhile)."""
WORKER_THREADS = 4
PREFIX = "trade_conductor"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY")]
_API_HEADERS = [(b"cache-control", b"no-store")]
_CSP = (b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_PAGE_HEADERS = [(b"content-security-policy", _CSP)]


class ApiMetrics:
    """The API's Prometheus series, in the system's own registry."""

    def __init__(self, registry: Any) -> None:
        self.requests = Counter(f"{PREFIX}_api_requests", "API requests by route and status",
                                ["method", "route", "status"], registry=registry)
        self.auth_failures = Counter(f"{PREFIX}_api_auth_failures",
                                     "API requests refused for a missing or wrong token",
                                     registry=registry)
        self.stream_clients = Gauge(f"{PREFIX}_api_event_stream_clients",
                                    "Clients connected to the event stream", registry=registry)


async def _answer(send: Send, status: int, error: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": error}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class _Guard:
    """The ASGI layer in front of the app; see the module docstring."""

    def __init__(self, app: Any, *, token: Any, throttle: BadTokenThrottle, max_body: int,
                 metrics: ApiMetrics) -> None:
        self.app = app
        self.token = token
        self.throttle = throttle
        self.max_body = max_body
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        api = path.startswith("/api/")
        status = [0]

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"set-cookie"]
                extra = _API_HEADERS if api or path == "/health" else _PAGE_HEADERS
                message["headers"] = [*headers, *_HEADERS, *extra]
            await send(message)

        try:
            if api and not await self._authorized(scope):
                status[0] = 401
                await _answer(guarded_send, 401, "missing or wrong bearer token: send "
                              "'Authorization: Bearer <token>' (the token file is named at "
                              "start)", [(b"www-authenticate", b'Bearer realm="trade-conductor"')])
                return
            body = await self._body(scope, receive)
            if body is None:
                await _answer(guarded_send, 413, f"request body is larger than "
                              f"{self.max_body} bytes ([api] max_body_bytes)")
                return
            await self.app(scope, _replay(body, receive), guarded_send)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or ("static" if not api else "unmatched")
            self.metrics.requests.labels(scope["method"], label, str(status[0] or 500)).inc()

    async def _authorized(self, scope: Scope) -> bool:
        header = next((v.decode("latin-1") for k, v in scope["headers"]
                       if k == b"authorization"), None)
        client = scope["client"][0] if scope.get("client") else "?"
        if self.token.matches(header):
            self.throttle.succeeded(client)
            return True
        self.metrics.auth_failures.inc()
        delay = self.throttle.failed(client)
        if delay:
            await asyncio.sleep(delay)
        return False

    async def _body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole request body (small by design), or None when it is over the limit."""
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return None
        if scope["method"] in ("GET", "HEAD", "OPTIONS") and length is None:
            return b""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the disconnect, when it comes

    return replay


class ApiService:
    """The API's web side, in the API process (``supervision.api.process``): the routes over
    ``system`` (a ``RemoteSystem``), the event stream over ``system.journal`` (the copy the
    trading process keeps filled), the dashboard and the guard, served on ``listening``."""

    def __init__(self, system: Any, settings: Any, token: Any, listening: socket.socket, *,
                 hello: dict[str, Any], metrics: ApiMetrics, ask_timeout: float = 5.0,
                 on_serving: Callable[[], None] = lambda: None) -> None:
        self.system = system
        self.settings = settings
        self.token = token
        self.metrics = metrics
        self.ask_timeout = ask_timeout
        self._socket = listening
        self._on_serving = on_serving
        self.stream = EventStream(
            system.journal, self._status_json, hello,
            status_interval_s=settings.status_interval_s,
            on_clients=self.metrics.stream_clients.set)
        self._status_lock = threading.Lock()
        self._status_cache: tuple[float, dict[str, Any] | None, bytes] = (0.0, None, b"")
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _status_json(self) -> dict[str, Any]:
        """The status as JSON values (the event stream's snapshots)."""
        return self._status()[0]

    def _status_body(self) -> bytes:
        """The status as the JSON body ``/status`` sends, encoded once per build."""
        return self._status()[1]

    def _status(self) -> tuple[dict[str, Any], bytes]:
        """The status, built at most once per ``STATUS_MAX_AGE_S`` however many clients ask:
        20 pollers each building their own held the GIL often enough to raise the pairs'
        tick -> decision p99 a hundredfold (bench.api_load). It is encoded once per build
        too, not per request as a route that returns a dict is."""
        with self._status_lock:
            built, value, body = self._status_cache
            now = time.monotonic()
            if value is None or now - built >= STATUS_MAX_AGE_S:
                value = jsonable(self.system.status(timeout=min(2.0, self.ask_timeout)))
                body = json.dumps(value, separators=(",", ":")).encode()
                self._status_cache = (now, value, body)
            return value, body

    def app(self) -> Any:
        """The ASGI application: the routes, the dashboard, the guard (and CORS if set)."""
        from fastapi import FastAPI
        from fastapi.staticfiles import StaticFiles
        from starlette.middleware.cors import CORSMiddleware

        from supervision.api.routes import install

        app = FastAPI(title="trade-conductor", version="1",
                      description="Watch and steer a running trade-conductor. Every route but "
                                  "/health needs 'Authorization: Bearer <token>'.",
                      openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
        app.state.system = self.system
        app.state.stream = self.stream
        app.state.status_body = self._status_body
        install(app)
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="dashboard")
        app.add_middleware(_Guard, token=self.token, throttle=BadTokenThrottle(),
                           max_body=self.settings.max_body_bytes, metrics=self.metrics)
        if self.settings.cors_origins:
            app.add_middleware(CORSMiddleware, allow_origins=list(self.settings.cors_origins),
                               allow_credentials=False,
                               allow_methods=["GET", "POST", "PUT", "DELETE"],
                               allow_headers=["Authorization", "Content-Type", "Last-Event-ID"])
        return app

    def serve(self) -> None:
        """Serve until ``stop`` (on this thread: the API process's main one)."""
        import uvicorn

        config = uvicorn.Config(self.app(), log_config=None, access_log=False,
                                lifespan="off", timeout_graceful_shutdown=1,
                                server_header=False, date_header=False)
        self._server = uvicorn.Server(config)

        async def serve() -> None:
            import anyio.to_thread

            # Handlers wait on the trading process on worker threads; a few are enough.
            anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
            self._loop = asyncio.get_running_loop()
            self.stream.open()
            self._on_serving()
            await self._server.serve(sockets=[self._socket])

        try:
            asyncio.run(serve())
        except Exception:  # noqa: BLE001 - the API dies alone; trading goes on
            logger.exception("the API server failed; trading goes on without it")

    def stop(self) -> None:
        """Any thread: end the streams and let uvicorn stop."""
        server, loop = self._server, self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                loop.call_soon_threadsafe(self.stream.close)
        if server is not None:
            server.should_exit = True
