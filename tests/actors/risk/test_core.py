"""Pre-trade risk: each rule on its own, sizing, the kill switch and the core's routing."""

from __future__ import annotations

import attrs
import pytest

from actors.messages import (
    EVENTS,
    EXECUTION,
    Envelope,
    ExitReason,
    FeedStale,
    GetBalances,
    GetRiskStatus,
    HaltChanged,
    HaltEntries,
    Order,
    OrderRejected,
    OrderSettled,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PortfolioChanged,
    PositionClosed,
    ProposeOrder,
    ResetHalt,
    ResumeEntries,
    Side,
    StateAvailabilityChanged,
    SubmitOrder,
)
from actors.risk.core import RiskBook, RiskConfig, RiskCore

DAY = 86_400_000
T0 = 19_700 * DAY + 12 * 3_600_000  # noon UTC
LOTS = {"BTC/USDT": 0.001, "ETH/USDT": 0.01, "XRP/USDT": 1.0}


def make_book(**config: object) -> RiskBook:
    return RiskBook(RiskConfig(**config), lambda pair: LOTS.get(pair, 0.001))  # type: ignore[arg-type]


def portfolio(
    equity: float = 10_000.0,
    *,
    peak: float | None = None,
    exposure: dict[str, float] | None = None,
    ts: int = T0,
) -> PortfolioChanged:
    exposure = exposure or {}
    return PortfolioChanged(
        ts_ms=ts,
        cash=equity - sum(exposure.values()),
        equity=equity,
        peak_equity=equity if peak is None else peak,
        exposure=tuple(exposure.items()),
        realized_pnl=0.0,
    )


def entry(
    pid: str = "p1",
    *,
    pair: str = "BTC/USDT",
    ask: float = 100.0,
    ts: int = T0,
    limit: float | None = None,
) -> ProposeOrder:
    return ProposeOrder(
        proposal_id=pid,
        pair=pair,
        generation=3,
        side=Side.BUY,
        order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
        reason=ExitReason.ENTRY,
        price=ask,
        bid=ask - 0.01,
        ask=ask,
        ts_ms=ts,
        limit_price=limit,
    )


def exit_(pid: str = "x1", *, pair: str = "BTC/USDT", amount: float = 1.5) -> ProposeOrder:
    return ProposeOrder(
        proposal_id=pid,
        pair=pair,
        generation=3,
        side=Side.SELL,
        order_type=OrderType.MARKET,
        reason=ExitReason.STOP_LOSS,
        price=100.0,
        bid=99.99,
        ask=100.0,
        ts_ms=T0,
        amount=amount,
    )


def closed(
    pnl: float, *, pair: str = "BTC/USDT", reason: ExitReason = ExitReason.EXIT_SIGNAL, ts: int = T0
) -> PositionClosed:
    return PositionClosed(pair=pair, reason=reason, pnl=pnl, ts_ms=ts)


def finished(order: SubmitOrder, status: OrderStatus = OrderStatus.FILLED) -> Order:
    filled = order.amount if status is OrderStatus.FILLED else 0.0
    return Order(
        order_id=order.order_id,
        pair=order.pair,
        side=order.side,
        order_type=order.order_type,
        reason=order.reason,
        amount=order.amount,
        status=status,
        created_ms=order.ts_ms,
        updated_ms=order.ts_ms,
        filled=filled,
        average_price=order.ask if filled else 0.0,
    )


def approved(result: SubmitOrder | OrderRejected) -> SubmitOrder:
    assert isinstance(result, SubmitOrder), result
    return result


def rejected(result: SubmitOrder | OrderRejected) -> OrderRejected:
    assert isinstance(result, OrderRejected), result
    return result


def funded_book(**config: object) -> RiskBook:
    book = make_book(**config)
    book.on_portfolio(portfolio())
    return book


# -- sizing --------------------------------------------------------------------------------------


def test_entry_is_sized_as_stake_fraction_of_equity_over_the_ask() -> None:
    """10% of 10,000 equity at an ask of 100 buys 10."""
    book = funded_book(stake_fraction=0.1)

    order = approved(book.check(entry()))

    assert order.amount == pytest.approx(10.0)
    assert (order.side, order.generation, order.bid, order.ask) == (Side.BUY, 3, 99.99, 100.0)


def test_entry_is_sized_by_a_fixed_stake_amount_when_set() -> None:
    """A stake_amount of 500 at 100 buys 5, whatever the equity."""
    book = funded_book(stake_amount=500.0)

    assert approved(book.check(entry())).amount == pytest.approx(5.0)


