"""Ledger accounting, worked by hand: fees, partial and full closes, dust, exactly-once fills."""

from __future__ import annotations

import math

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.messages import (
    ExitReason,
    Fill,
    MarkPrices,
    Order,
    OrderStatus,
    OrderType,
    PairBook,
    Position,
    PositionClosed,
    Side,
    StrategySpec,
)
from actors.state.ledger import DUST_RELATIVE, Ledger, LedgerError

BTC = "BTC/USDT"
ETH = "ETH/USDT"


def fill(
    fill_id: str,
    side: Side,
    amount: float,
    price: float,
    fee: float = 0.0,
    *,
    pair: str = BTC,
    order_id: str = "o-1",
    ts_ms: int = 1_000,
) -> Fill:
    return Fill(
        fill_id=fill_id,
        order_id=order_id,
        pair=pair,
        side=side,
        amount=amount,
        price=price,
        fee=fee,
        ts_ms=ts_ms,
    )


def order(
    order_id: str,
    side: Side = Side.SELL,
    *,
    reason: ExitReason = ExitReason.EXIT_SIGNAL,
    status: OrderStatus = OrderStatus.OPEN,
    pair: str = BTC,
    updated_ms: int = 1_000,
) -> Order:
    return Order(
        order_id=order_id,
        pair=pair,
        side=side,
        order_type=OrderType.MARKET,
        reason=reason,
        amount=1.0,
        status=status,
        created_ms=1_000,
        updated_ms=updated_ms,
    )


def usdt(amount: float = 100_000.0) -> Ledger:
    return Ledger("USDT", {"USDT": amount})


# -- buys ----------------------------------------------------------------------------------------


def test_a_buy_opens_a_position_at_the_fill_price_with_the_fee_in_its_cost() -> None:
    """Entry is the fill price; cost is notional plus fee; the peak starts at the entry."""
    ledger = usdt()

    result = ledger.apply_fill(fill("f1", Side.BUY, 0.5, 20_000.0, 10.0, ts_ms=5_000))

    assert result is not None
    book, closed = result
    assert closed is None
    position = book.position
    assert position is not None
    assert position.amount == 0.5
    assert position.entry_price == 20_000.0
    assert position.cost == pytest.approx(10_010.0)
    assert position.opened_ms == 5_000
    assert position.peak_price == 20_000.0
    assert position.break_even == pytest.approx(20_020.0)


def test_a_buy_moves_balances_through_apply_fill_with_the_fee_in_quote() -> None:
    """Quote falls by notional plus fee, base rises by the amount."""
    ledger = usdt()

    ledger.apply_fill(fill("f1", Side.BUY, 0.5, 20_000.0, 10.0))

    assert ledger.balances == {"USDT": pytest.approx(89_990.0), "BTC": 0.5}
    assert ledger.cash == pytest.approx(89_990.0)


def test_a_second_buy_averages_the_entry_and_adds_its_cost() -> None:
    """The entry is the amount-weighted average fill price; the opening time stays."""
    ledger = usdt()
    ledger.apply_fill(fill("f1", Side.BUY, 1.0, 100.0, 1.0, ts_ms=1_000))

    result = ledger.apply_fill(fill("f2", Side.BUY, 3.0, 120.0, 2.0, ts_ms=2_000))

    assert result is not None
    position = result[0].position
    assert position is not None
    assert position.amount == 4.0
    assert position.entry_price == pytest.approx(115.0)
    assert position.cost == pytest.approx(100.0 + 1.0 + 360.0 + 2.0)
    assert position.opened_ms == 1_000
    assert position.peak_price == 120.0


# -- sells ---------------------------------------------------------------------------------------


def test_a_partial_sell_realizes_proceeds_minus_fee_minus_the_sold_share_of_cost() -> None:
    """Selling 0.2 of 0.5 releases 40% of the cost: 4200 - 4.2 - 4004 = 191.8."""
    ledger = usdt()
    ledger.apply_fill(fill("f1", Side.BUY, 0.5, 20_000.0, 10.0))

    result = ledger.apply_fill(fill("f2", Side.SELL, 0.2, 21_000.0, 4.2, order_id="o-2"))

    assert result is not None
    book, closed = result
    assert closed is None
    assert book.realized_pnl == pytest.approx(191.8)
    assert book.trades == 0
    assert book.position is not None
    assert book.position.amount == pytest.approx(0.3)
    assert book.position.cost == pytest.approx(6_006.0)
    assert book.position.entry_price == 20_000.0
    assert ledger.cash == pytest.approx(94_185.8)


