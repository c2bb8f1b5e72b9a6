"""The live order path's decisions: error classes, backoff, client ids, validation, events."""

from __future__ import annotations

import random
import re

import ccxt
import pytest

from actors.execution.order_lifecycle import (
    Action,
    Backoff,
    MalformedReplyError,
    OrderTracker,
    classify,
    clean_reason,
    client_order_id,
    parse_order,
    parse_retry_after,
    parse_trade,
)
from actors.messages import (
    ExitReason,
    Fill,
    FillReplaced,
    Order,
    OrderFilled,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
)


def intent(side: Side = Side.BUY, order_type: OrderType = OrderType.MARKET,
           amount: float = 0.01) -> Order:
    return Order(order_id="o-run1-BTCUSDT-g0-1", pair="BTC/USDT", side=side,
                 order_type=order_type, reason=ExitReason.ENTRY, amount=amount,
                 status=OrderStatus.NEW, created_ms=1_000, updated_ms=1_000,
                 limit_price=60_000.0 if order_type is OrderType.LIMIT else None)


def raw_order(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "1000001", "clientOrderId": "o-run1-BTCUSDT-g0-1", "status": "open",
        "filled": 0.0, "amount": 0.01, "average": None, "price": 60_000.0,
        "timestamp": 1_000, "fee": None, "trades": [],
    }
    base.update(over)
    return base


def raw_trade(trade_id: str, amount: float, price: float, fee: float = 0.0,
              currency: str = "USDT", order: str = "1000001") -> dict[str, object]:
    return {"id": trade_id, "order": order, "amount": amount, "price": price,
            "timestamp": 2_000, "takerOrMaker": "taker",
            "fee": {"cost": fee, "currency": currency}}


# -- classification ----------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "action"), [
    (ccxt.RateLimitExceeded("429"), Action.RETRY),
    (ccxt.DDoSProtection("418"), Action.RETRY),
    (ccxt.InvalidNonce("clock"), Action.RETRY),
    (ccxt.RequestTimeout("timeout"), Action.LOOKUP),
    (ccxt.ExchangeNotAvailable("503"), Action.LOOKUP),
    (ccxt.NetworkError("reset"), Action.LOOKUP),
    (ccxt.BadResponse("garbage"), Action.LOOKUP),
    (ccxt.DuplicateOrderId("dup"), Action.LOOKUP),
    (MalformedReplyError("no id"), Action.LOOKUP),
    (TypeError("parser choked"), Action.LOOKUP),
    (ccxt.InsufficientFunds("funds"), Action.REJECT),
    (ccxt.InvalidOrder("lot"), Action.REJECT),
    (ccxt.AuthenticationError("key"), Action.REJECT),
    (ccxt.PermissionDenied("perm"), Action.REJECT),
    (ccxt.BadSymbol("sym"), Action.REJECT),
    (ccxt.ExchangeError("unknown"), Action.REJECT),
])
def test_errors_are_retried_looked_up_or_rejected(error: Exception, action: Action) -> None:
    """Refusals retry, ambiguous failures look up first, permanent errors reject."""
    assert classify(error) is action


def test_clean_reason_keeps_the_exchanges_message_and_drops_urls_and_secrets() -> None:
    """A ccxt message with URL, signature and body becomes class + the body's msg."""
    error = ccxt.InsufficientFunds(
        'binance {"code":-2010,"msg":"Account has insufficient balance for requested action."}')
    assert clean_reason(error) == ("InsufficientFunds: Account has insufficient balance for "
                                   "requested action. (code -2010)")
    signed = ccxt.ExchangeNotAvailable(
        "binance POST https://api.binance.com/api/v3/order?symbol=BTCUSDT&signature="
        + "ab" * 32 + " 503 Service Unavailable <html>MYAPIKEY123456</html>")
    text = clean_reason(signed, secrets=["MYAPIKEY123456"])
    assert "signature" not in text
    assert "ab" * 32 not in text
    assert "MYAPIKEY123456" not in text
    assert text.startswith("ExchangeNotAvailable:")
    assert len(clean_reason("x" * 500)) <= 160


# -- backoff -----------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    """Each delay lies in [d/2, d] for d = min(max, initial * 2**n); seeded, repeatable."""
    backoff = Backoff(initial_s=0.1, max_s=1.0, retries=5)
    rng = random.Random(7)
    delays = [backoff.delay(n, rng) for n in range(6)]
    for n, d in enumerate(delays):
        ceiling = min(1.0, 0.1 * 2 ** n)
        assert ceiling / 2 <= d <= ceiling
    assert delays == [backoff.delay(n, r) for n, r in
                      zip(range(6), [random.Random(7)] * 6, strict=True)]