def test_entry_amount_is_floored_to_the_lot_size() -> None:
    """1,000 quote at 3 per unit with a lot of 1 buys 333, not 333.33."""
    book = funded_book()

    assert approved(book.check(entry(pair="XRP/USDT", ask=3.0))).amount == 333.0


def test_limit_entry_is_sized_at_its_limit_price() -> None:
    """A limit entry uses the limit, not the ask, to turn the stake into an amount."""
    book = funded_book()

    order = approved(book.check(entry(ask=100.0, limit=80.0)))

    assert order.amount == pytest.approx(12.5)
    assert (order.order_type, order.limit_price) == (OrderType.LIMIT, 80.0)


def test_order_id_is_derived_from_the_proposal_id() -> None:
    """The same proposal always becomes the same order id, so a retry cannot place a twin."""
    book = funded_book()

    assert approved(book.check(entry("abc"))).order_id == "o-abc"


def test_stake_shrinks_to_the_headroom_under_max_pair_exposure() -> None:
    """A stake above the per-pair limit is cut to the limit, not rejected."""
    book = funded_book(stake_fraction=0.5, max_pair_exposure=0.25)

    assert approved(book.check(entry())).amount == pytest.approx(25.0)


def test_stake_shrinks_to_the_headroom_under_max_total_exposure() -> None:
    """With 7,500 of 10,000 exposed elsewhere and an 80% cap, only 500 more may be bought."""
    book = make_book(max_total_exposure=0.8)
    book.on_portfolio(
        portfolio(exposure={"ETH/USDT": 2500.0, "XRP/USDT": 2500.0, "SOL/USDT": 2500.0})
    )

    assert approved(book.check(entry())).amount == pytest.approx(5.0)


def test_pending_entries_count_against_total_headroom() -> None:
    """An approved entry not yet filled already uses headroom for the next pair."""
    book = funded_book(stake_fraction=0.25, max_total_exposure=0.4)
    approved(book.check(entry("p1", pair="ETH/USDT")))  # 2,500 pending

    assert approved(book.check(entry("p2"))).amount == pytest.approx(15.0)


# -- rules one by one ----------------------------------------------------------------------------


def test_entry_while_halted_by_drawdown_is_rejected_as_halted() -> None:
    """Equity 15% under its peak stops entries and the detail names the numbers."""
    book = make_book(max_drawdown=0.15)
    book.on_portfolio(portfolio(8_500.0, peak=10_000.0))

    result = rejected(book.check(entry()))

    assert result.reason == "halted"
    assert result.detail.startswith("max_drawdown: drawdown 15.00% >= 15.00%")
    assert "8500.00" in result.detail
    assert "10000.00" in result.detail


def test_exit_is_approved_even_while_halted() -> None:
    """Reducing risk is never blocked: a sell passes with the proposal's amount."""
    book = make_book()
    book.on_portfolio(portfolio(5_000.0, peak=10_000.0))

    order = approved(book.check(exit_(amount=1.5)))

    assert (order.side, order.amount, order.order_id) == (Side.SELL, 1.5, "o-x1")
    assert book.status().halted


def test_exit_without_an_amount_is_rejected_as_invalid() -> None:
    """An exit must say how much to sell; risk does not guess a position size."""
    book = funded_book()

    result = rejected(book.check(attrs.evolve(exit_(), amount=None)))

    assert result.reason == "invalid_amount"


def test_entry_within_cooldown_after_a_stop_loss_is_rejected() -> None:
    """A stop-loss on a pair blocks its entries for stop_loss_cooldown_s of market time."""
    book = funded_book(stop_loss_cooldown_s=300.0)
    book.on_position_closed(closed(-10.0, reason=ExitReason.STOP_LOSS, ts=T0))

    result = rejected(book.check(entry(ts=T0 + 299_999)))

    assert result.reason == "cooldown"
    assert "0.001s left" in result.detail


def test_cooldown_expires_after_its_duration() -> None:
    """Once the cooldown has passed in market time the pair may enter again."""
    book = funded_book(stop_loss_cooldown_s=300.0)
    book.on_position_closed(closed(-10.0, reason=ExitReason.STOP_LOSS, ts=T0))

    approved(book.check(entry(ts=T0 + 300_000)))