def test_a_full_sell_closes_the_round_trip_with_the_pnl_of_every_part() -> None:
    """The closing sell reports the round trip's PnL, partial sells included."""
    ledger = usdt()
    ledger.apply_order(order("o-3", reason=ExitReason.STOP_LOSS))
    ledger.apply_fill(fill("f1", Side.BUY, 0.5, 20_000.0, 10.0))
    ledger.apply_fill(fill("f2", Side.SELL, 0.2, 21_000.0, 4.2, order_id="o-2"))

    result = ledger.apply_fill(
        fill("f3", Side.SELL, 0.3, 19_000.0, 5.7, order_id="o-3", ts_ms=9_000)
    )

    assert result is not None
    book, closed = result
    assert book.position is None
    assert book.trades == 1
    assert book.realized_pnl == pytest.approx(-119.9)
    assert closed == PositionClosed(
        pair=BTC, reason=ExitReason.STOP_LOSS, pnl=pytest.approx(-119.9), ts_ms=9_000
    )
    assert ledger.cash == pytest.approx(100_000.0 - 119.9)
    assert ledger.balances["BTC"] == pytest.approx(0.0)


def test_selling_at_break_even_realizes_nothing() -> None:
    """A sell whose proceeds net of fee equal the cost closes at exactly zero PnL."""
    ledger = usdt(1_000.0)
    ledger.apply_fill(fill("f1", Side.BUY, 1.0, 100.0, 1.0))

    result = ledger.apply_fill(fill("f2", Side.SELL, 1.0, 102.0, 1.0))

    assert result is not None
    book, closed = result
    assert book.realized_pnl == pytest.approx(0.0)
    assert closed is not None
    assert closed.pnl == pytest.approx(0.0)
    assert ledger.cash == pytest.approx(1_000.0)


def test_a_remainder_within_the_relative_dust_threshold_closes_the_position() -> None:
    """What is left below 1e-9 of the position is dust: the position closes, all cost released."""
    ledger = usdt(1_000.0)
    ledger.apply_fill(fill("f1", Side.BUY, 1.0, 100.0))

    result = ledger.apply_fill(fill("f2", Side.SELL, 1.0 - DUST_RELATIVE / 10, 110.0))

    assert result is not None
    book, closed = result
    assert book.position is None
    assert closed is not None
    assert closed.pnl == pytest.approx(10.0)
    assert ledger.balances["BTC"] == pytest.approx(DUST_RELATIVE / 10)


def test_a_remainder_below_the_pairs_lot_closes_the_position() -> None:
    """A remainder the exchange could never sell is dust too."""
    ledger = Ledger("USDT", {"USDT": 1_000.0}, lots={BTC: 0.001})
    ledger.apply_fill(fill("f1", Side.BUY, 1.0, 100.0))

    result = ledger.apply_fill(fill("f2", Side.SELL, 0.9995, 100.0))

    assert result is not None
    assert result[0].position is None
    assert result[1] is not None
    assert result[1].pnl == pytest.approx(0.9995 * 100.0 - 100.0)


def test_a_remainder_above_the_dust_threshold_keeps_the_position_open() -> None:
    """Just above the threshold the position stays, however small."""
    ledger = usdt(1_000.0)
    ledger.apply_fill(fill("f1", Side.BUY, 1.0, 100.0))

    result = ledger.apply_fill(fill("f2", Side.SELL, 0.999, 100.0))

    assert result is not None
    assert result[0].position is not None
    assert result[0].position.amount == pytest.approx(0.001)


def test_a_closing_sell_for_an_unknown_order_is_an_exit_signal() -> None:
    """Without the order the reason defaults to EXIT_SIGNAL."""
    ledger = usdt(1_000.0)
    ledger.apply_fill(fill("f1", Side.BUY, 1.0, 100.0))

    result = ledger.apply_fill(fill("f2", Side.SELL, 1.0, 100.0, order_id="nobody"))

    assert result is not None
    assert result[1] is not None
    assert result[1].reason is ExitReason.EXIT_SIGNAL