def test_backoff_waits_at_least_what_retry_after_asks_and_gives_up_past_the_cap() -> None:
    """Retry-After raises the delay; one longer than the cap makes the order give up."""
    backoff = Backoff(initial_s=0.01, max_s=0.05, retries=3, retry_after_cap_s=10)
    assert backoff.delay(0, random.Random(1), retry_after=2.0) == 2.0
    assert backoff.gives_up(0, retry_after=11.0)
    assert not backoff.gives_up(2)
    assert backoff.gives_up(3)


def test_retry_after_reads_seconds_and_http_dates_case_insensitively() -> None:
    """Both header forms parse; absent or garbage headers give None."""
    assert parse_retry_after({"retry-after": "3"}, 0.0) == 3.0
    assert parse_retry_after({"Retry-After": "Thu, 01 Jan 1970 00:00:10 GMT"}, 4.0) == 6.0
    assert parse_retry_after({"Retry-After": "soon"}, 0.0) is None
    assert parse_retry_after(None, 0.0) is None


# -- client ids --------------------------------------------------------------------------------


def test_client_ids_are_the_order_id_where_it_fits() -> None:
    """A short id of allowed characters goes through unchanged."""
    assert client_order_id("o-1a2b-BTCUSDT-g0-7", "binance") == "o-1a2b-BTCUSDT-g0-7"


def test_client_ids_are_hashed_deterministically_where_the_id_does_not_fit() -> None:
    """Too long or bad characters: ``tc`` + hash, within the exchange's rule, stable."""
    long_id = "o-flatten-1000SATSUSDT-1700000000000-and-more"
    cid = client_order_id(long_id, "binance")
    assert re.fullmatch(r"[a-zA-Z0-9-_]{1,36}", cid)
    assert cid == client_order_id(long_id, "binance")
    assert cid != client_order_id(long_id + "x", "binance")
    okx = client_order_id("o-a-b", "okx")
    assert re.fullmatch(r"[A-Za-z0-9]{1,32}", okx)


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    None,
    "<html>upstream error</html>",
    raw_order(id=None),
    raw_order(status=None),
    raw_order(filled=None),
    raw_order(filled=0.01, average=None, price=None),
    raw_order(filled=float("nan")),
    raw_order(clientOrderId="someone-else"),
])
def test_malformed_orders_are_refused(raw: object) -> None:
    """ccxt's all-None dicts from a non-JSON body are never taken for an order or fill."""
    with pytest.raises(MalformedReplyError):
        parse_order(raw, "o-run1-BTCUSDT-g0-1")


def test_a_valid_order_parses_with_its_embedded_trades() -> None:
    """Numbers, status and trades come through; ``cancelled`` spells as ``canceled``."""
    xo = parse_order(raw_order(status="closed", filled=0.01, average=60_000.0,
                               trades=[raw_trade("7", 0.01, 60_000.0)]))
    assert (xo.id, xo.status, xo.filled, len(xo.trades)) == ("1000001", "closed", 0.01, 1)
    assert parse_order(raw_order(status="cancelled")).status == "canceled"


def test_a_trade_needs_id_amount_and_price() -> None:
    with pytest.raises(MalformedReplyError):
        parse_trade({"id": None, "amount": 1, "price": 1})
    with pytest.raises(MalformedReplyError):
        parse_trade({"id": "1", "amount": 0, "price": 1})


# -- following an order ------------------------------------------------------------------------


def test_partial_fills_become_one_fill_each_and_are_never_repeated() -> None:
    """Each trade is one OrderFilled with an id from the trade id; seeing it again adds nothing."""
    tracker = OrderTracker(intent(order_type=OrderType.LIMIT), "cid")
    first = parse_order(raw_order(filled=0.004, average=60_000.0))
    events, complete = tracker.observe(first, [parse_trade(raw_trade("7", 0.004, 60_000.0))],
                                       5_000)
    assert complete
    assert [type(e) for e in events] == [OrderFilled, OrderUpdated]
    fill = events[0].fill
    assert (fill.fill_id, fill.amount) == ("o-run1-BTCUSDT-g0-1-t7", 0.004)
    assert events[1].order.status is OrderStatus.PARTIALLY_FILLED
    again, _ = tracker.observe(first, [parse_trade(raw_trade("7", 0.004, 60_000.0))], 6_000)
    assert again == []
    done = parse_order(raw_order(status="closed", filled=0.01, average=60_000.0))
    events, _ = tracker.observe(done, [parse_trade(raw_trade("7", 0.004, 60_000.0)),
                                       parse_trade(raw_trade("8", 0.006, 60_000.0))], 7_000)
    assert [e.fill.fill_id for e in events if isinstance(e, OrderFilled)] == [
        "o-run1-BTCUSDT-g0-1-t8"]
    final = events[-1].order
    assert (final.status, final.filled) == (OrderStatus.FILLED, 0.01)
    assert tracker.done


