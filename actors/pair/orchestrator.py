"""The trading decisions of one pair: a plain class, no threads, no I/O.

``TradingOrchestrator`` turns a market tick into messages. It owns nothing durable: its view of
the pair (position, open orders) is a cache of the last ``PositionChanged`` the state actor
published, and it will not act before that cache has arrived. Between proposing an order and
hearing back it holds one ``pending`` proposal id so that a burst of ticks cannot propose twice;
the risk actor refuses a second entry for a busy pair anyway, so a restarted orchestrator that
lost that id is still safe.

The orchestrator actor runs it (on a worker of the pair pool); the threadless runtime and
the unit tests call it directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

import attrs
from loguru import logger

from actors.messages import (
    EVENTS,
    RISK,
    STATE,
    Envelope,
    ExitReason,
    ForceExit,
    MarketTick,
    MarkPrices,
    OrderRejected,
    OrderType,
    PairBook,
    PausePair,
    Position,
    PositionChanged,
    ProposeOrder,
    RaisePeak,
    ResumePair,
    Side,
    Signal,
    SignalRaised,
    StrategyAssigned,
    StrategySpec,
    StrategySwapped,
    SwapStrategy,
    builder,
    order_id_for,
)

_NOTHING: list[Envelope] = []

# Enum members read on every tick, as module constants: ``Signal.BUY`` goes through the enum
# class's attribute lookup each time (about 0.1 us here, a plain global 0.02 us).
_BUY = Signal.BUY
_SELL = Signal.SELL
_SIDE_BUY = Side.BUY
_SIDE_SELL = Side.SELL
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_ENTRY = ExitReason.ENTRY
_propose_order = builder(ProposeOrder)  # built per order (and marks per market second):
_mark_prices = builder(MarkPrices)  # a function call, not a class call (actors.messages)
_envelope = builder(Envelope)


class SignalSource(Protocol):
    """What the orchestrator needs of a strategy (see ``strategies.base.Strategy``)."""

    def on_tick(self, tick: MarketTick, /) -> Signal: ...

    def warm_up(self, ticks: Iterable[MarketTick], /) -> None: ...

    def describe(self) -> str: ...


def close_strategy(strategy: object) -> None:
    """Let a strategy that is done with release what it holds (an isolated one's process);
    a strategy without ``close`` holds nothing, and a failing close is only logged."""
    close = getattr(strategy, "close", None)
    if close is None:
        return
    try:
        close()
    except Exception:  # noqa: BLE001 - user code: the pair must go on whatever it raises
        logger.exception("closing strategy {!r} failed", strategy)


MarkSink = Callable[[str, float, int, int], object]
"""(pair, price, ts_ms, generation): applies a mark at once, as the state core would apply
a ``MarkPrices`` of that pair alone sent first on this tick. Only a runtime that delivers in
one thread can offer it: on coarse data (a tick every 15 s of market time) every tick marks,
and the message, its envelope and its dispatch were most of a backtest's time."""

StrategyBuilder = Callable[[str, StrategySpec], SignalSource]
"""(pair, spec) -> a built, validated strategy, warmed up on the pair's recent history."""


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value!r}")


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


@attrs.frozen(kw_only=True)
class ExitRules:
    """How open positions are managed; fractions of the entry (or peak) price, 0 = off."""

    stop_loss: float = attrs.field(default=0.02, validator=_fraction)
    take_profit: float = attrs.field(default=0.04, validator=_fraction)
    trailing_stop: float = attrs.field(default=0.015, validator=_fraction)
    trailing_activation: float = attrs.field(default=0.01, validator=_fraction)
    """The trailing stop arms once the peak is this far above entry."""
    entry_order_type: OrderType = OrderType.MARKET
    peak_step: float = attrs.field(default=1e-4, validator=_fraction)
    """A new peak is persisted only when it beats the last one by this fraction: it bounds
    state writes on a rising market at a cost of at most 0.01 % on the trailing level."""
    pending_timeout_ms: int = attrs.field(default=30_000, validator=_positive_int)
    """A proposal nobody answered for this long (a message lost in a restart) is forgotten."""