def test_a_fill_after_its_order_was_filled_still_finds_the_orders_reason() -> None:
    """Terminal orders leave the open set but are remembered for late fills."""
    ledger = usdt(1_000.0)
    ledger.apply_fill(fill("f1", Side.BUY, 1.0, 100.0))
    ledger.apply_order(order("o-tp", reason=ExitReason.TAKE_PROFIT, status=OrderStatus.FILLED))

    result = ledger.apply_fill(fill("f2", Side.SELL, 1.0, 120.0, order_id="o-tp"))

    assert result is not None
    assert result[1] is not None
    assert result[1].reason is ExitReason.TAKE_PROFIT
    assert ledger.book(BTC).open_orders == ()


def test_a_sell_without_a_position_moves_balances_only() -> None:
    """Base held from outside the ledger is sold without booking PnL."""
    ledger = Ledger("USDT", {"USDT": 0.0, "BTC": 1.0})

    result = ledger.apply_fill(fill("f1", Side.SELL, 1.0, 100.0, 0.1))

    assert result is not None
    book, closed = result
    assert closed is None
    assert book.realized_pnl == 0.0
    assert ledger.balances == {"USDT": pytest.approx(99.9), "BTC": 0.0}


def test_a_sell_larger_than_the_position_books_only_the_covered_part() -> None:
    """Of a 2.0 sale against a 1.0 position, half the proceeds and fee belong to the trip."""
    ledger = Ledger("USDT", {"USDT": 100.0, "BTC": 1.0})
    ledger.apply_fill(fill("f1", Side.BUY, 1.0, 100.0))

    result = ledger.apply_fill(fill("f2", Side.SELL, 2.0, 110.0, 2.0))

    assert result is not None
    assert result[1] is not None
    assert result[1].pnl == pytest.approx(110.0 - 1.0 - 100.0)
    assert ledger.balances["BTC"] == pytest.approx(0.0)


# -- exactly once and validation -------------------------------------------------------------------


def test_a_duplicate_fill_is_ignored_and_returns_none() -> None:
    """The same fill_id twice changes balances and positions once."""
    ledger = usdt()
    first = fill("f1", Side.BUY, 0.5, 20_000.0, 10.0)
    ledger.apply_fill(first)
    before = (dict(ledger.balances), ledger.book(BTC), ledger.fill_count)

    again = ledger.apply_fill(first)

    assert again is None
    assert (dict(ledger.balances), ledger.book(BTC), ledger.fill_count) == before
    assert ledger.fill_count == 1