def test_a_terminal_status_waits_for_its_trades() -> None:
    """``closed`` with fewer trades than ``filled`` is not reported FILLED yet."""
    tracker = OrderTracker(intent(), "cid")
    closed = parse_order(raw_order(status="closed", filled=0.01, average=60_000.0))
    events, complete = tracker.observe(closed, [], 5_000)
    assert not complete
    assert not tracker.done
    assert [e.order.status for e in events if isinstance(e, OrderUpdated)] == [OrderStatus.OPEN]


def test_a_base_currency_fee_on_a_buy_books_less_base_and_its_quote_value_as_fee() -> None:
    """Quote moves by amount * price, base by amount - fee: as at the exchange."""
    tracker = OrderTracker(intent(), "cid")
    xo = parse_order(raw_order(status="closed", filled=0.01, average=60_000.0))
    trade = parse_trade(raw_trade("9", 0.01, 60_000.0, fee=0.00001, currency="BTC"))
    events, complete = tracker.observe(xo, [trade], 5_000)
    fill = events[0].fill
    assert complete
    assert fill.amount == pytest.approx(0.00999)
    assert fill.fee == pytest.approx(0.6)
    assert fill.amount * fill.price + fill.fee == pytest.approx(600.0)


def test_without_trades_the_growth_of_filled_becomes_fills() -> None:
    """Cumulative mode: each increase of ``filled`` is one fill priced to match the average."""
    tracker = OrderTracker(intent(order_type=OrderType.LIMIT), "cid", use_trades=False)
    e1, _ = tracker.observe(parse_order(raw_order(filled=0.004, average=100.0)), None, 5_000)
    e2, _ = tracker.observe(parse_order(raw_order(status="closed", filled=0.01, average=103.0)),
                            None, 6_000)
    fills = [e.fill for e in (*e1, *e2) if isinstance(e, OrderFilled)]
    assert [f.amount for f in fills] == pytest.approx([0.004, 0.006])
    assert sum(f.amount * f.price for f in fills) == pytest.approx(0.01 * 103.0)
    assert tracker.done


def test_recorded_fills_are_not_reported_again() -> None:
    """A tracker rebuilt from the database skips the fills it already holds."""
    recorded = Fill(fill_id="o-run1-BTCUSDT-g0-1-t7", order_id="o-run1-BTCUSDT-g0-1",
                    pair="BTC/USDT", side=Side.BUY, amount=0.01, price=60_000.0, fee=0.0,
                    ts_ms=2_000)
    tracker = OrderTracker(intent(), "cid", [recorded])
    xo = parse_order(raw_order(status="closed", filled=0.01, average=60_000.0))
    events, _ = tracker.observe(xo, [parse_trade(raw_trade("7", 0.01, 60_000.0))], 5_000)
    assert [type(e) for e in events] == [OrderUpdated]
    assert events[0].order.status is OrderStatus.FILLED


def test_updates_never_go_back_in_time() -> None:
    """An order decided at a market time ahead of the clock keeps its updates monotonic."""
    order = intent()
    tracker = OrderTracker(order, "cid")
    events, _ = tracker.observe(parse_order(raw_order()), [], now_ms=10)
    assert events[-1].order.updated_ms == order.updated_ms


# -- an order whose trades do not come -----------------------------------------------------------


def test_a_filled_order_without_trades_is_booked_from_its_cumulative_fill_after_the_grace() -> None:
    """FILLED, no trades: nothing is booked before the grace period; then one inferred fill
    at the exchange's average price, with the order's fee, and the order is FILLED."""
    tracker = OrderTracker(intent(), "cid")
    closed = parse_order(raw_order(status="closed", filled=0.01, average=60_010.0,
                                   fee={"cost": 0.6, "currency": "USDT"}))
    tracker.observe(closed, [], 5_000)
    assert not tracker.infer_due(5_000 + 29_999, 30_000)
    tracker.observe(closed, [], 20_000)  # still missing: the grace counts from the first sight
    assert tracker.infer_due(35_000, 30_000)
    events = tracker.infer(closed, 35_000)
    assert [type(e) for e in events] == [OrderFilled, OrderUpdated]
    fill = events[0].fill
    assert (fill.fill_id, fill.amount, fill.price, fill.fee) == (
        "o-run1-BTCUSDT-g0-1-inferred", 0.01, 60_010.0, 0.6)
    assert (events[1].order.status, events[1].order.filled) == (OrderStatus.FILLED, 0.01)
    assert tracker.done
    assert tracker.infer(closed, 36_000) == []  # once