class TradingOrchestrator:
    """Decides, for one pair, when to enter, when to exit, and nothing else."""

    def __init__(
        self,
        pair: str,
        strategy: SignalSource,
        rules: ExitRules | None = None,
        *,
        generation: int = 0,
        run_id: str = "run",
        spec: StrategySpec | None = None,
        build: StrategyBuilder | None = None,
        mark_interval_ms: int = 1000,
        paused: bool = False,
    ) -> None:
        self.pair = pair
        self.strategy = strategy
        self.spec = spec
        self.build = build
        self.rules = rules or ExitRules()
        self._price_exits = bool(self.rules.stop_loss or self.rules.trailing_stop
                                 or self.rules.take_profit)
        """False when only a SELL signal can close a position (no rule to check per tick)."""
        self._peak_factor = 1.0 + self.rules.peak_step
        """A bid above ``peak`` times this is a new peak."""
        self.generation = generation
        self.book: PairBook | None = None
        self.peak = 0.0
        """The open position's trailing peak: the pair's own, at least the book's (0 flat)."""
        self._peak_due = 0.0
        """A raised peak not yet sent to state (0: none): one that cannot arm the trailing
        stop yet goes with the next mark, not in a message of its own."""
        self.pending: str | None = None
        self.exit_requested = False
        """A ``ForceExit`` waits for the next tick (and for an order in flight to finish)."""
        self.unknown = 0
        self.paused = paused
        self._wait_for_book = True
        """No new entries while paused; exits (stops, take-profit, signals) still run."""
        self.mark_interval_ms = mark_interval_ms
        self._next_mark_ms = 0
        self._pending_since_ms = 0
        self._gave_up = False
        """``stop_waiting`` ended the wait for the last order's answer."""
        self._seq = 0
        self._id_prefix = f"{run_id}-{pair.replace('/', '')}-g{generation}-"
        self.publish = True
        """False where nobody subscribes to events (a replay without a listener): no
        ``SignalRaised`` is built for them."""
        self.mark_to: MarkSink | None = None
        """Where the threadless runtime takes a mark directly, when the tick that makes it
        sends nothing else (see ``MarkSink``); None: every mark is a ``MarkPrices``."""

    # -- messages ---------------------------------------------------------------------------

    def handle(self, message: object) -> list[Envelope]:
        """Dispatch one message; returns what to send."""
        match message:
            case MarketTick():
                return self.process_market_tick(message)
            case PositionChanged(book=book, settled=settled):
                first = self.book is None
                self.on_book(book, settled)
                return self.adopt_persisted_strategy(book.strategy) if first else _NOTHING
            case SwapStrategy(spec=spec):
                return self.swap_strategy(spec)
            case PausePair():
                self.paused = True
                return _NOTHING
            case ResumePair():
                self.paused = False
                return _NOTHING
            case ForceExit():
                self.exit_requested = self.book is None or self.book.position is not None
                return _NOTHING
            case OrderRejected(proposal_id=pid) if pid == self.pending:
                self.pending = None
                return _NOTHING
            case OrderRejected():
                return _NOTHING
        self.unknown += 1
        logger.warning("{}: unexpected message {!r} ignored", self.pair, message)
        return _NOTHING

    def on_book(self, book: PairBook, settled: str = "") -> None:
        """Take the state actor's view of the pair; an order it knows, or has ``settled``
        (finished without ever being open), answers our proposal."""
        cached = self.book.position if self.book is not None else None
        incoming = book.position
        if incoming is None:
            self.peak = self._peak_due = 0.0
            self.exit_requested = False
        elif cached is not None and cached.opened_ms == incoming.opened_ms:
            # The same position: the peak only ever rises, and the pair's may be ahead of
            # what state has stored.
            self.peak = max(self.peak, incoming.peak_price)
        else:
            self.peak = incoming.peak_price
            self._peak_due = 0.0
        self.book = book
        if self.pending is not None:
            # State publishes a book after every order update, in order, so the book that
            # first lists our order always arrives before the one where it has finished.
            # From then on ``open_orders`` blocks new proposals. An order filled on arrival
            # is never listed: its one book names it as ``settled``.
            order_id = order_id_for(self.pending)
            if settled == order_id or any(o.order_id == order_id for o in book.open_orders):
                self.pending = None

    def awaiting(self) -> bool:
        """True before the pair's book has arrived, and while the pair waits for the outcome
        of its own order: a proposal not yet answered, or a market order not yet filled. The
        actor holds ticks back meanwhile, so that, however fast the feed, each tick is decided
        on a book that already includes the order's result (as in the threadless runtime). A
        limit order that rests does not count. The wait ends with the answer, or when the
        actor gives up on it after its wall-clock hold limit (``stop_waiting``), never by
        market time, so it takes no clock: a replay of hourly candles at full speed covers an
        hour of market time per tick, and a 30 s market-time limit let the pair run ahead of
        its own order (11,310 fills threadless, 38 through the actors, on seven years of
        hourly BTC/USDT)."""
        if self.book is None:
            # Before its book the pair cannot trade, and a signal decided now would be lost:
            # hold the ticks until the book is here (or the wait is given up on).
            return self._wait_for_book
        if self._gave_up:
            return False
        if self.pending is not None:
            return True
        orders = self.book.open_orders
        return bool(orders) and any(o.order_type is _MARKET for o in orders)

    def stop_waiting(self) -> None:
        """Give up on an order's answer (lost in a restart): decide on the next tick again."""
        self.pending = None
        self._wait_for_book = False
        self._gave_up = True

    @property
    def ready(self) -> bool:
        """False until the state actor's book arrived: never trade on a guessed position."""
        return self.book is not None

    # -- the tick path ----------------------------------------------------------------------

    def process_market_tick(self, tick: MarketTick) -> list[Envelope]:
        """Strategy first (it must see every tick), then exits, then entries; about once a
        market second the price this pair has reached goes to state as its mark."""
        signal = self.strategy.on_tick(tick)
        if tick.ts_ms < self._next_mark_ms:
            return self._decide(tick, signal)
        # Marks come from the pair, not the feed: the portfolio is valued at prices the
        # pairs have acted on, never at prices a fast feed has run ahead to.
        self._next_mark_ms = tick.ts_ms + self.mark_interval_ms
        peaks: tuple[tuple[str, float], ...] = ()
        if self._peak_due:
            peaks = ((self.pair, self._peak_due),)
            self._peak_due = 0.0
        out = self._decide(tick, signal)
        mark_to = self.mark_to
        if mark_to is not None and not out and not peaks:
            mark_to(self.pair, tick.price, tick.ts_ms, self.generation)
            return out
        mark = _envelope(STATE, _mark_prices(
            ts_ms=tick.ts_ms, marks=((self.pair, tick.price),), generation=self.generation,
            peaks=peaks))
        return [mark, *out]

    def _decide(self, tick: MarketTick, signal: Signal) -> list[Envelope]:
        book = self.book
        if book is None:
            return _NOTHING
        if self.pending is not None:
            if tick.ts_ms - self._pending_since_ms < self.rules.pending_timeout_ms:
                return _NOTHING
            self.pending = None
        if book.position is not None:
            if (tick.bid <= self.peak * self._peak_factor and signal is not _SELL
                    and not self._price_exits and not self.exit_requested):
                return _NOTHING  # no new peak, and no exit rule: held ticks mostly end here
            return self.update_open_positions(tick, signal)
        if signal is _BUY:
            return self.handle_buy_signal(tick)
        return _NOTHING

    def update_open_positions(self, tick: MarketTick, signal: Signal) -> list[Envelope]:
        """Stop-loss, trailing stop, take-profit and exit signal, in that order of priority."""
        book = self.book
        if book is None or book.position is None or book.open_orders:
            return _NOTHING
        position = book.position
        out = _NOTHING  # most ticks send nothing: no list is built for them
        peak = self.peak
        exit_price = tick.bid
        rules = self.rules
        if exit_price > peak * (1.0 + rules.peak_step):
            self.peak = peak = exit_price
            if rules.trailing_stop and peak >= position.entry_price * (
                    1.0 + rules.trailing_activation):
                # A peak the trailing stop acts on is stored at once (a restarted pair gets
                # it with its book); state does not answer.
                self._peak_due = 0.0
                out = [Envelope(STATE, RaisePeak(pair=self.pair, price=peak,
                                                 generation=self.generation))]
            else:
                # No exit depends on it yet: it goes with the next mark.
                self._peak_due = peak
        if self._price_exits or signal is _SELL or self.exit_requested:
            reason = self.exit_reason(position, peak, exit_price, signal)
            if reason is not None:
                proposal = self._propose(tick, _SIDE_SELL, reason, amount=position.amount)
                return proposal if out is _NOTHING else [*out, *proposal]
        return out

    def exit_reason(
        self, position: Position, peak: float, price: float, signal: Signal
    ) -> ExitReason | None:
        """Which rule, if any, closes ``position`` at ``price`` (an exit asked for by hand
        first)."""
        if self.exit_requested:
            return ExitReason.FLATTEN
        rules = self.rules
        entry = position.entry_price
        if rules.stop_loss and price <= entry * (1.0 - rules.stop_loss):
            return ExitReason.STOP_LOSS
        if (
            rules.trailing_stop
            and peak >= entry * (1.0 + rules.trailing_activation)
            and price <= peak * (1.0 - rules.trailing_stop)
        ):
            return ExitReason.TRAILING_STOP
        if rules.take_profit and price >= entry * (1.0 + rules.take_profit):
            return ExitReason.TAKE_PROFIT
        if signal is _SELL:
            return ExitReason.EXIT_SIGNAL
        return None

    def handle_buy_signal(self, tick: MarketTick) -> list[Envelope]:
        """Propose an entry if the pair is flat and idle; risk sizes and may refuse it."""
        book = self.book
        if (book is None or book.position is not None or book.open_orders or self.pending
                or self.paused):
            return _NOTHING
        limit = tick.bid if self.rules.entry_order_type is _LIMIT else None
        out = self._propose(tick, _SIDE_BUY, _ENTRY, limit_price=limit)
        if self.publish:
            out.append(Envelope(EVENTS, SignalRaised(pair=self.pair, signal=_BUY,
                                                     price=tick.price, ts_ms=tick.ts_ms)))
        return out

    def _propose(
        self,
        tick: MarketTick,
        side: Side,
        reason: ExitReason,
        *,
        amount: float | None = None,
        limit_price: float | None = None,
    ) -> list[Envelope]:
        self._seq += 1
        proposal_id = f"{self._id_prefix}{self._seq}"
        self.pending = proposal_id
        self._pending_since_ms = tick.ts_ms
        self._gave_up = False
        order_type = _LIMIT if limit_price is not None else _MARKET
        return [_envelope(RISK, _propose_order(
            proposal_id=proposal_id, pair=self.pair, generation=self.generation, side=side,
            order_type=order_type, reason=reason, price=tick.price, bid=tick.bid, ask=tick.ask,
            ts_ms=tick.ts_ms, amount=amount, limit_price=limit_price,
        ))]

    # -- strategy ---------------------------------------------------------------------------

    def adopt_persisted_strategy(self, persisted: StrategySpec | None) -> list[Envelope]:
        """The first book says which strategy the pair really runs: a swap made before a
        restart wins over the configured one; a pair new to the database records its own."""
        if persisted is None:
            if self.spec is None:
                return _NOTHING
            return [Envelope(STATE, StrategyAssigned(pair=self.pair, spec=self.spec,
                                                     generation=self.generation))]
        if persisted == self.spec:
            return _NOTHING
        return self.swap_strategy(persisted, persist=False)

    def swap_strategy(self, spec: StrategySpec, *, persist: bool = True) -> list[Envelope]:
        """Replace the strategy by a new one built, validated and warmed up first; if it cannot
        be built the old one keeps trading. The position and its exits are untouched."""
        if self.build is None:
            raise RuntimeError(f"{self.pair}: no strategy builder, cannot swap")
        try:
            strategy = self.build(self.pair, spec)
        except Exception as exc:  # noqa: BLE001 - user code: whatever it raises, the old one stays
            return [Envelope(EVENTS, StrategySwapped(pair=self.pair, spec=spec,
                                                     description="", error=str(exc)))]
        retired, self.strategy = self.strategy, strategy
        self.spec = spec
        close_strategy(retired)
        out = [Envelope(EVENTS, StrategySwapped(pair=self.pair, spec=spec,
                                                description=strategy.describe()))]
        if persist:
            out.append(Envelope(STATE, StrategyAssigned(pair=self.pair, spec=spec,
                                                        generation=self.generation)))
        return out