def test_cooldown_applies_only_to_the_stopped_pair_and_only_after_a_stop_loss() -> None:
    """Other pairs and signal exits do not start a cooldown."""
    book = funded_book()
    book.on_position_closed(closed(-10.0, reason=ExitReason.STOP_LOSS, pair="ETH/USDT"))
    book.on_position_closed(closed(-10.0, reason=ExitReason.EXIT_SIGNAL, pair="BTC/USDT"))

    approved(book.check(entry(ts=T0 + 1)))


def test_entry_while_an_order_for_the_pair_is_in_flight_is_rejected_as_pair_busy() -> None:
    """A second entry before the first order is terminal is refused."""
    book = funded_book()
    approved(book.check(entry("p1")))

    assert rejected(book.check(entry("p2"))).reason == "pair_busy"


def test_terminal_order_frees_the_pair() -> None:
    """A canceled order no longer makes the pair busy."""
    book = funded_book()
    first = approved(book.check(entry("p1")))

    book.on_order(finished(first, OrderStatus.CANCELED))

    approved(book.check(entry("p2")))


def test_entry_on_a_pair_with_a_position_is_rejected_as_position_open() -> None:
    """Exposure on the pair means a position is open; no pyramiding."""
    book = make_book()
    book.on_portfolio(portfolio(exposure={"BTC/USDT": 1000.0}))

    assert rejected(book.check(entry())).reason == "position_open"


def test_filled_entry_counts_as_a_position_before_the_portfolio_confirms_it() -> None:
    """Between the fill and the next PortfolioChanged the pair cannot enter twice."""
    book = funded_book()
    first = approved(book.check(entry("p1")))

    book.on_order(finished(first))

    assert rejected(book.check(entry("p2"))).reason == "position_open"


def test_a_settled_order_frees_its_pair_and_the_portfolio_sets_the_exposure() -> None:
    """OrderSettled = the finished order, then the booked portfolio (its exposure replaces
    the order's estimate, never adds to it), then the closed round trip."""
    book = funded_book(max_total_exposure=0.2)
    first = approved(book.check(entry("p1")))
    after = portfolio(exposure={"BTC/USDT": 1000.0}, ts=T0 + 1)

    book.on_settled(OrderSettled(order=finished(first), portfolio=after))

    assert rejected(book.check(entry("p2", ts=T0 + 2))).reason == "position_open"
    # headroom 0.2 * 10,000 - 1,000 = the whole 1,000 stake; counted twice there would be none
    other = approved(book.check(entry("p3", pair="ETH/USDT", ts=T0 + 2)))
    assert other.amount == pytest.approx(10.0)


def test_a_settled_stop_loss_closes_the_position_and_starts_the_cooldown() -> None:
    """The closed round trip inside OrderSettled counts like a PositionClosed."""
    core = RiskCore(make_book())
    core.handle(portfolio(exposure={"BTC/USDT": 1000.0}))
    sell = approved(core.book.check(exit_()))

    out = core.handle(OrderSettled(order=finished(sell), portfolio=portfolio(ts=T0 + 1),
                                   closed=closed(-20.0, reason=ExitReason.STOP_LOSS,
                                                 ts=T0 + 1)))

    assert out == []
    assert rejected(core.book.check(entry(ts=T0 + 2))).reason == "cooldown"


def test_closed_position_allows_a_new_entry() -> None:
    """PositionClosed clears the pair's position (the portfolio confirms later)."""
    book = make_book()
    book.on_portfolio(portfolio(exposure={"BTC/USDT": 1000.0}))

    book.on_position_closed(closed(5.0))

    approved(book.check(entry(ts=T0 + 1)))


def test_open_positions_plus_pending_entries_are_capped_by_max_open_positions() -> None:
    """One open position and one pending entry fill a limit of two."""
    book = make_book(max_open_positions=2)
    book.on_portfolio(portfolio(exposure={"ETH/USDT": 1000.0}))
    approved(book.check(entry("p1", pair="XRP/USDT", ask=3.0)))

    result = rejected(book.check(entry("p2")))

    assert result.reason == "max_open_positions"
    assert result.detail == "1 open + 1 pending >= 2"


def test_entry_before_any_portfolio_is_rejected_as_no_equity() -> None:
    """Risk cannot size an order without knowing the equity."""
    book = make_book()

    result = rejected(book.check(entry()))

    assert (result.reason, result.detail) == ("no_equity", "no portfolio yet")


def test_entry_with_zero_equity_is_rejected_as_no_equity() -> None:
    """An empty account cannot enter."""
    book = make_book()
    book.on_portfolio(portfolio(0.0, peak=0.0))

    assert rejected(book.check(entry())).reason == "no_equity"


