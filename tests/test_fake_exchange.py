"""The fake Binance, driven through the real ccxt clients (sync, async and pro).

These tests pin both the fake's behaviour and what ccxt 4.5 makes of Binance's replies (which
exception class each failure becomes), so a ccxt upgrade that changes the mapping fails here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import ccxt
import ccxt.async_support
import ccxt.pro
import pytest

from tests.fake_exchange import FakeBinance, MarketSpec

pytestmark = pytest.mark.timeout(30)

BTC = "BTC/USDT"


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(markets={BTC: {"price": 50_000}, "ETH/USDT": None},
                     balances={"USDT": 10_000, "BTC": 1}) as exchange:
        yield exchange


@pytest.fixture
def client(fake: FakeBinance) -> ccxt.binance:
    exchange = ccxt.binance(fake.ccxt_config(timeout=2000))
    exchange.load_markets()
    return exchange


def run(coro: object, timeout: float = 10.0) -> object:
    """Run one coroutine on a fresh event loop (the project has no pytest-asyncio)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- public data

def test_load_markets_reads_only_spot_exchange_info(fake: FakeBinance) -> None:
    """With ccxt_config, load_markets makes one call, and its markets carry the fake's filters."""
    exchange = ccxt.binance(fake.ccxt_config())

    markets = exchange.load_markets()

    assert sorted(markets) == [BTC, "ETH/USDT"]
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/api/v3/exchangeInfo")]
    btc = markets[BTC]
    assert btc["spot"] and btc["active"]
    assert btc["precision"] == {"amount": 0.00001, "price": 0.01, "base": 1e-08, "quote": 1e-08}
    assert btc["limits"]["amount"]["min"] == 0.00001
    assert btc["limits"]["cost"]["min"] == 5.0


def test_every_ccxt_url_points_at_the_loopback_fake(fake: FakeBinance) -> None:
    """No REST or websocket URL of the config leaves 127.0.0.1."""
    def leaves(urls: object) -> list[str]:
        if isinstance(urls, dict):
            return [u for v in urls.values() for u in leaves(v)]
        return [] if str(urls).startswith(("http://127.0.0.1:", "ws://127.0.0.1:")) else [urls]

    exchange = ccxt.pro.binance(fake.ccxt_config())

    assert leaves(exchange.urls["api"]) == []
    assert exchange.urls["api"]["ws"]["spot"] == fake.ws_url


def test_fetch_ticker_reflects_set_price(fake: FakeBinance, client: ccxt.binance) -> None:
    """set_price moves bid/ask around the price and makes it the last price."""
    fake.set_price(BTC, 51_000, spread=2)

    ticker = client.fetch_ticker(BTC)

    assert (ticker["bid"], ticker["ask"], ticker["last"]) == (50_999.0, 51_001.0, 51_000.0)
    assert client.fetch_bids_asks([BTC])[BTC]["ask"] == 51_001.0
    assert client.fetch_order_book(BTC)["bids"][0][0] == 50_999.0


def test_public_trades_appear_in_fetch_trades(fake: FakeBinance, client: ccxt.binance) -> None:
    """trade() lands on the public tape that fetch_trades (aggTrades) reads."""
    fake.trade(BTC, 50_010, 0.5, "buy")
    fake.trade(BTC, 50_005, 0.25, "sell")

    trades = client.fetch_trades(BTC)

    assert [(t["price"], t["amount"], t["side"]) for t in trades] == [
        (50_010.0, 0.5, "buy"), (50_005.0, 0.25, "sell")]
    assert client.fetch_ticker(BTC)["baseVolume"] == 0.75


def test_unsupported_endpoint_is_a_bad_request_naming_it(client: ccxt.binance) -> None:
    """An endpoint the fake lacks answers -1020 (BadRequest), not a retryable 404."""
    with pytest.raises(ccxt.BadRequest, match="no GET /sapi/v1/system/status"):
        client.fetch_status()


# ---------------------------------------------------------------------------- orders

