"""A running system on a scripted feed with its API on a free loopback port, and a small HTTP
client for it (the standard library's, so the tests read exactly what goes over the wire)."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from supervision import TradingSystem, build_config
from tests.helpers import EventLog, endless_chop

TOKEN = "test-token-" + "x" * 24
PRICES = {"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0}
FLIP = {"name": "tests.helpers:Flip", "params": {"period": 5}}
"""Enters and exits every five ticks: fills all the time."""
HOLD = {"name": "tests.helpers:Flip", "params": {"hold_below": 1e9}}
"""Buys once and holds."""


class Client:
    """HTTP/1.1 to the API; every call returns (status, decoded JSON or text, headers)."""

    def __init__(self, base_url: str, token: str | None = TOKEN) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = token

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = "",
             raw: bytes | None = None, headers: dict[str, str] | None = None,
             timeout: float = 10.0, source: str | None = None
             ) -> tuple[int, Any, dict[str, str]]:
        """``source``: the loopback address to send from (the server slows wrong tokens per
        client address)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout,
                                          source_address=None if source is None
                                          else (source, 0))
        sent = dict(headers or {})
        use = self.token if token == "" else token
        if use is not None:
            sent["Authorization"] = f"Bearer {use}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=sent)
            answer = conn.getresponse()
            text = answer.read().decode()
            got = {k.lower(): v for k, v in answer.getheaders()}
        finally:
            conn.close()
        try:
            decoded: Any = json.loads(text)
        except ValueError:
            decoded = text
        return answer.status, decoded, got

    def get(self, path: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call("POST", path, body, **kwargs)


@contextlib.contextmanager
def serving(tmp_path: Any, monkeypatch: Any, *, strategy: dict[str, Any] | None = None,
            api: dict[str, Any] | None = None, notify: dict[str, Any] | None = None,
            interval_ms: int = 100, speed: float = 1.0, simulator: bool = False,
            **values: Any) -> Iterator[tuple[TradingSystem, Client, EventLog]]:
    """A started system trading both pairs on ``endless_chop`` (10 ticks a second each at
    speed 1), or on the embedded simulator, with the API on port 0 and ``TOKEN`` set in the
    environment."""
    monkeypatch.setenv("CONDUCTOR_API_TOKEN", TOKEN)
    config = build_config({}, {
        "pairs": ",".join(PRICES), "state_db": str(tmp_path / "state.sqlite"), "speed": speed,
        "strategy": strategy or FLIP, "log_dir": str(tmp_path),
        "api": {"port": 0, "token_file": str(tmp_path / "api-token"), **(api or {})},
        **({"notify": notify} if notify is not None else {}), **values})
    stop = threading.Event()
    log = EventLog()
    source = None if simulator else endless_chop(PRICES, stop, int(time.time() * 1000),
                                                 interval_ms=interval_ms)
    system = TradingSystem(config, source=source)
    system.subscribe(log)
    try:
        with system:
            assert system.api_url is not None
            yield system, Client(system.api_url), log
    finally:
        stop.set()