def test_entry_too_small_in_quote_is_rejected_as_below_min_notional() -> None:
    """An order worth less than min_notional after shrinking is refused, with the numbers."""
    book = make_book(min_notional=10.0, max_total_exposure=0.8)
    book.on_portfolio(
        portfolio(exposure={"ETH/USDT": 2500.0, "XRP/USDT": 2500.0, "SOL/USDT": 2995.0})
    )

    result = rejected(book.check(entry()))

    assert result.reason == "below_min_notional"
    assert result.detail.startswith("notional 5.00 < min_notional 10.00")


def test_entry_too_small_in_base_is_rejected_as_below_min_amount() -> None:
    """An order of fewer units than min_amount is refused, with the numbers."""
    book = funded_book(min_amount=20.0)

    result = rejected(book.check(entry()))

    assert result.reason == "below_min_amount"
    assert result.detail.startswith("amount 10 < min_amount 20")


def test_entry_that_floors_to_no_lot_is_rejected_even_without_minimums() -> None:
    """With no minimums set, a zero amount is still refused as below_min_amount."""
    book = funded_book(stake_amount=0.5, min_notional=0.0)

    assert rejected(book.check(entry(pair="XRP/USDT", ask=3.0))).reason == "below_min_amount"


def test_the_first_failing_rule_names_the_rejection() -> None:
    """Halted wins over a cooldown, which wins over a busy pair."""
    book = funded_book()
    approved(book.check(entry("p1")))
    book.on_position_closed(closed(-10.0, reason=ExitReason.STOP_LOSS, ts=T0))
    assert rejected(book.check(entry("p2", ts=T0 + 1))).reason == "cooldown"

    book.on_portfolio(portfolio(1_000.0, peak=10_000.0, ts=T0 + 2))

    assert rejected(book.check(entry("p3", ts=T0 + 3))).reason == "halted"


# -- the kill switch -----------------------------------------------------------------------------


def test_daily_realized_loss_at_the_limit_halts_entries() -> None:
    """Losing 5% of the day's starting equity in closed trades stops new entries."""
    book = funded_book(daily_loss_limit=0.05)
    book.on_position_closed(closed(-300.0, pair="ETH/USDT", ts=T0 + 1))
    approved(book.check(entry("p1", ts=T0 + 2)))
    book.on_position_closed(closed(-200.0, pair="XRP/USDT", ts=T0 + 3))

    result = rejected(book.check(entry("p2", pair="SOL/USDT", ts=T0 + 4)))

    assert result.reason == "halted"
    assert result.detail.startswith("daily_loss_limit: realized -500.00 today, limit -500.00")


def test_daily_limit_is_measured_against_equity_at_the_start_of_the_day() -> None:
    """Equity that fell during the day does not make the day's limit smaller."""
    book = funded_book(daily_loss_limit=0.05)
    book.on_portfolio(portfolio(9_600.0, peak=10_000.0, ts=T0 + 1))

    book.on_position_closed(closed(-490.0, ts=T0 + 2))

    assert not book.status().halted