def test_only_the_most_recent_fill_ids_are_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays bounded: the oldest ids leave the window, the fill count keeps growing."""
    monkeypatch.setattr("actors.state.ledger.RECENT_FILLS", 3)
    ledger = usdt()

    for n in range(1, 6):
        ledger.apply_fill(fill(f"f{n}", Side.BUY, 0.01, 20_000.0))

    assert ledger.fill_ids == {"f3", "f4", "f5"}
    assert ledger.fill_count == 5
    assert not ledger.knows_fill("f1")
    assert ledger.apply_fill(fill("f5", Side.BUY, 0.01, 20_000.0)) is None


def test_a_restored_ledger_keeps_the_last_ids_and_the_stored_fill_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """restore() takes ids oldest first and trims them to the window; the count is given."""
    monkeypatch.setattr("actors.state.ledger.RECENT_FILLS", 2)

    ledger = Ledger.restore(quote="USDT", balances={"USDT": 1.0}, fill_ids=["a", "b", "c"],
                            fill_count=40)

    assert ledger.fill_ids == {"b", "c"}
    assert ledger.fill_count == 40


@pytest.mark.parametrize(
    ("amount", "price", "fee", "pair"),
    [
        (0.0, 100.0, 0.0, BTC),
        (-1.0, 100.0, 0.0, BTC),
        (float("nan"), 100.0, 0.0, BTC),
        (1.0, 0.0, 0.0, BTC),
        (1.0, float("inf"), 0.0, BTC),
        (1.0, 100.0, -0.1, BTC),
        (1.0, 100.0, 0.0, "BTCUSDT"),
    ],
)
def test_an_unbookable_fill_raises_and_changes_nothing(
    amount: float, price: float, fee: float, pair: str
) -> None:
    """Bad amounts, prices, fees or symbols raise LedgerError before anything moves."""
    ledger = usdt()

    with pytest.raises(LedgerError, match="f-bad"):
        ledger.apply_fill(fill("f-bad", Side.BUY, amount, price, fee, pair=pair))

    assert ledger.balances == {"USDT": 100_000.0}
    assert ledger.positions == {}
    assert ledger.fill_count == 0


# -- orders --------------------------------------------------------------------------------------


def test_open_orders_appear_in_their_pairs_book_and_terminal_ones_leave_it() -> None:
    """NEW/OPEN orders are open; FILLED/CANCELED/REJECTED leave the open set."""
    ledger = usdt()
    ledger.apply_order(order("o-1", Side.BUY, reason=ExitReason.ENTRY, status=OrderStatus.NEW))
    ledger.apply_order(order("o-2", pair=ETH))

    assert [o.order_id for o in ledger.book(BTC).open_orders] == ["o-1"]
    assert [o.order_id for o in ledger.book(ETH).open_orders] == ["o-2"]

    ledger.apply_order(order("o-1", Side.BUY, status=OrderStatus.CANCELED, updated_ms=2_000))

    assert ledger.book(BTC).open_orders == ()
    assert ledger.order_count == 2


def test_a_stale_or_post_terminal_order_update_is_ignored() -> None:
    """An older update, or any update after a terminal one, does not change the order."""
    ledger = usdt()
    ledger.apply_order(order("o-1", status=OrderStatus.PARTIALLY_FILLED, updated_ms=2_000))

    assert not ledger.apply_order(order("o-1", status=OrderStatus.OPEN, updated_ms=1_500))
    assert ledger.open_orders["o-1"].status is OrderStatus.PARTIALLY_FILLED

    assert ledger.apply_order(order("o-1", status=OrderStatus.FILLED, updated_ms=3_000))
    assert not ledger.apply_order(order("o-1", status=OrderStatus.OPEN, updated_ms=4_000))
    assert "o-1" not in ledger.open_orders
    assert ledger.order_count == 1


# -- peaks, marks, equity ------------------------------------------------------------------------


def test_raise_peak_only_raises() -> None:
    """A higher price raises the peak; a lower one or a missing position changes nothing."""
    ledger = usdt()
    ledger.apply_fill(fill("f1", Side.BUY, 1.0, 100.0))

    assert ledger.raise_peak(BTC, 105.0)
    assert not ledger.raise_peak(BTC, 104.0)
    assert not ledger.raise_peak(ETH, 500.0)
    position = ledger.positions[BTC]
    assert position.peak_price == 105.0


def test_equity_counts_positions_at_their_mark_or_else_their_entry() -> None:
    """Before a mark a position is worth its entry; after, its mark."""
    ledger = usdt(1_000.0)
    ledger.apply_fill(fill("f1", Side.BUY, 2.0, 100.0, 1.0))

    assert ledger.equity() == pytest.approx(999.0)

    ledger.mark(MarkPrices(ts_ms=2_000, marks=((BTC, 150.0),)))

    assert ledger.equity() == pytest.approx(799.0 + 300.0)
    assert ledger.exposure() == ((BTC, pytest.approx(300.0)),)


def test_peak_equity_follows_the_highest_equity_seen() -> None:
    """The peak rises with equity and stays when equity falls."""
    ledger = usdt(1_000.0)
    ledger.apply_fill(fill("f1", Side.BUY, 2.0, 100.0))

    assert ledger.mark(MarkPrices(ts_ms=2_000, marks=((BTC, 150.0),)))
    assert not ledger.mark(MarkPrices(ts_ms=3_000, marks=((BTC, 90.0),)))

    assert ledger.peak_equity == pytest.approx(1_100.0)
    assert ledger.equity() == pytest.approx(980.0)


def test_marks_that_are_not_positive_and_finite_are_skipped() -> None:
    """A zero or NaN mark keeps the previous one."""
    ledger = usdt()
    ledger.mark(MarkPrices(ts_ms=2_000, marks=((BTC, 150.0),)))

    ledger.mark(MarkPrices(ts_ms=3_000, marks=((BTC, 0.0), (ETH, float("nan")))))

    assert ledger.marks == {BTC: 150.0}


def test_portfolio_and_snapshot_describe_the_whole_account() -> None:
    """Cash, equity, peak, realized, exposure, books for every pair seen and counts."""
    ledger = usdt(1_000.0)
    spec = StrategySpec.of("ema_cross", fast=5, slow=20)
    ledger.assign_strategy(ETH, spec)
    ledger.apply_order(order("o-1", Side.BUY, reason=ExitReason.ENTRY))
    ledger.apply_fill(fill("f1", Side.BUY, 1.0, 100.0))
    ledger.apply_fill(fill("f2", Side.SELL, 0.5, 120.0))
    ledger.mark(MarkPrices(ts_ms=2_000, marks=((BTC, 110.0),)))

    portfolio = ledger.portfolio(2_000)
    snapshot = ledger.snapshot()

    assert portfolio.ts_ms == 2_000
    assert portfolio.cash == pytest.approx(960.0)
    assert portfolio.equity == pytest.approx(960.0 + 55.0)
    assert portfolio.peak_equity == pytest.approx(1_015.0)
    assert portfolio.realized_pnl == pytest.approx(10.0)
    assert portfolio.exposure == ((BTC, pytest.approx(55.0)),)
    assert snapshot.quote == "USDT"
    assert [b.pair for b in snapshot.books] == [BTC, ETH]
    assert snapshot.books[1].strategy == spec
    assert snapshot.marks == ((BTC, 110.0),)
    assert (snapshot.fills, snapshot.orders) == (2, 1)


# -- property: the accounting identity -------------------------------------------------------------

_step = st.tuples(
    st.sampled_from([BTC, ETH]),
    st.sampled_from([Side.BUY, Side.SELL]),
    # amount to buy, or fraction of the position to sell (1 - 1e-12 leaves dust)
    st.one_of(st.floats(0.01, 1.0), st.just(1.0 - 1e-12)),
    st.floats(1.0, 1_000.0),
    st.floats(0.0, 0.01),  # fee as a fraction of notional
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_step, max_size=40))
def test_cash_and_position_cost_always_account_for_every_fill(
    steps: list[tuple[str, Side, float, float, float]],
) -> None:
    """Cash moves only by fills; realized PnL is proceeds minus the cost of closed parts."""
    initial = 1_000_000.0
    ledger = usdt(initial)
    flows = {BTC: 0.0, ETH: 0.0}
    closes = {BTC: 0, ETH: 0}
    for n, (pair, side, size, price, fee_rate) in enumerate(steps):
        held = ledger.positions.get(pair)
        if side is Side.SELL and held is None:
            continue
        amount = size if side is Side.BUY else size * held.amount  # type: ignore[union-attr]
        fee = amount * price * fee_rate
        result = ledger.apply_fill(fill(f"f{n}", side, amount, price, fee, pair=pair, ts_ms=n + 1))
        assert result is not None
        flows[pair] += amount * price - fee if side is Side.SELL else -(amount * price + fee)
        closes[pair] += result[1] is not None

        assert ledger.cash == pytest.approx(initial + sum(flows.values()), rel=1e-12)
        for p in (BTC, ETH):
            position = ledger.positions.get(p)
            open_cost = position.cost if position else 0.0
            assert ledger.realized.get(p, 0.0) == pytest.approx(
                flows[p] + open_cost, rel=1e-9, abs=1e-6
            )
            assert ledger.trades.get(p, 0) == closes[p]
            base = ledger.balances.get(p.split("/")[0], 0.0)
            assert base == pytest.approx(position.amount if position else 0.0, abs=1e-9)
            if position:
                assert position.amount > 0
                assert position.cost > 0


def test_positions_and_books_have_exactly_the_fields_the_hot_path_copies() -> None:
    """The ledger and the pair rebuild these field by field (attrs.evolve is slow): a new
    field must be copied there too, or it would silently fall back to its default."""
    assert [f.name for f in attrs.fields(Position)] == [
        "pair", "amount", "entry_price", "cost", "opened_ms", "peak_price"]
    assert [f.name for f in attrs.fields(PairBook)] == [
        "pair", "position", "open_orders", "realized_pnl", "trades", "strategy"]


# -- an inferred fill replaced by the real trades ------------------------------------------------


def test_replacing_an_inferred_buy_leaves_balances_and_position_as_the_real_trades_would() -> None:
    """Balances, the position's amount, cost and entry: the same as booking the trades."""
    real = [fill("o-1-t7", Side.BUY, 0.4, 100.0, 0.04), fill("o-1-t8", Side.BUY, 0.6, 105.0, 0.063)]
    direct = Ledger("USDT", {"USDT": 1_000.0})
    for f in real:
        direct.apply_fill(f)
    swapped = Ledger("USDT", {"USDT": 1_000.0})
    swapped.apply_fill(fill("o-1-inferred", Side.BUY, 1.0, 103.0))

    book = swapped.replace_fill(fill("o-1-inferred", Side.BUY, 1.0, 103.0), real)

    assert swapped.balances == pytest.approx(direct.balances)
    assert book.position is not None
    expected = direct.positions[BTC]
    assert (book.position.amount, book.position.entry_price, book.position.cost) == (
        pytest.approx(expected.amount), pytest.approx(expected.entry_price),
        pytest.approx(expected.cost))
    assert swapped.fill_count == 2
    assert swapped.knows_fill("o-1-t8")