def test_market_buy_fills_at_the_ask_and_moves_balances(fake: FakeBinance,
                                                        client: ccxt.binance) -> None:
    """A market buy fills in full at the ask; the ledger and fetch_balance agree."""
    fake.set_price(BTC, 50_000, spread=10)

    order = client.create_order(BTC, "market", "buy", 0.1, params={"clientOrderId": "mkt-1"})

    assert (order["status"], order["filled"], order["average"]) == ("closed", 0.1, 50_005.0)
    assert order["clientOrderId"] == "mkt-1"
    [record] = fake.orders()
    assert (record.client_order_id, record.status, record.executed_qty) == (
        "mkt-1", "FILLED", Decimal("0.1"))
    balances = fake.balances()
    assert balances["USDT"].free == Decimal("4999.5")
    assert balances["BTC"].free == Decimal("1.1")
    assert client.fetch_balance()["total"]["BTC"] == 1.1


def test_market_buy_with_a_price_is_sized_in_quote(fake: FakeBinance,
                                                   client: ccxt.binance) -> None:
    """ccxt turns a market buy with a price into quoteOrderQty; the fake sizes it at the ask."""
    client.create_order(BTC, "market", "buy", 0.01, 50_000)

    [request] = [r for r in fake.requests if r.path == "/api/v3/order"]
    assert request.get("quoteOrderQty") == "500" and request.get("quantity") is None
    assert fake.orders()[0].executed_qty == Decimal("0.01")


def test_limit_order_rests_is_found_by_client_id_and_cancels(fake: FakeBinance,
                                                             client: ccxt.binance) -> None:
    """A passive limit locks its funds, shows as open, and cancelling unlocks them."""
    order = client.create_order(BTC, "limit", "buy", 0.01, 49_000,
                                params={"clientOrderId": "lim-1"})

    found = client.fetch_order(None, BTC, params={"clientOrderId": "lim-1"})
    assert (found["id"], found["status"], found["remaining"]) == (order["id"], "open", 0.01)
    assert [o["clientOrderId"] for o in client.fetch_open_orders(BTC)] == ["lim-1"]
    assert fake.balances()["USDT"].locked == Decimal("490")

    canceled = client.cancel_order(order["id"], BTC)

    assert canceled["status"] == "canceled"
    assert fake.balances()["USDT"] == fake.balances()["USDT"].__class__(
        free=Decimal("10000"), locked=Decimal("0"))
    assert client.fetch_open_orders(BTC) == []
    assert client.fetch_open_orders() == []  # no symbol: allowed by ccxt_config


def test_marketable_limit_fills_at_once_at_the_touch(fake: FakeBinance,
                                                     client: ccxt.binance) -> None:
    """A buy limit above the ask fills as a taker at the ask (price improvement)."""
    order = client.create_order(BTC, "limit", "buy", 0.01, 50_100)

    assert (order["status"], order["average"]) == ("closed", 50_000.0)
    assert fake.balances()["USDT"].free == Decimal("9500")
    assert fake.balances()["USDT"].locked == 0


def test_public_trade_through_a_resting_limit_fills_it_partly(fake: FakeBinance,
                                                              client: ccxt.binance) -> None:
    """A taker sell at the limit fills the resting buy up to the trade's amount, as maker."""
    order = client.create_order(BTC, "limit", "buy", 0.15, 49_000,
                                params={"clientOrderId": "lim-2"})

    fake.trade(BTC, 49_000, 0.1, "sell")

    partly = client.fetch_order(order["id"], BTC)
    assert (partly["status"], partly["filled"], partly["remaining"]) == ("open", 0.1, 0.05)
    [fill] = client.fetch_my_trades(BTC)
    assert (fill["order"], fill["price"], fill["amount"], fill["takerOrMaker"]) == (
        order["id"], 49_000.0, 0.1, "maker")
    assert fake.my_trades()[0].client_order_id == "lim-2"


def test_a_trade_at_the_limit_by_a_buyer_does_not_fill_a_resting_buy(
        fake: FakeBinance, client: ccxt.binance) -> None:
    """Equal price fills only when the taker hit our side; a price through it always fills."""
    client.create_order(BTC, "limit", "buy", 0.1, 49_000)

    fake.trade(BTC, 49_000, 1, "buy")
    assert fake.orders()[0].status == "NEW"
    fake.trade(BTC, 48_990, 1, "buy")
    assert fake.orders()[0].status == "FILLED"