def test_an_inferred_fill_covers_only_what_the_trades_seen_do_not() -> None:
    """One trade of two seen: the inferred fill is the rest, priced so that both average to
    the exchange's average."""
    tracker = OrderTracker(intent(), "cid")
    closed = parse_order(raw_order(status="closed", filled=0.01, average=60_006.0))
    events, complete = tracker.observe(closed, [parse_trade(raw_trade("7", 0.004, 60_000.0))],
                                       5_000)
    assert not complete
    assert [e.fill.amount for e in events if isinstance(e, OrderFilled)] == [0.004]
    [inferred] = [e.fill for e in tracker.infer(closed, 40_000) if isinstance(e, OrderFilled)]
    assert inferred.amount == pytest.approx(0.006)
    assert 0.004 * 60_000.0 + inferred.amount * inferred.price == pytest.approx(0.01 * 60_006.0)


def test_the_real_trades_replace_the_inferred_fill_once_they_all_appear() -> None:
    """A part of the trades changes nothing; all of them replace the inferred fill in one
    FillReplaced, never as extra fills; seeing them again adds nothing."""
    tracker = OrderTracker(intent(), "cid")
    closed = parse_order(raw_order(status="closed", filled=0.01, average=60_006.0))
    tracker.observe(closed, [], 5_000)
    [inferred] = [e.fill for e in tracker.infer(closed, 40_000) if isinstance(e, OrderFilled)]
    first = parse_trade(raw_trade("7", 0.004, 60_000.0, fee=0.24))
    second = parse_trade(raw_trade("8", 0.006, 60_010.0, fee=0.36))
    assert tracker.observe(closed, [first], 41_000) == ([], True)
    events, _ = tracker.observe(closed, [first, second], 42_000)
    [replaced] = events
    assert isinstance(replaced, FillReplaced)
    assert replaced.inferred == inferred
    assert [f.fill_id for f in replaced.fills] == ["o-run1-BTCUSDT-g0-1-t7",
                                                   "o-run1-BTCUSDT-g0-1-t8"]
    assert tracker.inferred is None
    assert tracker.observe(closed, [first, second], 43_000) == ([], True)


def test_a_tracker_rebuilt_with_an_inferred_fill_replaces_it_when_the_trades_come() -> None:
    """After a restart the inferred fill is among the recorded fills: the trades, when they
    appear, replace it rather than add to it."""
    inferred = Fill(fill_id="o-run1-BTCUSDT-g0-1-inferred", order_id="o-run1-BTCUSDT-g0-1",
                    pair="BTC/USDT", side=Side.BUY, amount=0.01, price=60_000.0, fee=0.0,
                    ts_ms=2_000)
    tracker = OrderTracker(intent(), "cid", [inferred])
    closed = parse_order(raw_order(status="closed", filled=0.01, average=60_000.0))
    events, _ = tracker.observe(closed, [parse_trade(raw_trade("7", 0.01, 60_000.0))], 5_000)
    assert [type(e) for e in events] == [FillReplaced, OrderUpdated]


def test_an_unfinished_order_with_an_inferred_fill_closes_without_waiting_for_trades() -> None:
    """Killed between the inferred fill and the order's FILLED: at the next start the
    inferred fill (smaller than the exchange's fill by a fee taken in the base) covers the
    order, which closes at once rather than waiting for trades for ever."""
    inferred = Fill(fill_id="o-run1-BTCUSDT-g0-1-inferred", order_id="o-run1-BTCUSDT-g0-1",
                    pair="BTC/USDT", side=Side.BUY, amount=0.00999, price=60_000.0, fee=0.6,
                    ts_ms=2_000)
    tracker = OrderTracker(intent(), "cid", [inferred])
    closed = parse_order(raw_order(status="closed", filled=0.01, average=60_000.0))
    events, complete = tracker.observe(closed, [], 5_000)
    assert complete
    assert [e.order.status for e in events if isinstance(e, OrderUpdated)] == [
        OrderStatus.FILLED]
