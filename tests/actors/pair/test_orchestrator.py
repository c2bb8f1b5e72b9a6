"""The orchestrator's decisions, called directly with a scripted strategy: no threads."""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import pytest

from actors.messages import (
    EVENTS,
    RISK,
    STATE,
    ExitReason,
    ForceExit,
    MarketTick,
    MarkPrices,
    Order,
    OrderRejected,
    OrderStatus,
    OrderType,
    PairBook,
    Position,
    PositionChanged,
    ProposeOrder,
    RaisePeak,
    Side,
    Signal,
    StrategyAssigned,
    StrategySpec,
    StrategySwapped,
    SwapStrategy,
    order_id_for,
)
from actors.pair.orchestrator import ExitRules, TradingOrchestrator

PAIR = "BTC/USDT"


class ScriptedStrategy:
    """Returns the signals it is given, one per tick, then HOLD."""

    def __init__(self, signals: Iterable[Signal] = (), name: str = "scripted") -> None:
        self.signals = list(signals)
        self.seen: list[float] = []
        self.warmed: list[MarketTick] = []
        self.name = name

    def on_tick(self, tick: MarketTick) -> Signal:
        self.seen.append(tick.price)
        return self.signals.pop(0) if self.signals else Signal.HOLD

    def warm_up(self, ticks: Iterable[MarketTick]) -> None:
        self.warmed.extend(ticks)

    def describe(self) -> str:
        return self.name


def tick(price: float, ts: int = 1_000, spread: float = 0.0) -> MarketTick:
    return MarketTick(pair=PAIR, ts_ms=ts, price=price, bid=price - spread, ask=price + spread)


def book(
    position: Position | None = None,
    orders: tuple[Order, ...] = (),
    spec: StrategySpec | None = None,
) -> PairBook:
    return PairBook(
        pair=PAIR, position=position, open_orders=orders, realized_pnl=0.0, trades=0, strategy=spec
    )


def position(entry: float = 100.0, peak: float | None = None, amount: float = 1.0) -> Position:
    return Position(
        pair=PAIR,
        amount=amount,
        entry_price=entry,
        cost=entry * amount,
        opened_ms=1,
        peak_price=peak or entry,
    )


def proposals(out: list) -> list[ProposeOrder]:
    return [e.message for e in out if e.to == RISK]


def ready(
    strategy: ScriptedStrategy, rules: ExitRules | None = None, pos: Position | None = None
) -> TradingOrchestrator:
    core = TradingOrchestrator(PAIR, strategy, rules or ExitRules())
    core.handle(PositionChanged(book=book(pos)))
    return core


def test_a_buy_signal_when_flat_proposes_a_market_entry_to_risk():
    """BUY on a flat pair -> one ProposeOrder (risk sizes it) with the tick's quote."""
    core = ready(ScriptedStrategy([Signal.BUY]))

    out = core.process_market_tick(tick(100.0, spread=0.5))

    [p] = proposals(out)
    assert (p.side, p.order_type, p.reason, p.amount) == (
        Side.BUY,
        OrderType.MARKET,
        ExitReason.ENTRY,
        None,
    )
    assert (p.bid, p.ask, p.price) == (99.5, 100.5, 100.0)
    assert any(e.to == EVENTS for e in out)


def test_nothing_is_traded_before_the_state_actor_sent_the_book():
    """A new orchestrator must not guess its position: it waits for the book."""
    strategy = ScriptedStrategy([Signal.BUY])
    core = TradingOrchestrator(PAIR, strategy)

    out = core.process_market_tick(tick(100.0))

    assert proposals(out) == []
    assert strategy.seen == [100.0]  # the strategy still saw the tick


def test_ticks_are_held_until_the_book_arrives_so_no_signal_is_lost():
    """awaiting() is True before the book: the actor holds ticks instead of losing a BUY."""
    core = TradingOrchestrator(PAIR, ScriptedStrategy([Signal.BUY]))

    waiting_before = core.awaiting()
    core.handle(PositionChanged(book=book()))

    assert waiting_before and not core.awaiting()
    assert len(proposals(core.process_market_tick(tick(100.0)))) == 1