def test_an_ioc_limit_that_cannot_fill_expires_and_unlocks(fake: FakeBinance,
                                                          client: ccxt.binance) -> None:
    """timeInForce IOC below the ask expires at once; nothing stays locked."""
    order = client.create_order(BTC, "limit", "buy", 0.01, 49_000,
                                params={"timeInForce": "IOC"})

    assert (order["status"], order["filled"]) == ("expired", 0.0)
    assert fake.balances()["USDT"].locked == 0


def test_a_market_order_on_an_empty_book_expires_unfilled(fake: FakeBinance,
                                                          client: ccxt.binance) -> None:
    """With no price set for the market, Binance (and the fake) expire a market order."""
    order = client.create_order("ETH/USDT", "market", "buy", 0.01)

    assert (order["status"], order["filled"]) == ("expired", 0.0)


def test_a_trade_fills_the_best_priced_resting_order_first(fake: FakeBinance,
                                                           client: ccxt.binance) -> None:
    """A public sell through two bids fills the higher one first, up to its amount."""
    low = client.create_order(BTC, "limit", "buy", 0.1, 48_000)
    high = client.create_order(BTC, "limit", "buy", 0.1, 49_000)

    fake.trade(BTC, 47_000, 0.15, "sell")

    filled = {o.order_id: o.executed_qty for o in fake.orders()}
    assert filled == {int(high["id"]): Decimal("0.1"), int(low["id"]): Decimal("0.05")}
    assert [t.price for t in fake.public_trades(BTC)] == [Decimal(49_000), Decimal(48_000)]


def test_set_price_through_a_resting_sell_fills_it_at_its_price(
        fake: FakeBinance, client: ccxt.binance) -> None:
    """When the bid rises through a resting sell it fills in full at the sell's own price."""
    order = client.create_order(BTC, "limit", "sell", 0.5, 51_000)
    assert fake.balances()["BTC"].locked == Decimal("0.5")

    fake.set_price(BTC, 51_500)

    done = client.fetch_order(order["id"], BTC)
    assert (done["status"], done["average"]) == ("closed", 51_000.0)
    assert fake.balances()["BTC"].total == Decimal("0.5")
    assert fake.balances()["USDT"].free == Decimal("35500")


def test_fee_rate_is_charged_in_the_received_asset() -> None:
    """With fee_rate, a buy pays commission in base, a sell in quote, as Binance does."""
    with FakeBinance(markets=[MarketSpec(symbol=BTC, price=50_000)],
                     balances={"USDT": 1000}, fee_rate="0.001") as fake:
        client = ccxt.binance(fake.ccxt_config())

        order = client.create_order(BTC, "market", "buy", 0.01)

        assert order["fee"] == {"currency": "BTC", "cost": 0.00001}
        assert fake.balances()["BTC"].free == Decimal("0.00999")


def test_fetch_orders_lists_finished_orders_too(fake: FakeBinance,
                                                client: ccxt.binance) -> None:
    """allOrders reports closed and canceled orders with their client ids."""
    client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "a"})
    resting = client.create_order(BTC, "limit", "buy", 0.01, 40_000,
                                  params={"clientOrderId": "b"})
    client.cancel_order(resting["id"], BTC)

    orders = client.fetch_orders(BTC)

    assert [(o["clientOrderId"], o["status"]) for o in orders] == [
        ("a", "closed"), ("b", "canceled")]


# ---------------------------------------------------------------------------- refusals

def test_bad_signature_and_unknown_key_are_authentication_errors(fake: FakeBinance) -> None:
    """-1022 (bad signature) and -2015 (unknown key) both raise AuthenticationError."""
    wrong_secret = ccxt.binance(fake.ccxt_config(secret="not-the-secret"))
    wrong_key = ccxt.binance(fake.ccxt_config(apiKey="not-the-key"))

    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        wrong_secret.fetch_balance()
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        wrong_key.fetch_balance()
    assert fake.orders() == []