def test_daily_halt_lifts_on_the_next_utc_day() -> None:
    """A daily-loss halt lasts until market time reaches the next UTC midnight."""
    book = funded_book(daily_loss_limit=0.05)
    book.on_position_closed(closed(-600.0, ts=T0))
    next_midnight = (T0 // DAY + 1) * DAY

    assert rejected(book.check(entry("p1", ts=next_midnight - 1))).reason == "halted"
    approved(book.check(entry("p2", ts=next_midnight)))
    assert not book.status().halted


def test_losses_of_the_previous_day_do_not_count_today() -> None:
    """The daily tally starts at zero each UTC day."""
    book = funded_book(daily_loss_limit=0.05)
    book.on_position_closed(closed(-400.0, ts=T0))

    book.on_position_closed(closed(-400.0, ts=T0 + DAY))

    assert not book.status().halted


def test_drawdown_halt_lasts_until_reset_halt() -> None:
    """A drawdown halt survives a new day and a recovery; only reset_halt lifts it."""
    book = make_book(max_drawdown=0.15)
    book.on_portfolio(portfolio(8_000.0, peak=10_000.0))
    book.on_portfolio(portfolio(8_400.0, peak=10_000.0, ts=T0 + DAY))
    assert rejected(book.check(entry("p1", ts=T0 + DAY))).reason == "halted"

    book.reset_halt()
    book.on_portfolio(portfolio(8_400.0, peak=10_000.0, ts=T0 + DAY + 1))

    approved(book.check(entry("p2", ts=T0 + DAY + 2)))


def test_drawdown_below_the_limit_does_not_halt() -> None:
    """A 14.9% drawdown under a 15% limit leaves trading on."""
    book = make_book(max_drawdown=0.15)
    book.on_portfolio(portfolio(8_510.0, peak=10_000.0))

    assert not book.status().halted


def test_status_counts_rejections_by_reason_and_approvals() -> None:
    """Every decision is counted."""
    book = make_book()
    book.check(entry("p1"))
    book.on_portfolio(portfolio())
    book.check(entry("p2"))
    book.check(entry("p3"))
    book.check(exit_())

    status = book.status()

    assert status.rejections == (("no_equity", 1), ("pair_busy", 1))
    assert status.approvals == 2
    assert (status.halted, status.halt_reason) == (False, "")


# -- the core ------------------------------------------------------------------------------------


def test_core_sends_an_approved_order_to_execution() -> None:
    """Approval is a single envelope to the execution service."""
    core = RiskCore(funded_book())

    (envelope,) = core.handle(entry())

    assert envelope.to == EXECUTION
    assert isinstance(envelope.message, SubmitOrder)


def test_core_sends_a_rejection_to_the_pair_and_to_events() -> None:
    """The proposing pair learns why, and so do outside subscribers."""
    core = RiskCore(make_book())

    envelopes = core.handle(entry())

    assert [e.to for e in envelopes] == ["BTC/USDT", EVENTS]
    assert all(isinstance(e.message, OrderRejected) for e in envelopes)


def test_core_learns_from_state_events_and_answers_status() -> None:
    """Portfolio, order and position events update the book and send nothing."""
    core = RiskCore(make_book())
    assert core.handle(portfolio()) == []
    (sent,) = core.handle(entry())
    assert core.handle(OrderUpdated(order=finished(sent.message))) == []
    assert core.handle(closed(-1.0, reason=ExitReason.STOP_LOSS)) == []

    status = core.answer(GetRiskStatus())

    assert status.approvals == 1
    assert rejected(core.book.check(entry("p2"))).reason == "cooldown"


def test_core_counts_unknown_messages_and_refuses_unknown_queries() -> None:
    """Nothing is dropped silently."""
    core = RiskCore(make_book())

    assert core.handle(Envelope(to="x", message=1)) == []
    assert core.unhandled == 1
    with pytest.raises(TypeError, match="GetBalances"):
        core.answer(GetBalances())


# -- config --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stake_fraction", 0.0),
        ("max_pair_exposure", 1.5),
        ("max_total_exposure", float("nan")),
        ("daily_loss_limit", -0.1),
        ("max_open_positions", -1),
        ("max_open_positions", 2.5),
        ("min_notional", -1.0),
        ("stake_amount", 0.0),
        ("stop_loss_cooldown_s", float("inf")),
    ],
)
def test_config_rejects_bad_values_naming_the_key(key: str, value: object) -> None:
    """Invalid limits fail at construction, with the key in the message."""
    with pytest.raises(ValueError, match=key):
        RiskConfig(**{key: value})  # type: ignore[arg-type]


# -- stale feed ----------------------------------------------------------------------------------


def stale(pair: str = "BTC/USDT", *, is_stale: bool = True) -> FeedStale:
    return FeedStale(pair=pair, stale=is_stale, age_s=12.5, ts_ms=1)


def test_an_entry_on_a_pair_whose_feed_is_stale_is_rejected_as_stale_feed() -> None:
    """No new position on prices nobody has confirmed for stale_after_s."""
    core = RiskCore(funded_book())

    assert core.handle(stale()) == []
    envelopes = core.handle(entry())

    rejection = envelopes[0].message
    assert (rejection.reason, rejection.pair) == ("stale_feed", "BTC/USDT")
    assert "12.5 s" in rejection.detail
    assert core.answer(GetRiskStatus()).stale_pairs == ("BTC/USDT",)


def test_an_exit_on_a_stale_pair_is_still_approved() -> None:
    """Exits are never blocked, stale feed or not."""
    book = funded_book()
    book.on_feed_stale(stale())

    order = approved(book.check(exit_(amount=1.5)))

    assert order.side is Side.SELL


def test_entries_are_allowed_again_once_the_feed_is_fresh_and_other_pairs_never_stop() -> None:
    """Staleness is per pair and lifts when data returns."""
    book = funded_book()
    book.on_feed_stale(stale("ETH/USDT"))
    assert approved(book.check(entry("e1")))  # BTC/USDT unaffected
    book = funded_book()
    book.on_feed_stale(stale())
    assert rejected(book.check(entry("e2"))).reason == "stale_feed"

    book.on_feed_stale(stale(is_stale=False))

    assert approved(book.check(entry("e3")))
    assert book.status().stale_pairs == ()