def test_giving_up_on_the_book_stops_the_wait():
    """A book that never comes (a lost message) does not hold ticks forever."""
    core = TradingOrchestrator(PAIR, ScriptedStrategy())

    core.stop_waiting()

    assert not core.awaiting()


def test_a_pending_proposal_blocks_a_second_entry_until_risk_answers():
    """Two BUYs in a row -> one proposal; a rejection frees the pair again."""
    core = ready(ScriptedStrategy([Signal.BUY, Signal.BUY, Signal.BUY]))

    first = proposals(core.process_market_tick(tick(100.0, ts=1)))
    second = proposals(core.process_market_tick(tick(100.0, ts=2)))
    core.handle(
        OrderRejected(
            proposal_id=first[0].proposal_id, pair=PAIR, reason="cooldown", detail="", ts_ms=2
        )
    )
    third = proposals(core.process_market_tick(tick(100.0, ts=3)))

    assert len(first) == 1 and second == [] and len(third) == 1
    assert third[0].proposal_id != first[0].proposal_id


def test_the_book_that_lists_the_order_ends_the_pending_proposal():
    """Once state tracks the order, open_orders (not pending) blocks new proposals."""
    core = ready(ScriptedStrategy([Signal.BUY]))
    [p] = proposals(core.process_market_tick(tick(100.0)))
    order = Order(
        order_id=order_id_for(p.proposal_id),
        pair=PAIR,
        side=Side.BUY,
        order_type=OrderType.MARKET,
        reason=ExitReason.ENTRY,
        amount=1.0,
        status=OrderStatus.NEW,
        created_ms=1,
        updated_ms=1,
    )

    core.handle(PositionChanged(book=book(orders=(order,))))

    assert core.pending is None
    assert core.handle_buy_signal(tick(100.0)) == []


def test_a_book_that_names_the_order_settled_ends_the_pending_proposal():
    """An order filled on arrival is never listed open: the one book after it names it as
    settled, which answers the proposal, and the pair decides on the next tick again."""
    core = ready(ScriptedStrategy([Signal.BUY, Signal.SELL]))
    [p] = proposals(core.process_market_tick(tick(100.0, ts=1)))
    assert core.awaiting()

    core.handle(PositionChanged(book=book(position(entry=100.0)),
                                settled=order_id_for(p.proposal_id)))

    assert core.pending is None
    assert not core.awaiting()
    [exit_] = proposals(core.process_market_tick(tick(100.0, ts=2)))
    assert exit_.reason is ExitReason.EXIT_SIGNAL


def test_a_book_that_settles_another_order_keeps_the_proposal_pending():
    """Only the pair's own order answers its proposal."""
    core = ready(ScriptedStrategy([Signal.BUY]))
    core.process_market_tick(tick(100.0, ts=1))

    core.handle(PositionChanged(book=book(), settled="o-someone-else"))

    assert core.pending is not None


def test_a_lost_proposal_is_forgotten_after_the_pending_timeout():
    """No answer within pending_timeout_ms (market time) -> the pair may propose again."""
    rules = ExitRules(pending_timeout_ms=5_000)
    core = ready(ScriptedStrategy([Signal.BUY, Signal.HOLD, Signal.BUY]), rules)

    core.process_market_tick(tick(100.0, ts=1_000))
    blocked = proposals(core.process_market_tick(tick(100.0, ts=2_000)))
    again = proposals(core.process_market_tick(tick(100.0, ts=7_000)))

    assert blocked == [] and len(again) == 1


def test_a_pending_proposal_holds_the_pair_however_much_market_time_passes():
    """The actor holds ticks until the answer or its own wall-clock limit: an hour of market
    time per tick (a full-speed replay of hourly candles) must not end the wait."""
    core = ready(ScriptedStrategy([Signal.BUY]))
    core.process_market_tick(tick(100.0, ts=1_000))

    waiting = core.awaiting()  # takes no clock: market time cannot end the wait
    core.stop_waiting()  # the actor's hold limit

    assert waiting and core.awaiting() is False