def test_a_key_refused_after_a_success_is_ddos_protection(fake: FakeBinance,
                                                          client: ccxt.binance) -> None:
    """ccxt reads -2015 after one successful private call as a temporary ban."""
    client.fetch_balance()
    client.apiKey = "revoked"

    with pytest.raises(ccxt.DDoSProtection, match="-2015"):
        client.fetch_balance()


def test_unknown_order_is_order_not_found(client: ccxt.binance) -> None:
    """-2013 (fetch) and -2011 (cancel) both raise OrderNotFound."""
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        client.fetch_order(None, BTC, params={"clientOrderId": "never-sent"})
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        client.cancel_order("123", BTC)


def test_duplicate_client_order_id_of_an_open_order_is_invalid_order(
        fake: FakeBinance, client: ccxt.binance) -> None:
    """-2010 "Duplicate order sent." is a plain InvalidOrder in ccxt (no DuplicateOrderId)."""
    client.create_order(BTC, "limit", "buy", 0.01, 40_000, params={"clientOrderId": "dup"})

    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        client.create_order(BTC, "limit", "buy", 0.01, 40_000, params={"clientOrderId": "dup"})
    assert len(fake.orders()) == 1


def test_insufficient_balance_is_insufficient_funds(fake: FakeBinance,
                                                    client: ccxt.binance) -> None:
    """Both a real shortfall and the injected fault raise InsufficientFunds, recording nothing."""
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order(BTC, "market", "buy", 1)
    fake.inject("insufficient_balance")
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order(BTC, "market", "buy", 0.001)

    assert fake.orders() == []
    client.create_order(BTC, "market", "buy", 0.001)  # the fault was used up
    assert len(fake.orders()) == 1


def test_filter_failures_map_as_ccxt_maps_them() -> None:
    """LOT_SIZE is InvalidOrder; NOTIONAL is BadRequest (ccxt maps -1013 so)."""
    spec = MarketSpec(symbol=BTC, price=50_000, min_qty="0.001", min_notional=100)
    with FakeBinance(markets=[spec]) as fake:
        client = ccxt.binance(fake.ccxt_config())

        with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
            client.create_order(BTC, "limit", "buy", 0.0005, 40_000)
        with pytest.raises(ccxt.BadRequest, match="NOTIONAL"):
            client.create_order(BTC, "limit", "buy", 0.002, 40_000)
        assert fake.orders() == []


def test_post_only_that_would_take_is_order_immediately_fillable(client: ccxt.binance) -> None:
    """LIMIT_MAKER crossing the book is refused; ccxt raises OrderImmediatelyFillable."""
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        client.create_order(BTC, "limit", "buy", 0.01, 50_001, params={"postOnly": True})


# ---------------------------------------------------------------------------- faults

@pytest.mark.parametrize(("fault", "options", "expected"), [
    ("http_429", {"retry_after": 3}, ccxt.DDoSProtection),
    ("http_418", {"retry_after": 3}, ccxt.DDoSProtection),
    ("http_5xx", {"status": 502}, ccxt.ExchangeNotAvailable),
    ("http_5xx", {"status": 503, "body": "html"}, ccxt.ExchangeNotAvailable),
    ("http_5xx", {"status": 503}, ccxt.OperationFailed),
])
def test_http_faults_raise_the_ccxt_class_measured(fake: FakeBinance, client: ccxt.binance,
                                                   fault: str, options: dict[str, object],
                                                   expected: type[Exception]) -> None:
    """429 and 418 are DDoSProtection (not RateLimitExceeded); 5xx are NetworkErrors unless the
    body is Binance's -1001 JSON, which ccxt maps to OperationFailed (not a NetworkError)."""
    fake.inject(fault, path="/api/v3/ticker/24hr", **options)

    with pytest.raises(expected) as raised:
        client.fetch_ticker(BTC)

    if fault == "http_5xx" and options.get("body") is None and options["status"] == 503:
        assert not isinstance(raised.value, ccxt.NetworkError)
    assert client.fetch_ticker(BTC)["last"] == 50_000.0  # one-shot: the next call is served


