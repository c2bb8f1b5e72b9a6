"""The paper exchange: fill prices, fees, balances, reservations and idempotent submits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.balances import apply_fill
from actors.execution.paper_exchange import PaperConfig, PaperExchange
from actors.messages import (
    ExitReason,
    MarketTick,
    OrderFilled,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
    SubmitOrder,
)

T0 = 1_700_000_000_000
TICKS = {"BTC/USDT": 0.01, "ETH/USDT": 0.01}
LOTS = {"BTC/USDT": 0.001, "ETH/USDT": 0.01}


def make_exchange(balances: dict[str, float], **config: float) -> PaperExchange:
    return PaperExchange(PaperConfig(**config), balances, TICKS.__getitem__, LOTS.__getitem__)


def submit(
    order_id: str = "o-1",
    *,
    side: Side = Side.BUY,
    amount: float = 1.0,
    bid: float = 99.99,
    ask: float = 100.0,
    limit: float | None = None,
    pair: str = "BTC/USDT",
    ts: int = T0,
) -> SubmitOrder:
    return SubmitOrder(
        order_id=order_id,
        proposal_id=order_id.removeprefix("o-"),
        pair=pair,
        generation=0,
        side=side,
        order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
        reason=ExitReason.ENTRY if side is Side.BUY else ExitReason.EXIT_SIGNAL,
        amount=amount,
        bid=bid,
        ask=ask,
        ts_ms=ts,
        limit_price=limit,
    )


def tick(bid: float, ask: float, ts: int = T0 + 1_000, pair: str = "BTC/USDT") -> MarketTick:
    return MarketTick(pair=pair, ts_ms=ts, price=(bid + ask) / 2, bid=bid, ask=ask)


def statuses(events: list[OrderUpdated | OrderFilled]) -> list[str]:
    return [e.order.status.value if isinstance(e, OrderUpdated) else "fill" for e in events]


def only_fill(events: list[OrderUpdated | OrderFilled]) -> OrderFilled:
    (fill,) = [e for e in events if isinstance(e, OrderFilled)]
    return fill


# -- market orders -------------------------------------------------------------------------------


def test_market_buy_fills_at_ask_plus_slippage_rounded_up_to_the_tick_with_taker_fee() -> None:
    """A market buy pays ask * (1 + slippage), rounded up to the tick, plus the taker fee."""
    ex = make_exchange({"USDT": 10_000.0})

    events = ex.submit(submit(amount=30.0, ask=100.0))

    # notional at the ask 3000 -> 0.3 bps -> 100.003 -> rounded up to 100.01
    assert statuses(events) == ["fill"]
    assert only_fill(events).order == ex.order("o-1")
    fill = only_fill(events).fill
    assert fill.price == pytest.approx(100.01)
    assert fill.fee == pytest.approx(30 * 100.01 * 0.001)
    assert fill.fill_id == "o-1-f1"
    assert not fill.maker
    assert ex.balances()["USDT"] == pytest.approx(10_000 - 3000.3 - 3.0003)
    assert ex.balances()["BTC"] == pytest.approx(30.0)


def test_market_sell_fills_at_bid_minus_slippage_rounded_down_to_the_tick() -> None:
    """A market sell receives bid * (1 - slippage), rounded down, less the taker fee."""
    ex = make_exchange({"ETH": 3.0, "USDT": 0.0})

    events = ex.submit(
        submit(pair="ETH/USDT", side=Side.SELL, amount=2.0, bid=2000.05, ask=2000.06)
    )

    # notional at the bid 4000.1 -> 0.40001 bps -> 1999.96999... -> rounded down to 1999.96
    fill = only_fill(events).fill
    assert fill.price == pytest.approx(1999.96)
    assert fill.fee == pytest.approx(3.99992)
    assert ex.balances() == pytest.approx({"ETH": 1.0, "USDT": 3999.92 - 3.99992})


def test_market_slippage_is_capped_at_max_slippage_bps() -> None:
    """A huge order moves the price by max_slippage_bps and no further."""
    ex = make_exchange({"USDT": 1e9}, max_slippage_bps=50.0)

    events = ex.submit(submit(amount=100_000.0, ask=100.0))

    assert only_fill(events).fill.price == pytest.approx(100.5)


def test_a_fill_on_arrival_carries_the_finished_order_in_one_event() -> None:
    """A market order is reported once: its fill, with the order FILLED as it ended (filled
    amount, average price, fee, the request's times and reason)."""
    ex = make_exchange({"USDT": 10_000.0}, slippage_bps_per_10k=0.0)

    (done,) = ex.submit(submit(amount=2.0, ask=100.0))

    assert isinstance(done, OrderFilled)
    order = done.order
    assert order is not None
    assert order.status is OrderStatus.FILLED
    assert (order.order_id, order.pair, order.side, order.order_type) == (
        "o-1", "BTC/USDT", Side.BUY, OrderType.MARKET)
    assert order.filled == order.amount == pytest.approx(2.0)
    assert order.average_price == pytest.approx(100.0) == done.fill.price
    assert order.fee == pytest.approx(0.2) == done.fill.fee
    assert order.created_ms == order.updated_ms == done.fill.ts_ms
    assert ex.order("o-1") == order


def test_amount_is_floored_to_the_lot_size() -> None:
    """An amount between lots is rounded down, never up."""
    ex = make_exchange({"USDT": 10_000.0})

    events = ex.submit(submit(amount=0.123456))

    assert only_fill(events).fill.amount == pytest.approx(0.123)


def test_amount_below_one_lot_is_rejected() -> None:
    """An order that floors to zero is rejected as below_lot_size."""
    ex = make_exchange({"USDT": 10_000.0})

    (update,) = ex.submit(submit(amount=0.0009))

    assert isinstance(update, OrderUpdated)
    assert update.order.status is OrderStatus.REJECTED
    assert update.order.reject_reason == "below_lot_size"


def test_buy_beyond_free_quote_is_rejected_with_the_balance_unchanged() -> None:
    """Insufficient quote rejects the whole order, names the numbers, and moves nothing."""
    ex = make_exchange({"USDT": 1000.0}, slippage_bps_per_10k=0.0)

    (update,) = ex.submit(submit(amount=20.0, ask=100.0))

    assert isinstance(update, OrderUpdated)
    assert update.order.status is OrderStatus.REJECTED
    assert update.order.reject_reason == "insufficient_balance: need 2002 USDT, have 1000"
    assert ex.balances() == {"USDT": 1000.0}


def test_sell_beyond_free_base_is_rejected_not_resized() -> None:
    """Selling more than the free base is rejected rather than shrunk to what is there."""
    ex = make_exchange({"BTC": 0.5, "USDT": 0.0})

    (update,) = ex.submit(submit(side=Side.SELL, amount=0.6))

    assert isinstance(update, OrderUpdated)
    assert update.order.reject_reason == "insufficient_balance: need 0.6 BTC, have 0.5"
    assert ex.balances() == {"BTC": 0.5, "USDT": 0.0}


def test_buy_that_spends_the_whole_balance_leaves_it_at_zero_not_below() -> None:
    """Exactly enough quote is enough, and leaves a balance that is not negative."""
    ex = make_exchange({"USDT": 100.1}, slippage_bps_per_10k=0.0)

    events = ex.submit(submit(amount=1.0, ask=100.0))

    assert statuses(events) == ["fill"]
    assert 0.0 <= ex.balances()["USDT"] < 1e-9


def test_duplicate_order_id_is_never_placed_twice() -> None:
    """Submitting an order id the exchange already knows returns nothing and charges once."""
    ex = make_exchange({"USDT": 10_000.0}, slippage_bps_per_10k=0.0)
    ex.submit(submit(amount=1.0))
    after_first = ex.balances()

    again = ex.submit(submit(amount=1.0))

    assert again == []
    assert ex.balances() == after_first


def test_duplicate_of_a_rejected_order_id_is_not_retried() -> None:
    """A rejected id stays used: resubmitting it does not place it now that funds exist."""
    ex = make_exchange({"USDT": 10.0})
    ex.submit(submit(amount=1.0))

    assert ex.submit(submit(amount=0.05)) == []
    assert ex.balances() == {"USDT": 10.0}


def test_invalid_pair_and_amount_are_rejected_not_raised() -> None:
    """Bad input becomes a rejected order so the execution actor survives it."""
    ex = make_exchange({"USDT": 10.0})

    (bad_pair,) = ex.submit(submit("o-1", pair="btcusdt"))
    (bad_amount,) = ex.submit(submit("o-2", amount=float("nan")))

    assert isinstance(bad_pair, OrderUpdated)
    assert isinstance(bad_amount, OrderUpdated)
    assert bad_pair.order.reject_reason == "invalid_pair"
    assert bad_amount.order.reject_reason == "invalid_amount"


# -- limit orders --------------------------------------------------------------------------------


def test_non_marketable_limit_buy_rests_and_reserves_quote_with_the_maker_fee() -> None:
    """A buy below the ask rests; its notional plus maker fee is no longer free."""
    ex = make_exchange({"USDT": 1000.0}, maker_fee=0.002)

    events = ex.submit(submit(amount=2.0, limit=95.0))

    assert statuses(events) == ["open"]
    assert ex.has_resting("BTC/USDT")
    assert ex.reserved() == pytest.approx({"USDT": 190.38})
    assert ex.balances()["USDT"] == pytest.approx(809.62)


def test_reserved_funds_cannot_be_spent_by_another_order() -> None:
    """A resting order's reservation makes a later order fail for want of free funds."""
    ex = make_exchange({"USDT": 1000.0}, slippage_bps_per_10k=0.0)
    ex.submit(submit("o-1", amount=9.0, limit=95.0))

    (update,) = ex.submit(submit("o-2", amount=2.0, ask=100.0))

    assert isinstance(update, OrderUpdated)
    assert update.order.reject_reason.startswith("insufficient_balance: need 200.2 USDT, have")


def test_resting_limit_buy_fills_at_its_limit_with_maker_fee_when_the_ask_crosses() -> None:
    """A tick whose ask reaches the limit fills it at the limit; the reservation is spent."""
    ex = make_exchange({"USDT": 1000.0}, maker_fee=0.002)
    ex.submit(submit(amount=2.0, limit=95.0))

    events = ex.on_tick(tick(bid=94.5, ask=94.9, ts=T0 + 5_000))

    fill = only_fill(events).fill
    assert (fill.price, fill.maker, fill.ts_ms) == (95.0, True, T0 + 5_000)
    assert fill.fee == pytest.approx(0.38)
    assert statuses(events) == ["fill"]
    done = only_fill(events).order
    assert done is not None and (done.status, done.limit_price, done.created_ms) == (
        OrderStatus.FILLED, 95.0, T0)
    assert (done.updated_ms, done.filled, done.fee) == (T0 + 5_000, 2.0, fill.fee)
    assert not ex.has_resting("BTC/USDT")
    assert ex.reserved() == {}
    assert ex.balances() == pytest.approx({"USDT": 1000 - 190 - 0.38, "BTC": 2.0})


def test_tick_that_does_not_cross_leaves_the_limit_resting() -> None:
    """An ask above a buy limit fills nothing."""
    ex = make_exchange({"USDT": 1000.0})
    ex.submit(submit(amount=2.0, limit=95.0))

    assert ex.on_tick(tick(bid=95.0, ask=95.01)) == []
    assert ex.has_resting("BTC/USDT")


def test_resting_limit_sell_reserves_base_and_fills_when_the_bid_reaches_it() -> None:
    """A sell above the bid holds its base, then fills at the limit once the bid gets there."""
    ex = make_exchange({"BTC": 1.0, "USDT": 0.0}, maker_fee=0.001)
    ex.submit(submit(side=Side.SELL, amount=1.0, limit=110.0))
    assert ex.balances()["BTC"] == 0.0

    events = ex.on_tick(tick(bid=110.0, ask=110.01))

    assert only_fill(events).fill.price == 110.0
    assert ex.balances() == pytest.approx({"BTC": 0.0, "USDT": 110.0 - 0.11})


def test_marketable_limit_buy_fills_at_once_as_taker_at_the_touch() -> None:
    """A buy limit at or above the ask fills immediately at the ask, paying the taker fee."""
    ex = make_exchange({"USDT": 1000.0}, taker_fee=0.002, maker_fee=0.0)

    events = ex.submit(submit(amount=1.0, ask=100.0, limit=101.0))

    fill = only_fill(events).fill
    assert (fill.price, fill.maker) == (100.0, False)
    assert fill.fee == pytest.approx(0.2)
    assert not ex.has_resting("BTC/USDT")


def test_marketable_limit_sell_fills_at_once_at_the_bid() -> None:
    """A sell limit at or below the bid fills immediately at the bid."""
    ex = make_exchange({"BTC": 1.0})

    events = ex.submit(submit(side=Side.SELL, amount=1.0, bid=99.99, limit=99.0))

    assert only_fill(events).fill.price == 99.99


def test_cancel_releases_the_reservation() -> None:
    """Canceling a resting order frees its funds and reports CANCELED."""
    ex = make_exchange({"USDT": 1000.0})
    ex.submit(submit(amount=2.0, limit=95.0))

    (update,) = ex.cancel("o-1", T0 + 2_000)

    assert isinstance(update, OrderUpdated)
    assert (update.order.status, update.order.updated_ms) == (OrderStatus.CANCELED, T0 + 2_000)
    assert ex.balances() == pytest.approx({"USDT": 1000.0})
    assert not ex.has_resting("BTC/USDT")


def test_cancel_of_an_unknown_or_finished_order_does_nothing() -> None:
    """Only resting orders can be canceled; anything else returns no events."""
    ex = make_exchange({"USDT": 1000.0})
    ex.submit(submit("o-1", amount=1.0))

    assert ex.cancel("o-1", T0) == []
    assert ex.cancel("o-nope", T0) == []


def test_expire_cancels_only_limits_that_rested_for_the_ttl() -> None:
    """Orders at least ttl old are canceled and their funds freed; younger ones stay."""
    ex = make_exchange({"USDT": 1000.0})
    ex.submit(submit("o-old", amount=1.0, limit=90.0, ts=T0))
    ex.submit(submit("o-new", amount=1.0, limit=90.0, ts=T0 + 30_000))

    events = ex.expire(T0 + 60_000, ttl_ms=60_000)

    assert [(e.order.order_id, e.order.status) for e in events if isinstance(e, OrderUpdated)] == [
        ("o-old", OrderStatus.CANCELED)
    ]
    assert ex.reserved() == pytest.approx({"USDT": 90.09})
    assert ex.has_resting("BTC/USDT")


def test_limit_prices_are_rounded_to_the_tick_in_the_traders_favour() -> None:
    """A buy limit rounds down and a sell limit rounds up, never worse than asked."""
    ex = make_exchange({"USDT": 1000.0, "BTC": 1.0})

    (buy,) = ex.submit(submit("o-b", amount=1.0, limit=95.019))
    (sell,) = ex.submit(submit("o-s", side=Side.SELL, amount=1.0, limit=105.011))

    assert isinstance(buy, OrderUpdated)
    assert isinstance(sell, OrderUpdated)
    assert (buy.order.limit_price, sell.order.limit_price) == (95.01, 105.02)


# -- helpers and config --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [("taker_fee", 0.06), ("maker_fee", -0.001), ("max_slippage_bps", float("nan"))],
)
def test_config_rejects_out_of_range_values_naming_the_key(key: str, value: float) -> None:
    """Bad fees or slippage fail at construction with the key in the message."""
    with pytest.raises(ValueError, match=key):
        PaperConfig(**{key: value})