@pytest.mark.parametrize(
    ("price", "peak", "reason"),
    [
        (97.9, 100.0, ExitReason.STOP_LOSS),  # -2.1 % from entry
        (104.1, 104.1, ExitReason.TAKE_PROFIT),  # +4.1 %
        (100.4, 102.0, ExitReason.TRAILING_STOP),  # peak armed (+2 %), fell 1.57 % from it
    ],
)
def test_exit_rules_close_the_position_with_the_right_reason(price, peak, reason):
    """Stop-loss, take-profit and trailing stop each sell the whole position."""
    core = ready(ScriptedStrategy(), pos=position(entry=100.0, peak=peak, amount=0.5))

    [p] = proposals(core.update_open_positions(tick(price), Signal.HOLD))

    assert (p.side, p.reason, p.amount) == (Side.SELL, reason, 0.5)


def test_the_trailing_stop_is_not_armed_before_the_activation_gain():
    """A peak only +0.5 % above entry does not arm the 1.5 % trailing stop."""
    core = ready(ScriptedStrategy(), pos=position(entry=100.0, peak=100.5))

    assert proposals(core.update_open_positions(tick(99.0), Signal.HOLD)) == []


def test_a_sell_signal_exits_an_open_position():
    """The strategy's SELL is an exit signal when nothing else fired."""
    core = ready(ScriptedStrategy([Signal.SELL]), pos=position())

    [p] = proposals(core.process_market_tick(tick(100.5)))

    assert p.reason is ExitReason.EXIT_SIGNAL


def test_stop_loss_wins_over_an_exit_signal():
    """Priority: a stop-loss reason is reported even when the strategy also says SELL."""
    core = ready(ScriptedStrategy([Signal.SELL]), pos=position())

    [p] = proposals(core.process_market_tick(tick(90.0)))

    assert p.reason is ExitReason.STOP_LOSS


def test_a_new_high_is_sent_to_state_and_cached():
    """The pair holds its trailing peak; state only persists it (no answer comes back)."""
    core = ready(ScriptedStrategy(), pos=position(entry=100.0))

    out = core.update_open_positions(tick(101.0), Signal.HOLD)

    assert [e.message for e in out if e.to == STATE] == [RaisePeak(pair=PAIR, price=101.0)]
    assert core.peak == 101.0
    # a rise smaller than peak_step is not worth a write
    assert core.update_open_positions(tick(101.005), Signal.HOLD) == []


def test_a_peak_no_exit_depends_on_yet_goes_to_state_with_the_next_mark():
    """Below the trailing stop's activation (or with the trailing stop off) a new high is
    not a message of its own: the pair acts on it at once and the next mark carries it."""
    rules = ExitRules(trailing_activation=0.05, stop_loss=0.0, take_profit=0.0)
    core = ready(ScriptedStrategy([Signal.HOLD] * 3), rules, pos=position(entry=100.0))

    raised = core.process_market_tick(tick(101.0, ts=1_000))
    higher = core.process_market_tick(tick(102.0, ts=1_500))
    marked = core.process_market_tick(tick(101.5, ts=2_000))

    assert [type(e.message) for e in raised] == [MarkPrices]
    assert raised[0].message.peaks == ()
    assert higher == []
    assert core.peak == 102.0
    [mark] = [e.message for e in marked if e.to == STATE]
    assert mark.peaks == ((PAIR, 102.0),)


def test_a_new_position_forgets_the_old_one_s_unsent_peak():
    """A peak waiting for the mark belongs to its position: a closed one's is never sent."""
    rules = ExitRules(trailing_stop=0.0, stop_loss=0.0, take_profit=0.0)
    core = ready(ScriptedStrategy([Signal.HOLD] * 2), rules, pos=position(entry=100.0))
    core.process_market_tick(tick(100.0, ts=1_000))
    core.process_market_tick(tick(110.0, ts=1_500))

    core.handle(PositionChanged(book=book()))
    core.handle(PositionChanged(book=book(Position(
        pair=PAIR, amount=1.0, entry_price=90.0, cost=90.0, opened_ms=1_600,
        peak_price=90.0))))
    out = core.process_market_tick(tick(90.0, ts=2_000))

    assert core.peak == 90.0
    assert [e.message.peaks for e in out if isinstance(e.message, MarkPrices)] == [()]


