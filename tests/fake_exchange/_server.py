"""``FakeBinance``: the aiohttp server (HTTP + websocket) in front of the ledger.

Runs one event loop on its own daemon thread ("fake-binance-<port>"); every request is
handled there, and the ledger is called synchronously under its lock. Test threads use the
plain control methods, which are thread-safe; those that push websocket events wait (up to
5 s) until the events are written to the sockets. If the loop thread dies, ``start`` raises
what killed it; requests in flight at ``stop`` are answered or aborted within ~1 s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
from aiohttp import WSMsgType, web

from . import _wire
from ._ledger import ApiError, BalanceRecord, Event, Ledger, PublicTrade, now_ms
from ._records import MarketSpec, OrderRecord, RequestRecord, TradeRecord, market_specs
from ._wire import Json

FAULTS = ("http_429", "http_418", "http_5xx", "accept_then_timeout", "malformed_json",
          "ws_drop", "insufficient_balance", "hide_trades")
_BEFORE = ("http_429", "http_418", "http_5xx", "malformed_json")  # answered instead of handling
_ORDER_PATH = "/api/v3/order"
_PUSH_TIMEOUT_S = 5.0
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}


@attrs.define
class _Fault:
    kind: str
    path: str | None
    method: str | None
    remaining: int | None  # None: until clear_faults()
    options: dict[str, Any]

    def matches(self, method: str, path: str) -> bool:
        if self.kind == "insufficient_balance" and (method, path) != ("POST", _ORDER_PATH):
            return False
        return ((self.path is None or self.path == path)
                and (self.method is None or self.method == method))


@attrs.define(eq=False)
class _Socket:
    ws: web.WebSocketResponse
    transport: Any
    streams: set[str]


_Handler = Callable[[Mapping[str, str], "_Fault | None"], "tuple[Any, list[Event]]"]


class FakeBinance:
    """A loopback Binance spot exchange for ccxt; see the package docstring for the contract."""

    def __init__(self, markets: object = None, balances: Mapping[str, object] | None = None,
                 api_key: str = "fake-api-key", secret: str = "fake-secret", *,
                 fee_rate: object = 0) -> None:
        self.api_key = api_key
        self.secret = secret
        self.ledger = Ledger(market_specs(markets),
                             {"USDT": 10_000} if balances is None else balances, fee_rate)
        self._lock = threading.Lock()  # guards _faults and _requests
        self._faults: list[_Fault] = []
        self._requests: list[RequestRecord] = []
        self._subs = threading.Condition()  # guards _sockets' membership and streams
        self._sockets: list[_Socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._port: int | None = None
        self._routes: dict[tuple[str, str], tuple[bool, _Handler]] = self._route_table()

    # ------------------------------------------------------------------- lifecycle
    def __enter__(self) -> FakeBinance:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> None:
        """Listen on a free port of 127.0.0.1; returns once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("FakeBinance already started")
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True,
                                        name="fake-binance")
        self._thread.start()
        self._port = ready.result(timeout)
        self._thread.name = f"fake-binance-{self._port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Close every socket and the listener; idempotent."""
        loop, thread, stopping = self._loop, self._thread, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"{thread.name} did not stop within {timeout} s")
        self._thread = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (Binance's REST root; paths are ``/api/v3/...``)."""
        return f"http://127.0.0.1:{self._require_port()}"

    @property
    def ws_url(self) -> str:
        """The spot stream root that ccxt.pro appends ``/<n>`` to.

        It contains ``/stream`` because ccxt.pro tells spot sockets from futures ones by
        that substring of the URL (``binance.is_spot_url``).
        """
        return f"ws://127.0.0.1:{self._require_port()}/stream"

    def _require_port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeBinance is not started (use it as a context manager)")
        return self._port

    # ----------------------------------------------------------------- ccxt config
    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        """The config for ``ccxt.binance(...)``, its async twin and ``ccxt.pro.binance(...)``.

        Every URL ccxt knows is pointed at the fake, so nothing can leave 127.0.0.1;
        ``extra`` is merged over the result (dicts such as ``options`` merge key by key).
        """
        import ccxt.pro

        described = ccxt.pro.binance.describe(object.__new__(ccxt.pro.binance))
        api = self._loopback_urls(described["urls"]["api"])
        config: dict[str, Any] = {
            "apiKey": self.api_key,
            "secret": self.secret,
            # The fake has no rate limit; ccxt's limiter would only slow tests down.
            "enableRateLimit": False,
            "urls": {"api": api},
            "options": {
                "defaultType": "spot",
                # load_markets would also fetch futures (fapi/dapi) exchangeInfo ...
                "fetchMarkets": {"types": ["spot"]},
                # ... the sapi margin pair lists (when keys are set) ...
                "fetchMargins": False,
                # ... and sapi capital/config/getall for currencies.
                "fetchCurrencies": False,
                # fetchOpenOrders() without a symbol otherwise raises to warn about its weight.
                "fetchOpenOrders": {"warnWithoutSymbol": False},
            },
        }
        return _merge(config, extra)

    def _loopback_urls(self, urls: Mapping[str, Any], *, ws: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in urls.items():
            if isinstance(value, Mapping):
                out[key] = self._loopback_urls(value, ws=ws or key == "ws")
            elif ws and key in ("spot", "margin") and "ws-api" not in str(value):
                out[key] = self.ws_url
            elif ws:  # futures, options and ws-api sockets: the fake refuses the handshake
                out[key] = f"ws://127.0.0.1:{self._require_port()}/unsupported/{key}"
            else:
                out[key] = self.url + urlsplit(str(value)).path
        return out

    # ------------------------------------------------------------------ market control
    def set_price(self, symbol: str, price: object, spread: object = 0,
                  size: object = None) -> None:
        """Move bid/ask to ``price -/+ spread/2`` (rounded out to the tick) and last to price.

        Resting limits the new touch crosses fill in full, as makers at their own price;
        ``@bookTicker``/``@ticker``/``@trade`` events go out before this returns.
        """
        self._push(self.ledger.set_price(symbol, price, spread, size))

    def set_book(self, symbol: str, bid: object, ask: object, bid_qty: object = None,
                 ask_qty: object = None) -> None:
        """Set the touch exactly (same fills and events as ``set_price``)."""
        self._push(self.ledger.set_book(symbol, bid, ask, bid_qty, ask_qty))

    def trade(self, symbol: str, price: object, amount: object, side: str = "buy") -> None:
        """A public trade of ``amount`` at ``price``; ``side`` is the taker's.

        Resting limits it crosses fill first (best price, then oldest), as makers at their
        own price, up to ``amount``: a buy limit fills if its price is above ``price``, or
        equal to it when the taker sold (and mirror-wise for sells). Each fill and the rest
        of the amount are pushed on ``@trade`` streams.
        """
        self._push(self.ledger.public_trade(symbol, price, amount, side))

    def set_balance(self, asset: str, free: object, locked: object = None) -> None:
        self.ledger.set_balance(asset, free, locked)

    def seed_klines(self, symbol: str, interval: str, rows: Any) -> None:
        """History for ``GET /api/v3/klines`` (fetch_ohlcv): rows of ccxt's OHLCV shape,
        ``[open_ms, open, high, low, close, volume]``. Candles built from live prices
        (set_price, trades) replace seeded ones of the same bucket."""
        self.ledger.seed_klines(symbol, interval, rows)

    def seed_trades(self, symbol: str, rows: Any) -> None:
        """Past public trades for ``GET /api/v3/aggTrades`` (fetch_trades with ``since``):
        rows ``[time_ms, price, qty, side]``, ``side`` the taker's; ids are given in time
        order. Nothing is streamed."""
        self.ledger.seed_trades(symbol, rows)

    # ------------------------------------------------------------------ ledger access
    def orders(self) -> list[OrderRecord]:
        """Every order ever accepted, oldest first."""
        return self.ledger.orders()

    def my_trades(self) -> list[TradeRecord]:
        """Every fill of the account's orders, oldest first."""
        return self.ledger.my_trades()

    def balances(self) -> dict[str, BalanceRecord]:
        return self.ledger.balances()

    def public_trades(self, symbol: str) -> list[PublicTrade]:
        return self.ledger.public_trades(symbol)

    @property
    def markets(self) -> dict[str, MarketSpec]:
        return dict(self.ledger.specs)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every HTTP request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------------- faults
    def inject(self, fault: str, path: str | None = None, times: int | None = 1, *,
               method: str | None = None, **options: Any) -> None:
        """Make the next ``times`` matching requests fail (``times=None``: until cleared).

        ``path`` (e.g. ``"/api/v3/order"``) and ``method`` narrow the match; ``None`` matches
        any request. Options: ``retry_after`` (s, http_429/http_418), ``status`` (5xx, default
        503; http_5xx), ``body`` ("html"|"json", http_5xx), ``process`` (also execute the request,
        http_5xx/malformed_json), ``delay`` (s, accept_then_timeout, default 30: cut short
        by ``stop``), ``abrupt`` (ws_drop: abort TCP instead of a close frame). ``ws_drop``
        acts at once and ignores ``path``/``times``.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; valid faults: {', '.join(FAULTS)}")
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None, got {times}")
        if fault == "ws_drop":
            self._call_soon(self._drop_sockets(abrupt=bool(options.get("abrupt", False))))
            return
        with self._lock:
            self._faults.append(_Fault(fault, path, method and method.upper(), times,
                                       dict(options)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> list[str]:
        with self._lock:
            return [f.kind for f in self._faults]

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    # --------------------------------------------------------------- websocket control
    def wait_for_subscription(self, symbol: str, channel: str = "trade",
                              timeout: float = 5.0) -> None:
        """Block until some live socket subscribed to ``symbol``'s ``channel`` stream.

        Use before publishing, so the event cannot race the client's SUBSCRIBE; in async
        tests: ``await asyncio.to_thread(fake.wait_for_subscription, "BTC/USDT")``.
        """
        stream = f"{self.ledger.spec(symbol).id.lower()}@{channel}"
        with self._subs:
            if not self._subs.wait_for(lambda: any(stream in s.streams for s in self._sockets),
                                       timeout):
                raise TimeoutError(f"no websocket subscribed to {stream} within {timeout} s")

    def ws_connections(self) -> int:
        """How many websocket connections are open now."""
        with self._subs:
            return len(self._sockets)

    def subscriptions(self) -> list[set[str]]:
        with self._subs:
            return [set(s.streams) for s in self._sockets]

    def _push(self, events: list[Event]) -> None:
        if events and self._loop is not None and self._thread is not None:
            self._call_soon(self._broadcast(events))

    def _call_soon(self, coro: Any) -> None:
        if self._loop is None or self._thread is None:
            coro.close()
            raise RuntimeError("FakeBinance is not started")
        if threading.current_thread() is self._thread:
            coro.close()  # waiting here for our own loop would deadlock it
            raise RuntimeError("FakeBinance control methods must not run on its own loop")
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(_PUSH_TIMEOUT_S)

    async def _broadcast(self, events: list[Event]) -> None:
        with self._subs:
            targets = [(s, list(s.streams)) for s in self._sockets]
        for stream, payload in events:
            text = json.dumps(payload)
            for sock, streams in targets:
                if stream in streams and not sock.ws.closed:
                    # A client that went away is unregistered by its own handler.
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await sock.ws.send_str(text)

    async def _drop_sockets(self, *, abrupt: bool) -> None:
        with self._subs:
            dropped, self._sockets = self._sockets, []
            self._subs.notify_all()
        for sock in dropped:
            if abrupt and sock.transport is not None:
                sock.transport.abort()
        if not abrupt:
            await asyncio.gather(*(s.ws.close(code=1001, message=b"fake ws_drop")
                                   for s in dropped), return_exceptions=True)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(timeout=1.0)
        await ws.prepare(request)
        tail = request.match_info.get("tail", "")
        sock = _Socket(ws, request.transport, {s for s in tail.split("/") if "@" in s})
        with self._subs:
            self._sockets.append(sock)
            self._subs.notify_all()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str(json.dumps(self._ws_command(sock, msg.data)))
        finally:
            with self._subs:
                if sock in self._sockets:
                    self._sockets.remove(sock)
                self._subs.notify_all()
        return ws

    def _ws_command(self, sock: _Socket, text: str) -> Json:
        try:
            command = json.loads(text)
            method, params, ident = command["method"], command.get("params", []), command["id"]
        except (ValueError, KeyError, TypeError):
            return {"error": {"code": 3, "msg": "Invalid JSON: expected an object with "
                                                "'method' and 'id'"}, "id": None}
        with self._subs:
            if method == "SUBSCRIBE":
                sock.streams.update(str(p) for p in params)
                self._subs.notify_all()
                return {"result": None, "id": ident}
            if method == "UNSUBSCRIBE":
                sock.streams.difference_update(str(p) for p in params)
                return {"result": None, "id": ident}
            if method == "LIST_SUBSCRIPTIONS":
                return {"result": sorted(sock.streams), "id": ident}
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return {"result": None, "id": ident}
        return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method}"},
                "id": ident}

    # ------------------------------------------------------------------ HTTP
    def _route_table(self) -> dict[tuple[str, str], tuple[bool, _Handler]]:
        led = self.ledger

        def public(fn: Callable[[Mapping[str, str]], Any]) -> tuple[bool, _Handler]:
            return False, lambda params, _fault: (fn(params), [])

        def signed(fn: Callable[[Mapping[str, str]], Any]) -> tuple[bool, _Handler]:
            return True, lambda params, _fault: (fn(params), [])

        def new_order(params: Mapping[str, str], fault: _Fault | None) -> tuple[Any, list[Event]]:
            return led.new_order(params, force_insufficient=_is(fault, "insufficient_balance"))

        def test_order(params: Mapping[str, str], fault: _Fault | None) -> tuple[Any, list[Event]]:
            return led.new_order(params, test=True,
                                 force_insufficient=_is(fault, "insufficient_balance"))

        v3 = "/api/v3/"
        return {
            ("GET", v3 + "ping"): public(lambda _p: {}),
            ("GET", v3 + "time"): public(lambda _p: {"serverTime": now_ms()}),
            ("GET", v3 + "exchangeInfo"): public(led.exchange_info),
            ("GET", v3 + "ticker/24hr"): public(led.ticker_24hr),
            ("GET", v3 + "ticker/bookTicker"): public(led.book_ticker),
            ("GET", v3 + "ticker/price"): public(led.ticker_price),
            ("GET", v3 + "avgPrice"): public(led.avg_price),
            ("GET", v3 + "depth"): public(led.depth),
            ("GET", v3 + "trades"): public(led.trades),
            ("GET", v3 + "aggTrades"): public(led.agg_trades),
            ("GET", v3 + "klines"): public(led.klines),
            ("POST", v3 + "order"): (True, new_order),
            ("POST", v3 + "order/test"): (True, test_order),
            ("GET", v3 + "order"): signed(led.get_order),
            ("DELETE", v3 + "order"): signed(led.cancel_order),
            ("GET", v3 + "openOrders"): signed(led.open_orders),
            ("DELETE", v3 + "openOrders"): signed(led.cancel_open_orders),
            ("GET", v3 + "allOrders"): signed(led.all_orders),
            ("GET", v3 + "myTrades"): signed(led.account_trades),
            ("GET", v3 + "account"): signed(led.account),
        }

    async def _http(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path
        query = request.query_string
        body = await request.text() if request.can_read_body else ""
        pairs = parse_qsl(query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True)
        params = {k: v for k, v in pairs if k != "signature"}
        api_key = request.headers.get("X-MBX-APIKEY")
        fault = self._take_fault(method, path)
        answered = (fault is not None and fault.kind in _BEFORE
                    and not fault.options.get("process"))
        route = self._routes.get((method, path))
        with self._lock:
            self._requests.append(RequestRecord(method=method, path=path, params=params,
                                                time_ms=now_ms(), api_key=api_key,
                                                fault=None if fault is None else fault.kind,
                                                handled=not answered and route is not None))
        if answered:
            assert fault is not None
            return _fault_reply(fault)
        if route is None:
            return _json(404, _wire.error(-1020, "This operation is not supported. (the fake "
                                                 f"Binance has no {method} {path})"))
        is_signed, handler = route
        events: list[Event] = []
        try:
            if is_signed:
                self._authenticate(api_key, query, body, dict(pairs))
            payload, events = handler(params, fault)
            if _is(fault, "hide_trades"):
                payload = _without_trades(payload)
            reply = _json(200, payload)
        except ApiError as exc:
            reply = _json(exc.status, _wire.error(exc.code, exc.msg))
        await self._broadcast(events)
        if fault is not None and fault.kind in _BEFORE:  # process=True: executed, reply lost
            return _fault_reply(fault)
        if _is(fault, "accept_then_timeout"):
            assert fault is not None and self._stopping is not None
            delay = float(fault.options.get("delay", 30.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        return reply

    def _authenticate(self, api_key: str | None, query: str, body: str,
                      params: Mapping[str, str]) -> None:
        """Binance's checks, in its order: key, signature, timestamp within recvWindow."""
        if not api_key:
            raise ApiError(401, -2014, "API-key format invalid.")
        if api_key != self.api_key:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        signature = params.get("signature")
        if not signature:
            raise ApiError(400, -1102, "Mandatory parameter 'signature' was not sent, was "
                                       "empty/null, or malformed.")
        signed = _without_signature(query) + _without_signature(body)
        expected = hmac.new(self.secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise ApiError(400, -1022, "Signature for this request is not valid.")
        try:
            timestamp = int(params.get("timestamp", ""))
        except ValueError:
            raise ApiError(400, -1102, "Mandatory parameter 'timestamp' was not sent, was "
                                       "empty/null, or malformed.") from None
        recv_window = int(params.get("recvWindow") or 5000)
        if recv_window > 60_000:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        server = now_ms()
        if timestamp > server + 1000 or server - timestamp > recv_window:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the "
                                       "recvWindow.")

    # --------------------------------------------------------------- event loop
    def _run(self, ready: concurrent.futures.Future[int]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise
        finally:
            loop.close()

    async def _serve(self, ready: concurrent.futures.Future[int]) -> None:
        self._stopping = asyncio.Event()
        app = web.Application()
        for prefix in ("/stream", "/ws"):
            app.router.add_get(prefix, self._websocket)
            app.router.add_get(prefix + "/{tail:.*}", self._websocket)
        app.router.add_route("*", "/{tail:.*}", self._http)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ready.set_result(runner.addresses[0][1])
        await self._stopping.wait()
        await self._drop_sockets(abrupt=True)
        await runner.cleanup()


def _is(fault: _Fault | None, kind: str) -> bool:
    return fault is not None and fault.kind == kind


def _without_trades(payload: Any) -> Any:
    """A reply as an exchange that lists trades late would give it: no account trades, and
    an order reply without its ``fills``."""
    if isinstance(payload, list):
        return [p for p in payload if not (isinstance(p, dict) and "isBuyer" in p)]
    if isinstance(payload, dict) and "fills" in payload:
        return {**payload, "fills": []}
    return payload


def _without_signature(raw: str) -> str:
    return "&".join(p for p in raw.split("&") if p and not p.startswith("signature="))


def _json(status: int, payload: Any) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload),
                        content_type="application/json")


def _fault_reply(fault: _Fault) -> web.Response:
    opts = fault.options
    if fault.kind == "http_429":
        return web.Response(
            status=429, content_type="application/json",
            headers={"Retry-After": str(opts.get("retry_after", 1))},
            text=json.dumps(_wire.error(-1003, "Too many requests; current limit of "
                                               "IP(127.0.0.1) is 6000 requests per minute. "
                                               "Please use the websocket for live updates "
                                               "to avoid polling the API.")))
    if fault.kind == "http_418":
        retry_after = int(opts.get("retry_after", 2))
        until = now_ms() + retry_after * 1000
        return web.Response(
            status=418, content_type="application/json",
            headers={"Retry-After": str(retry_after)},
            text=json.dumps(_wire.error(-1003, f"Way too much request weight used; IP banned "
                                               f"until {until}. Please use WebSocket Streams "
                                               "for live updates to avoid bans.")))
    if fault.kind == "http_5xx":
        status = int(opts.get("status", 503))
        if opts.get("body", "json" if status == 503 else "html") == "html":
            reason = _REASONS.get(status, "Server Error")
            return web.Response(status=status, content_type="text/html",
                                text=f"<html><body><h1>{status} {reason}</h1></body></html>")
        return _json(status, _wire.error(-1001, "Internal error; unable to process your "
                                                "request. Please try again."))
    # malformed_json: a 200 whose body is not JSON (a proxy's error page, a truncated body)
    return web.Response(status=200, content_type="application/json",
                        text='<html><body>upstream error</body></html>{"symbol":')


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out

