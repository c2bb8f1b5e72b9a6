"""A loopback fake Binance spot exchange for tests that drive the real ccxt client.

``FakeBinance`` serves the subset of Binance spot's REST API and market streams that
``ccxt.binance``, ``ccxt.async_support.binance`` and ``ccxt.pro.binance`` (ccxt 4.5) use, on
127.0.0.1 at a free port, from an aiohttp server on its own event-loop thread, and keeps its
own ledger (balances, orders, fills, public tape). Tests therefore exercise ccxt's real
request signing, parsing and error mapping. Nothing leaves 127.0.0.1.

Use::

    with FakeBinance(markets={"BTC/USDT": {"price": 50_000}},
                     balances={"USDT": 10_000}) as fake:
        exchange = ccxt.binance(fake.ccxt_config(timeout=2000))
        exchange.create_order("BTC/USDT", "market", "buy", 0.01,
                              params={"clientOrderId": "c-1"})
        assert fake.orders()[0].status == "FILLED"

Control API (thread-safe plain methods; decimals come back as ``Decimal``)
- ``FakeBinance(markets=None, balances=None, api_key="fake-api-key", secret="fake-secret",
  *, fee_rate=0)``: ``markets`` is a list of symbols or ``MarketSpec``s, or a dict symbol ->
  ``MarketSpec`` | kwargs of ``MarketSpec`` | None (default: BTC/USDT and ETH/USDT, tick 0.01,
  step and min qty 0.00001, min notional 5, no price); ``balances`` asset -> free amount
  (default 10,000 USDT); ``fee_rate`` is charged on every fill in the asset received.
- ``start()``/``stop()`` or ``with``; ``url`` (``http://127.0.0.1:<port>``), ``ws_url``.
- ``ccxt_config(**extra)``: the dict for ``ccxt.binance(...)``/``ccxt.pro.binance(...)``;
  ``extra`` merges over it (nested dicts such as ``options`` key by key).
- ``set_price(symbol, price, spread=0, size=None)``: bid/ask = price -/+ spread/2 (rounded out
  to the tick), last = price; ``set_book(symbol, bid, ask, bid_qty, ask_qty)`` sets them exactly.
- ``trade(symbol, price, amount, side="buy")``: a public trade (``side`` is the taker's).
- ``set_balance(asset, free, locked=None)``; ``seed_klines(symbol, interval, rows)`` with rows
  ``[open_ms, open, high, low, close, volume]`` (history for fetch_ohlcv);
  ``seed_trades(symbol, rows)`` with rows ``[time_ms, price, qty, side]`` (history for
  fetch_trades / aggTrades).
- ``orders()`` -> ``[OrderRecord]``, ``my_trades()`` -> ``[TradeRecord]``, ``balances()`` ->
  ``{asset: BalanceRecord(free, locked, .total)}``, ``public_trades(symbol)``, ``markets``.
- ``requests`` -> ``[RequestRecord(method, path, params, time_ms, api_key, fault, handled)]``
  in arrival order (``fault``: the kind of the injected fault that hit it; ``handled``: the
  exchange acted on it, False where a fault answered in its place),
  ``params`` without ``signature`` (``record.get("newClientOrderId")``); ``clear_requests()``.
- ``inject(fault, path=None, times=1, *, method=None, **options)``, ``clear_faults()``,
  ``pending_faults()`` (see Faults).
- ``to_toml(table)``: a config file's text (for a system started as a subprocess).
- ``wait_for_subscription(symbol, channel="trade", timeout=5.0)``: block until a live socket
  subscribed (call before publishing, so the event cannot race the SUBSCRIBE; in async tests
  through ``asyncio.to_thread``); ``ws_connections()``, ``subscriptions()``.

The ccxt config (what ``ccxt_config`` sets, and why)
- ``urls.api``: every REST and websocket URL ccxt.pro.binance knows, re-pointed at the fake
  (REST keeps its path: ``public``/``private`` -> ``<url>/api/v3``, ``sapi`` ->
  ``<url>/sapi/v1``...; ws ``spot``/``margin`` -> ``ws_url``; other sockets -> a path the fake
  refuses). An endpoint the fake lacks answers HTTP 404 ``{"code": -1020}`` naming it, which
  ccxt raises as ``BadRequest`` (a plain 404 would be a retryable ExchangeNotAvailable).
- ``options.fetchMarkets = {"types": ["spot"]}``: else load_markets also calls fapi and dapi
  exchangeInfo. ``options.fetchMargins = False``: else it calls sapi margin/allPairs and
  margin/isolated/allPairs when keys are set. ``options.fetchCurrencies = False``: else it
  calls sapi capital/config/getall. ``options.defaultType = "spot"``.
- ``options.fetchOpenOrders.warnWithoutSymbol = False`` (else fetch_open_orders() without a
  symbol raises ExchangeError); ``enableRateLimit = False``.
- ``apiKey``/``secret``: the fake's. Pass ``timeout`` (ms) yourself; keep it small in tests.

Endpoints (Binance's paths, params, fields and error codes)
- Public: GET /api/v3/ping, time, exchangeInfo (symbol/symbols; PRICE_FILTER, LOT_SIZE,
  MARKET_LOT_SIZE, NOTIONAL; orderTypes LIMIT, LIMIT_MAKER, MARKET only, so ccxt refuses other
  types client-side), ticker/24hr, ticker/bookTicker, ticker/price, avgPrice, depth (one
  level a side), trades, aggTrades (what fetch_trades uses), klines (fetch_ohlcv: seeded
  history plus candles built from live prices).
- Signed (``X-MBX-APIKEY`` + HMAC-SHA256 over query+body, ``timestamp`` within
  ``recvWindow``): POST /api/v3/order (MARKET with quantity or quoteOrderQty, LIMIT with
  GTC/IOC/FOK, LIMIT_MAKER; newClientOrderId; newOrderRespType ACK/RESULT/FULL),
  POST /api/v3/order/test, GET and DELETE /api/v3/order (orderId or origClientOrderId),
  GET and DELETE /api/v3/openOrders, GET /api/v3/allOrders, GET /api/v3/myTrades,
  GET /api/v3/account (omitZeroBalances).
- Websocket: ``ws_url`` (``/stream``; also ``/ws``) and any sub-path (ccxt.pro connects to
  ``/stream/<n>``), SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS; pushes ``<id>@trade``,
  ``@bookTicker``, ``@ticker`` (24hrTicker) and ``@miniTicker`` (what watch_ticker uses).
  The URL contains "/stream" because ccxt.pro tells spot sockets by that substring.

Matching: one price level a side, unlimited size for takers. Market orders fill in full at
the ask/bid (an empty book expires them); marketable limits fill at once at the touch; resting
limits fill as makers at their own price when set_price/set_book moves the touch through them
(in full), or when ``trade`` crosses them (up to the trade's amount; at an equal price only if
the taker was on the other side). Fills also go on the public tape and ``@trade`` streams.

Refusals, and what ccxt 4.5 raises (measured in tests/test_fake_exchange.py)
- unknown key -2015 (401) and bad signature -1022 -> AuthenticationError; but -2015 after one
  successful private call -> DDoSProtection (ccxt reads it as a temporary ban).
- -2013 "Order does not exist." (fetch) and -2011 "Unknown order sent." (cancel) ->
  OrderNotFound.
- -2010 "Account has insufficient balance for requested action." -> InsufficientFunds;
  -2010 "Duplicate order sent." (newClientOrderId of an open order) -> InvalidOrder;
  -2010 "Order would immediately match and take." (post-only) -> OrderImmediatelyFillable.
- -1013 "Filter failure: LOT_SIZE" / "PRICE_FILTER" -> InvalidOrder, but
  "Filter failure: NOTIONAL" -> BadRequest. ccxt already rounds amount and price to the step
  and tick, and raises InvalidOrder itself when they round to zero.
- -1021 (timestamp outside recvWindow) -> InvalidNonce.
Against loopback URLs ccxt skips its spot-only code table (it picks tables by hostname). Of
the codes the fake sends only -1131 (recvWindow above 60000) is in it: BadRequest on Binance,
ExchangeError against the fake. Everything above matches real Binance.

Faults (``inject``): ``path``/``method`` narrow the match (``None``: any request); ``times``
requests are hit (``None``: until ``clear_faults()``).
- ``http_429`` (Retry-After ``retry_after`` s, default 1) and ``http_418`` (default 2) ->
  DDoSProtection (a NetworkError), not RateLimitExceeded.
- ``http_5xx``: ``status`` 503 (default; body Binance's -1001 JSON -> OperationFailed, which is
  NOT a NetworkError) or 502 (HTML body -> ExchangeNotAvailable); ``body="html"|"json"``.
- ``malformed_json``: 200 with a non-JSON body. ccxt raises nothing: fetch_ticker returns a
  ticker of Nones, create_order an order whose id and status are None, fetch_balance an empty
  balance.
- ``http_5xx``/``malformed_json`` with ``process=True``: the request executes, the reply is lost.
- ``accept_then_timeout``: executes (an order is recorded and filled), then holds the reply
  ``delay`` s (default 30, cut short by ``stop``) -> RequestTimeout at the client's timeout.
- ``insufficient_balance``: the next order placement gets -2010 insufficient balance.
- ``hide_trades``: as an exchange that lists trades late: matching replies carry none of the
  account's trades (myTrades answers ``[]``, an order reply has no ``fills``); the trades
  are there again once the fault is spent or cleared.
- ``ws_drop``: closes every websocket now (``abrupt=True``: TCP abort, no close frame); a
  pending ccxt.pro watch raises NetworkError and the next watch reconnects and resubscribes.

Not supported: user-data streams (watch_orders/watch_balance), ws-api order placement,
OCO/stop/iceberg orders, margin and futures, self-trade prevention, order amendment, rate
limiting (use the http_429 fault), clock skew control.
"""

from ._config_file import to_toml
from ._ledger import ApiError, BalanceRecord, PublicTrade
from ._records import MarketSpec, OrderRecord, RequestRecord, TradeRecord
from ._server import FAULTS, FakeBinance

__all__ = [
    "FAULTS",
    "ApiError",
    "BalanceRecord",
    "FakeBinance",
    "MarketSpec",
    "OrderRecord",
    "PublicTrade",
    "RequestRecord",
    "TradeRecord",
    "to_toml",
]