def test_a_halt_by_hand_refuses_entries_until_resumed_and_outlives_a_reset() -> None:
    """halt_entries: entries refused as halted (exits pass); reset_halt leaves it; only
    resume_entries lifts it."""
    book = make_book()
    book.on_portfolio(portfolio())
    book.halt_entries("maintenance")

    assert rejected(book.check(entry("p1"))).detail == "by hand: maintenance"
    approved(book.check(exit_("x1", pair="ETH/USDT")))
    book.reset_halt()
    assert book.status().halted
    book.resume_entries()
    approved(book.check(entry("p2")))


def test_the_core_answers_halts_by_hand_and_publishes_automatic_halt_changes() -> None:
    """HaltEntries/ResumeEntries/ResetHalt are asks answered with the status; a drawdown halt
    that the portfolio sets goes to EVENTS as HaltChanged, and so does its lifting."""
    core = RiskCore(make_book(max_drawdown=0.15))
    core.handle(portfolio())
    assert core.answer(HaltEntries(reason="x")).halted
    assert not core.answer(ResumeEntries()).halted

    out = core.handle(portfolio(8_000.0, peak=10_000.0, ts=T0 + 1))

    (event,) = [e.message for e in out if e.to == EVENTS]
    assert isinstance(event, HaltChanged) and event.halted and event.ts_ms == T0 + 1
    assert "max_drawdown" in event.reason
    assert not core.answer(ResetHalt()).halted
    assert core.handle(portfolio(8_000.0, peak=10_000.0, ts=T0 + 2)) == []


def lost(available: bool = False) -> StateAvailabilityChanged:
    return StateAvailabilityChanged(available=available, reason="" if available else
                                    "cannot reach PostgreSQL at 127.0.0.1:5432", waiting=3,
                                    ts_ms=1)


def test_while_the_state_database_is_lost_entries_are_refused_and_exits_approved() -> None:
    """No new position that could not be recorded; exits still go out; entries resume."""
    core = RiskCore(funded_book())

    assert core.handle(lost()) == []
    [envelope, _event] = core.handle(entry("e1"))
    exit_order = approved(core.book.check(exit_(amount=1.5)))
    core.handle(lost(available=True))

    assert (envelope.message.reason, envelope.message.pair) == ("state_unavailable", "BTC/USDT")
    assert "cannot reach PostgreSQL" in envelope.message.detail
    assert exit_order.side is Side.SELL
    assert approved(core.book.check(entry("e2", pair="ETH/USDT")))  # BTC has its exit in flight


def test_a_change_updates_the_view_a_full_portfolio_replaced() -> None:
    """State sends the pairs a fill or a mark moved (full=False): risk adds them, drops a pair
    at 0.0, and keeps the rest of what the last full portfolio said."""
    book = make_book(max_open_positions=2, max_pair_exposure=1.0, max_total_exposure=1.0)
    book.on_portfolio(portfolio(exposure={"ETH/USDT": 1000.0}))

    book.on_portfolio(attrs.evolve(portfolio(exposure={"BTC/USDT": 500.0}), full=False))

    assert rejected(book.check(entry(pair="XRP/USDT"))).reason == "max_open_positions"
    book.on_portfolio(attrs.evolve(portfolio(exposure={"ETH/USDT": 0.0}), full=False))
    assert rejected(book.check(entry(pair="BTC/USDT"))).reason == "position_open"
    assert isinstance(book.check(entry(pair="XRP/USDT")), SubmitOrder)


def test_no_entry_before_the_whole_portfolio_has_arrived() -> None:
    """A change alone is not the whole view (a restarted risk asks state for it): entries
    wait, with the reason risk gives before any portfolio; exits pass."""
    book = make_book()

    book.on_portfolio(attrs.evolve(portfolio(exposure={"BTC/USDT": 500.0}), full=False))

    refused = rejected(book.check(entry(pair="ETH/USDT")))
    assert (refused.reason, refused.detail) == ("no_equity", "no portfolio yet")
    assert isinstance(book.check(exit_()), SubmitOrder)
    book.on_portfolio(portfolio(exposure={"BTC/USDT": 500.0}))
    assert isinstance(book.check(entry("p2", pair="ETH/USDT")), SubmitOrder)