def test_429_carries_retry_after(fake: FakeBinance) -> None:
    """The Retry-After header is sent with the 429 (ccxt exposes it in last_response_headers)."""
    client = ccxt.binance(fake.ccxt_config())
    fake.inject("http_429", retry_after=7)

    with pytest.raises(ccxt.DDoSProtection):
        client.fetch_time()

    assert client.last_response_headers["Retry-After"] == "7"


def test_malformed_json_gives_an_empty_ticker_and_no_exception(fake: FakeBinance,
                                                               client: ccxt.binance) -> None:
    """A 200 with a non-JSON body: ccxt returns a ticker of Nones, raising nothing."""
    fake.inject("malformed_json")

    ticker = client.fetch_ticker(BTC)

    assert ticker["last"] is None and ticker["bid"] is None


def test_malformed_json_on_create_order_returns_an_order_without_id(
        fake: FakeBinance, client: ccxt.binance) -> None:
    """The trap for order code: ccxt returns an order whose id and status are None."""
    fake.inject("malformed_json", path="/api/v3/order", method="POST", process=True)

    order = client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "m-1"})

    assert (order["id"], order["status"]) == (None, None)
    assert fake.orders()[0].status == "FILLED"  # process=True: it did execute


def test_accept_then_timeout_times_out_but_the_order_is_filled(fake: FakeBinance) -> None:
    """The client gets RequestTimeout; the order is in the ledger and findable by client id."""
    client = ccxt.binance(fake.ccxt_config(timeout=300))
    client.load_markets()
    fake.inject("accept_then_timeout", path="/api/v3/order")

    with pytest.raises(ccxt.RequestTimeout):
        client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "lost-1"})

    assert [(o.client_order_id, o.status) for o in fake.orders()] == [("lost-1", "FILLED")]
    found = client.fetch_order(None, BTC, params={"clientOrderId": "lost-1"})
    assert found["status"] == "closed"


def test_request_log_shows_a_lookup_by_client_id_before_a_retry(
        fake: FakeBinance, client: ccxt.binance) -> None:
    """The log keeps method, path and params (signature removed) in arrival order."""
    fake.inject("http_5xx", path="/api/v3/order", status=502)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "r-1"})
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order(None, BTC, params={"clientOrderId": "r-1"})
    client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "r-1"})

    log = [(r.method, r.path, r.get("newClientOrderId") or r.get("origClientOrderId"))
           for r in fake.requests if r.path == "/api/v3/order"]
    assert log == [("POST", "/api/v3/order", "r-1"), ("GET", "/api/v3/order", "r-1"),
                   ("POST", "/api/v3/order", "r-1")]
    assert all("signature" not in r.params for r in fake.requests)
    assert all(r.api_key == fake.api_key for r in fake.requests if r.path == "/api/v3/order")


def test_inject_refuses_an_unknown_fault(fake: FakeBinance) -> None:
    """A misspelt fault names the valid ones."""
    with pytest.raises(ValueError, match="http_429"):
        fake.inject("http_249")


# ---------------------------------------------------------------------------- async clients

def test_async_client_places_and_fetches_an_order(fake: FakeBinance) -> None:
    """ccxt.async_support.binance signs and parses the same way."""
    async def scenario() -> tuple[dict, dict]:
        exchange = ccxt.async_support.binance(fake.ccxt_config(timeout=2000))
        try:
            placed = await exchange.create_order(BTC, "limit", "sell", 0.1, 52_000,
                                                 params={"clientOrderId": "async-1"})
            found = await exchange.fetch_order(placed["id"], BTC)
            return placed, found
        finally:
            await exchange.close()

    placed, found = run(scenario())  # type: ignore[misc]

    assert found["clientOrderId"] == "async-1" and found["status"] == "open"
    assert placed["id"] == found["id"]