def test_replacing_an_inferred_buy_after_its_position_closed_corrects_the_realized_pnl() -> None:
    """The round trip already closed: the trades' extra fee lowers its realized PnL."""
    ledger = Ledger("USDT", {"USDT": 1_000.0})
    inferred = fill("o-1-inferred", Side.BUY, 1.0, 100.0)
    ledger.apply_fill(inferred)
    ledger.apply_fill(fill("o-2-t9", Side.SELL, 1.0, 110.0, order_id="o-2"))
    assert ledger.realized[BTC] == pytest.approx(10.0)

    ledger.replace_fill(inferred, [fill("o-1-t7", Side.BUY, 1.0, 100.0, 0.1)])

    assert ledger.realized[BTC] == pytest.approx(9.9)
    assert ledger.balances["USDT"] == pytest.approx(1_009.9)


def test_a_fill_of_another_order_cannot_replace_an_inferred_fill() -> None:
    ledger = Ledger("USDT", {"USDT": 1_000.0})
    inferred = fill("o-1-inferred", Side.BUY, 1.0, 100.0)
    ledger.apply_fill(inferred)
    with pytest.raises(LedgerError, match="another order"):
        ledger.replace_fill(inferred, [fill("o-2-t7", Side.BUY, 1.0, 100.0, order_id="o-2")])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["buy", "sell", "mark"]),
                          st.sampled_from([BTC, ETH, "XRP/USDT", "SOL/USDT"]),
                          st.floats(0.5, 200.0)), max_size=40))