def test_a_late_book_never_lowers_the_trailing_peak():
    """The reply to RaisePeak(102) arriving after the peak reached 103 keeps 103."""
    core = ready(ScriptedStrategy(), pos=position(entry=100.0))
    core.update_open_positions(tick(102.0), Signal.HOLD)
    core.update_open_positions(tick(103.0), Signal.HOLD)

    core.handle(PositionChanged(book=book(position(entry=100.0, peak=102.0))))

    assert core.peak == 103.0
    [p] = proposals(core.update_open_positions(tick(101.4), Signal.HOLD))
    assert p.reason is ExitReason.TRAILING_STOP


def test_no_exit_is_proposed_while_an_order_is_open():
    """An open order means something is already happening to the position."""
    order = Order(
        order_id="o-x",
        pair=PAIR,
        side=Side.SELL,
        order_type=OrderType.LIMIT,
        reason=ExitReason.TAKE_PROFIT,
        amount=1.0,
        status=OrderStatus.OPEN,
        created_ms=1,
        updated_ms=1,
        limit_price=110.0,
    )
    core = TradingOrchestrator(PAIR, ScriptedStrategy())
    core.handle(PositionChanged(book=book(position(), orders=(order,))))

    assert core.update_open_positions(tick(50.0), Signal.HOLD) == []


def test_limit_entries_are_proposed_at_the_bid_when_configured():
    """entry_order_type=limit -> a LIMIT proposal priced at the bid."""
    core = ready(ScriptedStrategy([Signal.BUY]), ExitRules(entry_order_type=OrderType.LIMIT))

    [p] = proposals(core.process_market_tick(tick(100.0, spread=0.5)))

    assert (p.order_type, p.limit_price) == (OrderType.LIMIT, 99.5)


def test_a_pair_new_to_the_database_records_its_strategy():
    """First book without a spec -> StrategyAssigned to state."""
    spec = StrategySpec.of("ema_cross")
    core = TradingOrchestrator(PAIR, ScriptedStrategy(), spec=spec)

    out = core.handle(PositionChanged(book=book()))

    assert [e.message for e in out] == [StrategyAssigned(pair=PAIR, spec=spec)]


def test_a_persisted_strategy_wins_over_the_configured_one():
    """After a restart the swapped strategy comes back, built by the builder."""
    built: list[StrategySpec] = []

    def build(pair: str, spec: StrategySpec) -> ScriptedStrategy:
        built.append(spec)
        return ScriptedStrategy(name=spec.path)

    persisted = StrategySpec.of("rsi_reversion")
    core = TradingOrchestrator(
        PAIR, ScriptedStrategy(), spec=StrategySpec.of("ema_cross"), build=build
    )

    out = core.handle(PositionChanged(book=book(spec=persisted)))

    assert built == [persisted] and core.strategy.describe() == "rsi_reversion"
    assert not any(e.to == STATE for e in out)  # it is already persisted


def test_a_swap_that_cannot_be_built_keeps_the_old_strategy():
    """An invalid strategy is refused with its error; the old one goes on."""

    def build(pair: str, spec: StrategySpec) -> ScriptedStrategy:
        raise ValueError("unknown strategy 'nope'")

    old = ScriptedStrategy(name="old")
    core = ready(old)
    core.build = build

    out = core.handle(SwapStrategy(pair=PAIR, spec=StrategySpec.of("nope")))

    [event] = [e.message for e in out]
    assert isinstance(event, StrategySwapped) and "nope" in event.error
    assert core.strategy is old


def test_a_valid_swap_keeps_the_open_position_and_persists_the_spec():
    """The position is untouched; the new spec goes to state."""
    new = ScriptedStrategy([Signal.SELL], name="new")
    core = ready(ScriptedStrategy(), pos=position())
    core.build = lambda pair, spec: new

    out = core.handle(SwapStrategy(pair=PAIR, spec=StrategySpec.of("new")))

    assert core.strategy is new and core.book.position == position()
    assert any(isinstance(e.message, StrategyAssigned) for e in out)
    [p] = proposals(core.process_market_tick(tick(100.5)))
    assert p.reason is ExitReason.EXIT_SIGNAL  # managed under the new strategy