def test_watch_trades_receives_a_published_trade(fake: FakeBinance) -> None:
    """ccxt.pro subscribes on /stream/<n>; trade() pushes a @trade event it parses."""
    async def scenario() -> list[dict]:
        exchange = ccxt.pro.binance(fake.ccxt_config(timeout=2000))
        try:
            watching = asyncio.create_task(exchange.watch_trades(BTC))
            await asyncio.to_thread(fake.wait_for_subscription, BTC, "trade")
            fake.trade(BTC, 50_100, 0.2, "buy")
            return await asyncio.wait_for(watching, 5)
        finally:
            await exchange.close()

    trades = run(scenario())

    assert [(t["symbol"], t["price"], t["amount"], t["side"]) for t in trades] == [  # type: ignore[attr-defined]
        (BTC, 50_100.0, 0.2, "buy")]


def test_watch_ticker_and_bids_asks_follow_set_price(fake: FakeBinance) -> None:
    """watch_ticker (@miniTicker) and watch_bids_asks (@bookTicker) see set_price."""
    async def scenario() -> tuple[dict, dict]:
        exchange = ccxt.pro.binance(fake.ccxt_config(timeout=2000))
        try:
            ticker = asyncio.create_task(exchange.watch_ticker(BTC))
            book = asyncio.create_task(exchange.watch_bids_asks([BTC]))
            await asyncio.to_thread(fake.wait_for_subscription, BTC, "miniTicker")
            await asyncio.to_thread(fake.wait_for_subscription, BTC, "bookTicker")
            fake.set_price(BTC, 50_200, spread=1)
            return await asyncio.wait_for(ticker, 5), await asyncio.wait_for(book, 5)
        finally:
            await exchange.close()

    ticker, book = run(scenario())  # type: ignore[misc]

    assert ticker["last"] == 50_200.0
    assert (book[BTC]["bid"], book[BTC]["ask"]) == (50_199.5, 50_200.5)


def test_ws_drop_fails_the_watch_and_the_next_watch_reconnects(fake: FakeBinance) -> None:
    """ws_drop closes every socket: the pending watch raises NetworkError, a new one works."""
    async def scenario() -> tuple[BaseException | None, list[dict]]:
        exchange = ccxt.pro.binance(fake.ccxt_config(timeout=2000))
        try:
            first = asyncio.create_task(exchange.watch_trades(BTC))
            await asyncio.to_thread(fake.wait_for_subscription, BTC)
            await asyncio.to_thread(fake.inject, "ws_drop")
            dropped = None
            try:
                await asyncio.wait_for(first, 5)
            except ccxt.NetworkError as exc:
                dropped = exc
            second = asyncio.create_task(exchange.watch_trades(BTC))
            await asyncio.to_thread(fake.wait_for_subscription, BTC)
            fake.trade(BTC, 50_300, 0.1, "sell")
            return dropped, await asyncio.wait_for(second, 5)
        finally:
            await exchange.close()

    dropped, trades = run(scenario())  # type: ignore[misc]

    assert isinstance(dropped, ccxt.NetworkError)
    assert [t["price"] for t in trades] == [50_300.0]


# ---------------------------------------------------------------------------- more endpoints

def test_fetch_ohlcv_serves_seeded_then_live_candles(fake: FakeBinance,
                                                     client: ccxt.binance) -> None:
    """Seeded history comes first; live prices build the current candle."""
    now = client.milliseconds()
    minute = now // 60_000 * 60_000
    fake.seed_klines(BTC, "1m", [[minute - 120_000, 1, 2, 0.5, 1.5, 10],
                                 [minute - 60_000, 1.5, 3, 1, 2.5, 20]])
    fake.trade(BTC, 50_050, 0.3, "buy")

    candles = client.fetch_ohlcv(BTC, "1m")

    assert candles[:2] == [[minute - 120_000, 1.0, 2.0, 0.5, 1.5, 10.0],
                           [minute - 60_000, 1.5, 3.0, 1.0, 2.5, 20.0]]
    last = candles[-1]
    assert last[0] >= minute and last[4] == 50_050.0 and last[5] == 0.3