def test_equity_and_exposure_kept_per_pair_equal_summing_every_position(steps) -> None:
    """The values kept per pair and their running sum give the very floats an exact sum over
    every position at its mark gives (``math.fsum``), through buys, partial and closing sells
    and marks, in any order; so does the realized PnL over the pairs."""
    ledger = Ledger("USDT", {"USDT": 1e9})
    for n, (kind, pair, x) in enumerate(steps):
        held = ledger.positions.get(pair)
        if kind == "mark":
            ledger.mark(MarkPrices(ts_ms=n, marks=((pair, x),)))
        elif kind == "buy":
            ledger.apply_fill(fill(f"f{n}", Side.BUY, 1.5, x, pair=pair))
        elif held is not None:
            ledger.apply_fill(fill(f"f{n}", Side.SELL, held.amount / (1 if x > 100 else 3), x,
                                   pair=pair))

    held_value = math.fsum(position.amount * ledger.marks.get(position.pair, position.entry_price)
                           for position in ledger.positions.values())
    assert ledger.equity() == ledger.cash + held_value
    assert ledger.total_realized() == math.fsum(ledger.realized.values())
    restored = Ledger.restore(quote="USDT", balances=ledger.balances,
                              positions=ledger.positions.values(), realized=ledger.realized)
    restored.marks = ledger.marks
    assert restored.total_realized() == ledger.total_realized()
    assert ledger.exposure() == tuple(sorted(
        (p.pair, ledger.value(p)) for p in ledger.positions.values()))
    assert ledger.exposure([BTC]) == ((BTC, ledger.value(ledger.positions[BTC]) if BTC in
                                       ledger.positions else 0.0),)