# -- properties ----------------------------------------------------------------------------------

_actions = st.lists(
    st.one_of(
        st.tuples(st.just("market"), st.sampled_from(Side), st.floats(0.0, 150.0, allow_nan=False)),
        st.tuples(
            st.just("limit"),
            st.sampled_from(Side),
            st.floats(0.0, 150.0, allow_nan=False),
            st.floats(-0.02, 0.02),
        ),
        st.tuples(st.just("tick"), st.floats(-0.03, 0.03), st.integers(1, 5_000)),
        st.tuples(st.just("cancel"), st.integers(0, 40)),
        st.tuples(st.just("expire"), st.integers(0, 120_000)),
    ),
    max_size=40,
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    actions=_actions,
    taker=st.floats(0.0, 0.05),
    maker=st.floats(0.0, 0.05),
    slip=st.floats(0.0, 20.0),
)
def test_free_balances_never_go_negative_and_match_a_ledger_of_the_fills(
    actions: list[tuple[object, ...]], taker: float, maker: float, slip: float
) -> None:
    """Over any orders and ticks, free balances stay >= 0 and free + reserved = fills' ledger."""
    start = {"USDT": 10_000.0, "BTC": 50.0}
    ex = make_exchange(dict(start), taker_fee=taker, maker_fee=maker, slippage_bps_per_10k=slip)
    ledger = dict(start)
    mid, ts = 100.0, T0
    for n, action in enumerate(actions):
        events: list[OrderUpdated | OrderFilled] = []
        bid, ask = round(mid - 0.01, 2), round(mid + 0.01, 2)
        match action:
            case ("market", Side() as side, float(amount)):
                events = ex.submit(
                    submit(f"o-{n}", side=side, amount=amount, bid=bid, ask=ask, ts=ts)
                )
            case ("limit", Side() as side, float(amount), float(offset)):
                order = submit(
                    f"o-{n}",
                    side=side,
                    amount=amount,
                    bid=bid,
                    ask=ask,
                    limit=mid * (1 + offset),
                    ts=ts,
                )
                events = ex.submit(order)
            case ("tick", float(move), int(dt)):
                mid = max(1.0, round(mid * (1 + move), 2))
                ts += dt
                events = ex.on_tick(tick(round(mid - 0.01, 2), round(mid + 0.01, 2), ts=ts))
            case ("cancel", int(k)):
                events = ex.cancel(f"o-{k}", ts)
            case ("expire", int(ttl)):
                events = ex.expire(ts, max(ttl, 1))
        for event in events:
            if isinstance(event, OrderFilled):
                apply_fill(ledger, event.fill)

        free, reserved = ex.balances(), ex.reserved()
        assert all(v >= 0.0 for v in free.values()), free
        for asset, total in ledger.items():
            held = free.get(asset, 0.0) + reserved.get(asset, 0.0)
            assert held == pytest.approx(total, abs=1e-6)


def test_finished_orders_are_remembered_only_recently_and_a_recent_duplicate_is_refused(
        monkeypatch) -> None:
    """Memory stays bounded in long runs; a retried submit of a recent order is still []."""
    import actors.execution.paper_exchange

    monkeypatch.setattr(actors.execution.paper_exchange, "RECENT_ORDERS", 3)
    exchange = make_exchange({"USDT": 1_000_000.0})
    for i in range(10):
        exchange.submit(submit(f"o-{i}", amount=0.01))

    assert exchange.submit(submit("o-9", amount=0.01)) == []
    assert exchange.order("o-9") is not None
    assert exchange.order("o-0") is None  # forgotten: finished more than 3 orders ago
    assert len(exchange._done) == 3 and not exchange._orders