def test_fetch_trades_since_and_fetch_order_trades(fake: FakeBinance,
                                                   client: ccxt.binance) -> None:
    """fetch_trades honours since (aggTrades startTime); fetch_order_trades filters by order."""
    fake.trade(BTC, 50_010, 0.1, "buy")
    since = fake.public_trades(BTC)[-1].time_ms + 1
    order = client.create_order(BTC, "market", "buy", 0.02)

    later = client.fetch_trades(BTC, since=since)
    mine = client.fetch_order_trades(order["id"], BTC)

    assert all(t["timestamp"] >= since for t in later)
    assert [t["amount"] for t in mine] == [0.02]
    assert mine[0]["order"] == order["id"]


def test_a_stale_timestamp_is_invalid_nonce(fake: FakeBinance) -> None:
    """A timestamp older than recvWindow answers -1021, which ccxt raises as InvalidNonce."""
    skewed = ccxt.binance(fake.ccxt_config(options={"timeDifference": 60_000}))

    with pytest.raises(ccxt.InvalidNonce, match="-1021"):
        skewed.fetch_balance()


def test_no_code_the_fake_sends_is_in_ccxts_spot_only_table() -> None:
    """ccxt skips its spot table for loopback URLs; the mapping holds only if none is there.

    The one known exception: -1131 (recvWindow above 60000) is BadRequest on Binance but a
    plain ExchangeError against the fake."""
    import re
    from pathlib import Path

    source = "".join(p.read_text() for p in Path(__file__).with_name(
        "fake_exchange").glob("*.py"))
    codes = set(re.findall(r"(?:ApiError\(\d{3}, |error\()(-\d+)", source))
    assert {"-1013", "-1021", "-1022", "-2010", "-2013", "-2015"} <= codes

    spot_only = ccxt.binance().exceptions["spot"]["exact"]

    assert codes & set(spot_only) == {"-1131"}


def test_a_fault_with_times_none_lasts_until_cleared(fake: FakeBinance,
                                                     client: ccxt.binance) -> None:
    """times=None keeps failing matching requests; clear_faults ends it."""
    fake.inject("http_5xx", path="/api/v3/time", times=None, status=502)

    for _ in range(3):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            client.fetch_time()
    assert client.fetch_ticker(BTC)["last"] == 50_000.0  # other paths unaffected
    fake.clear_faults()

    assert client.fetch_time() > 0


def test_a_5xx_with_process_executes_the_order(fake: FakeBinance,
                                               client: ccxt.binance) -> None:
    """process=True: the order fills, the client sees only ExchangeNotAvailable."""
    fake.inject("http_5xx", path="/api/v3/order", status=502, process=True)

    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.create_order(BTC, "market", "sell", 0.1, params={"clientOrderId": "x-1"})

    assert [(o.client_order_id, o.status) for o in fake.orders()] == [("x-1", "FILLED")]


def test_async_client_times_out_on_accept_then_timeout(fake: FakeBinance) -> None:
    """The async client raises RequestTimeout too, and the order is in the ledger."""
    async def scenario() -> BaseException | None:
        exchange = ccxt.async_support.binance(fake.ccxt_config(timeout=300))
        try:
            await exchange.load_markets()
            fake.inject("accept_then_timeout", path="/api/v3/order")
            await exchange.create_order(BTC, "market", "buy", 0.01)
        except ccxt.BaseError as exc:
            return exc
        finally:
            await exchange.close()
        return None

    raised = run(scenario())

    assert isinstance(raised, ccxt.RequestTimeout)
    assert fake.orders()[0].status == "FILLED"


def test_an_abrupt_ws_drop_also_fails_the_pending_watch(fake: FakeBinance) -> None:
    """ws_drop(abrupt=True) aborts TCP without a close frame; ccxt.pro still raises."""
    async def scenario() -> BaseException | None:
        exchange = ccxt.pro.binance(fake.ccxt_config(timeout=2000))
        try:
            watching = asyncio.create_task(exchange.watch_trades(BTC))
            await asyncio.to_thread(fake.wait_for_subscription, BTC)
            await asyncio.to_thread(fake.inject, "ws_drop", abrupt=True)
            await asyncio.wait_for(watching, 5)
        except ccxt.BaseError as exc:
            return exc
        finally:
            await exchange.close()
        return None

    assert isinstance(run(scenario()), ccxt.NetworkError)
    assert fake.ws_connections() == 0