def test_the_pair_reports_its_price_as_a_mark_once_per_market_second():
    """Marks come from the prices the pair processed, at most one per mark interval."""
    core = ready(ScriptedStrategy())

    marks = [[e.message for e in core.process_market_tick(tick(p, ts=ts)) if e.to == STATE]
             for p, ts in ((100.0, 1_000), (101.0, 1_500), (102.0, 2_000))]

    assert marks == [[MarkPrices(ts_ms=1_000, marks=((PAIR, 100.0),))], [],
                     [MarkPrices(ts_ms=2_000, marks=((PAIR, 102.0),))]]


def test_a_mark_sink_takes_the_marks_of_ticks_that_send_nothing_else():
    """With ``mark_to`` (the threadless runtime) a tick that only marks sends nothing and
    hands the mark over; a tick that proposes still sends its mark first, as a message."""
    core = ready(ScriptedStrategy([Signal.HOLD, Signal.BUY]))
    taken: list[tuple[str, float, int, int]] = []
    core.mark_to = lambda *mark: taken.append(mark)

    quiet = core.process_market_tick(tick(100.0, ts=1_000))
    busy = core.process_market_tick(tick(101.0, ts=2_000))

    assert quiet == [] and taken == [(PAIR, 100.0, 1_000, 0)]
    assert [type(e.message) for e in busy][:2] == [MarkPrices, ProposeOrder]
    assert busy[0].message == MarkPrices(ts_ms=2_000, marks=((PAIR, 101.0),))
    assert len(taken) == 1


def test_exit_rules_reject_fractions_outside_zero_to_one():
    """A stop-loss of 150 % is a configuration error, not a rule."""
    with pytest.raises(ValueError, match="stop_loss"):
        ExitRules(stop_loss=1.5)


def test_an_unknown_message_is_counted_not_silently_ignored():
    """The dispatch is over a closed set of message types; anything else is counted."""
    core = ready(ScriptedStrategy())

    out = core.handle(attrs.make_class("Odd", [])())

    assert out == [] and core.unknown == 1


def test_a_forced_exit_sells_the_whole_position_on_the_next_tick_as_flatten():
    """ForceExit: the next tick proposes a market sell of the position, reason flatten, even
    with every exit rule off and a HOLD signal; the request ends with the position."""
    rules = ExitRules(stop_loss=0.0, take_profit=0.0, trailing_stop=0.0)
    core = ready(ScriptedStrategy(), rules, pos=position(amount=2.0))
    assert core.handle(ForceExit(pair=PAIR)) == []

    (proposal,) = proposals(core.process_market_tick(tick(101.0, spread=0.5)))

    assert proposal.side is Side.SELL and proposal.amount == 2.0
    assert proposal.reason is ExitReason.FLATTEN and proposal.bid == 100.5
    core.handle(PositionChanged(book=book(None)))
    assert not core.exit_requested


def test_a_forced_exit_without_exit_rules_sells_below_the_peak_too():
    """With every exit rule off, a held tick that makes no new peak ends early; a forced
    exit must not end there."""
    rules = ExitRules(stop_loss=0.0, take_profit=0.0, trailing_stop=0.0)
    core = ready(ScriptedStrategy(), rules, pos=position(amount=2.0))
    core.handle(ForceExit(pair=PAIR))

    (proposal,) = proposals(core.process_market_tick(tick(90.0, spread=0.5)))

    assert proposal.side is Side.SELL and proposal.reason is ExitReason.FLATTEN


def test_a_forced_exit_of_a_flat_pair_is_forgotten_and_waits_for_an_open_order():
    """Flat: nothing is requested, so the next position is not sold. With an order open the
    exit waits for it rather than doubling it."""
    core = ready(ScriptedStrategy())
    core.handle(ForceExit(pair=PAIR))
    assert not core.exit_requested
    order = Order(order_id="o-x", pair=PAIR, side=Side.SELL, order_type=OrderType.LIMIT,
                  reason=ExitReason.TAKE_PROFIT, amount=1.0, status=OrderStatus.OPEN,
                  created_ms=1, updated_ms=1, limit_price=110.0)
    core.handle(PositionChanged(book=book(position(), orders=(order,))))
    core.handle(ForceExit(pair=PAIR))
    assert proposals(core.process_market_tick(tick(100.0))) == []
    core.handle(PositionChanged(book=book(position())))
    assert proposals(core.process_market_tick(tick(100.0)))[0].reason is ExitReason.FLATTEN
