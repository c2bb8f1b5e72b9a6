"""Portfolio-wide pre-trade risk: the one place that decides whether a proposal becomes an order.

``RiskBook`` owns the limits (position count, exposure per pair and in total, minimum order
size), the kill switch (daily realized loss, drawdown from the equity peak) and the stop-loss
cooldown, plus the view of the portfolio they need, fed by the state actor's events. Pairs only
propose; nothing reaches the exchange without passing ``check``, so limits hold across all
pairs at once rather than per pair.

Exits are never blocked: a limit exists to reduce risk, and refusing to sell would increase it.

Plain, single-threaded and deterministic — time is the ``ts_ms`` of the messages (market time),
never the wall clock — so the same core runs inside the risk actor and in the threadless
runtime. It keeps no durable state: after a restart it rebuilds from the next
``PortfolioChanged`` and the orders state replays, and a manual ``reset_halt`` is forgotten
(the kill switch fails safe). A halt made by hand is kept for it by the state database
(``KeepManualHalt``), and the system hands it back at start, so it fails safe too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import attrs

from actors.exchange import floor_to_step
from actors.fencing import GenerationFence
from actors.messages import (
    EVENTS,
    EXECUTION,
    Envelope,
    ExitReason,
    FeedStale,
    GetRiskStatus,
    HaltChanged,
    HaltEntries,
    Order,
    OrderRejected,
    OrderSettled,
    OrderType,
    OrderUpdated,
    PairGeneration,
    PortfolioChanged,
    PositionClosed,
    ProposeOrder,
    ResetHalt,
    ResumeEntries,
    RiskStatus,
    Side,
    StateAvailabilityChanged,
    SubmitOrder,
    builder,
    order_id_for,
)

_DAY_MS = 86_400_000

# Enum members read per order, as module constants (a global read, not the enum's lookup).
_BUY = Side.BUY
_SELL = Side.SELL
_LIMIT = OrderType.LIMIT
_submit_order = builder(SubmitOrder)  # one per order: a function call (actors.messages)
_envelope = builder(Envelope)

COOLDOWN_REASONS = frozenset({ExitReason.STOP_LOSS})
"""Exit reasons that start the per-pair cooldown."""


# -- configuration -------------------------------------------------------------------------------


def _fraction(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0 < value <= 1):
        raise ValueError(
            f"risk.{attribute.name} = {value!r} is invalid: expected a fraction in (0, 1]"
        )


def _non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(
            f"risk.{attribute.name} = {value!r} is invalid: expected a finite number >= 0"
        )


def _count(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise ValueError(f"risk.{attribute.name} = {value!r} is invalid: expected an integer >= 0")


def _optional_positive(
    _instance: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not (
        isinstance(value, int | float) and math.isfinite(value) and value > 0
    ):
        raise ValueError(
            f"risk.{attribute.name} = {value!r} is invalid: expected a number > 0, or unset to "
            "size by stake_fraction"
        )


@attrs.frozen(kw_only=True)
class RiskConfig:
    """Risk limits. Exposures and losses are fractions of equity.

    ``stake_amount`` (quote) sizes every entry when set, else ``stake_fraction`` of equity.
    """

    stake_amount: float | None = attrs.field(default=None, validator=_optional_positive)
    stake_fraction: float = attrs.field(default=0.1, validator=_fraction)
    max_open_positions: int = attrs.field(default=5, validator=_count)
    max_pair_exposure: float = attrs.field(default=0.25, validator=_fraction)
    max_total_exposure: float = attrs.field(default=0.8, validator=_fraction)
    min_notional: float = attrs.field(default=10.0, validator=_non_negative)
    min_amount: float = attrs.field(default=0.0, validator=_non_negative)
    daily_loss_limit: float = attrs.field(default=0.05, validator=_fraction)
    max_drawdown: float = attrs.field(default=0.15, validator=_fraction)
    stop_loss_cooldown_s: float = attrs.field(default=300.0, validator=_non_negative)


# -- the book ------------------------------------------------------------------------------------


@attrs.define(slots=True)
class _Live:
    """An approved order not yet terminal."""

    pair: str
    side: Side
    notional: float


def _money(x: float) -> str:
    return f"{x:.2f}"


class RiskBook:
    """Pre-trade checks over the whole portfolio.

    Args:
        config: the limits.
        lot_size: amount step of a pair, to size entries the exchange will not floor further.
    """

    def __init__(self, config: RiskConfig, lot_size: Callable[[str], float], *,
                 exchange_min_notional: Callable[[str], float] | None = None,
                 exchange_min_amount: Callable[[str], float] | None = None) -> None:
        self._config = config
        # A pair's lot never changes; the lookup behind it may build a profile per call.
        self._lot_size = functools.cache(lot_size)
        # A real exchange's per-pair minimums (``MarketRules``) raise the configured ones.
        self._exchange_min_notional = exchange_min_notional
        self._exchange_min_amount = exchange_min_amount
        self._cooldown_ms = round(config.stop_loss_cooldown_s * 1000)
        # portfolio view
        self._equity: float | None = None
        self._peak = 0.0
        self._follow_state_peak = True
        self._exposure: dict[str, float] = {}
        self._open: set[str] = set()
        self._whole_view = False
        """A full ``PortfolioChanged`` has arrived: the changes since complete the view."""
        # orders in flight
        self._live: dict[str, _Live] = {}
        self._busy: dict[str, int] = {}
        # clocks, losses, halts
        self._now_ms = 0
        self._day: int | None = None
        self._day_start_equity: float | None = None
        self._day_pnl = 0.0
        self._drawdown_halt = ""
        self._daily_halt = ""
        self._manual_halt = ""
        """A halt made by hand (``halt_entries``): only ``resume_entries`` lifts it."""
        self.halt = ""
        """Why entries are halted now ("" when they are not): the first of the three reasons
        above, set wherever one of them changes (``_halts_changed``), so that reading it
        (twice per message) is an attribute, not a call."""
        self._last_stop: dict[str, int] = {}
        self._stale: dict[str, FeedStale] = {}
        """Pairs whose live feed went silent: no entries until data is back."""
        self._state_lost = ""
        """Why the state database cannot be written ("" while it can): no entries then."""
        # counters
        self._rejections: dict[str, int] = {}
        self._approvals = 0

    # -- decisions -------------------------------------------------------------------------

    def check(self, p: ProposeOrder) -> SubmitOrder | OrderRejected:
        """Approve and size ``p``, or say why not.

        Entries are checked in a fixed order and the first failing rule names the rejection:
        ``halted``, ``state_unavailable``, ``stale_feed``, ``cooldown``, ``pair_busy``,
        ``position_open``, ``max_open_positions``, ``no_equity``, then sizing (``invalid_price``,
        ``below_min_notional``, ``below_min_amount``). Shrinking the stake to the headroom
        left under the exposure limits is sizing, done before the order exists, not a rejection.
        """
        if p.ts_ms > self._now_ms:
            self._advance(p.ts_ms)
        if p.side is _SELL:
            if p.amount is None or not (math.isfinite(p.amount) and p.amount > 0):
                return self._reject(p, "invalid_amount", f"exit amount {p.amount!r} is not > 0")
            return self._approve(p, p.amount, 0.0)

        cfg = self._config
        halt = self.halt
        if halt:
            return self._reject(p, "halted", halt)
        if self._state_lost:
            return self._reject(p, "state_unavailable", "the state database cannot be written "
                                f"({self._state_lost}); entries resume when it is back")
        if self._stale and p.pair in self._stale:
            stale = self._stale[p.pair]
            return self._reject(p, "stale_feed", f"{p.pair}: no market data for "
                                f"{stale.age_s:g} s or more; entries resume when it returns")
        last_stop = self._last_stop.get(p.pair)
        if last_stop is not None and p.ts_ms - last_stop < self._cooldown_ms:
            left = (self._cooldown_ms - (p.ts_ms - last_stop)) / 1000
            return self._reject(
                p,
                "cooldown",
                f"stop-loss at {last_stop} ms, cooldown {cfg.stop_loss_cooldown_s:g}s, "
                f"{left:g}s left",
            )
        if self._busy.get(p.pair):
            return self._reject(p, "pair_busy", f"{p.pair} has an order in flight")
        if p.pair in self._open:
            return self._reject(p, "position_open", f"{p.pair} already holds a position")
        live_orders = self._live
        # Usually nothing is in flight when a pair proposes: no generator for an empty dict.
        pending = sum(1 for live in live_orders.values()
                      if live.side is _BUY) if live_orders else 0
        if len(self._open) + pending >= cfg.max_open_positions:
            return self._reject(
                p,
                "max_open_positions",
                f"{len(self._open)} open + {pending} pending >= {cfg.max_open_positions}",
            )
        equity = self._equity
        if equity is None or equity <= 0 or not self._whole_view:
            known = "no portfolio yet" if equity is None or not self._whole_view else \
                f"equity {_money(equity)}"
            return self._reject(p, "no_equity", known)
        return self._size(p, equity)

    def _size(self, p: ProposeOrder, equity: float) -> SubmitOrder | OrderRejected:
        cfg = self._config
        limit = p.limit_price if p.order_type is _LIMIT else None
        price = limit if limit is not None else p.ask
        if not (math.isfinite(price) and price > 0):
            return self._reject(p, "invalid_price", f"sizing price {price!r} is not > 0")
        stake = cfg.stake_amount if cfg.stake_amount is not None else cfg.stake_fraction * equity
        live_orders = self._live
        pending = sum(live.notional for live in live_orders.values()) if live_orders else 0.0
        pair_room = cfg.max_pair_exposure * equity - self._exposure.get(p.pair, 0.0)
        total_room = cfg.max_total_exposure * equity - sum(self._exposure.values()) - pending
        notional = min(stake, pair_room, total_room)
        lot = self._lot_size(p.pair)
        amount = floor_to_step(notional / price, lot) if notional > 0 else 0.0
        value = amount * price
        min_notional, min_amount = cfg.min_notional, cfg.min_amount
        if self._exchange_min_notional is not None:
            min_notional = max(min_notional, self._exchange_min_notional(p.pair))
        if self._exchange_min_amount is not None:
            min_amount = max(min_amount, self._exchange_min_amount(p.pair))
        small_notional = min_notional > 0 and value < min_notional
        if not small_notional and amount > 0 and amount >= min_amount:
            return self._approve(p, amount, value)
        # Only a rejection explains itself: formatting costs more than the checks.
        why = (
            f"stake {_money(stake)}, headroom pair {_money(pair_room)} total "
            f"{_money(total_room)}, amount {amount:g} at {price:g}"
        )
        if small_notional:
            return self._reject(
                p,
                "below_min_notional",
                f"notional {_money(value)} < min_notional {_money(min_notional)} ({why})",
            )
        return self._reject(
            p, "below_min_amount", f"amount {amount:g} < min_amount {min_amount:g} ({why})"
        )

    def _approve(self, p: ProposeOrder, amount: float, notional: float) -> SubmitOrder:
        order_id = order_id_for(p.proposal_id)
        if order_id not in self._live:
            self._live[order_id] = _Live(pair=p.pair, side=p.side, notional=notional)
            self._busy[p.pair] = self._busy.get(p.pair, 0) + 1
        self._approvals += 1
        return _submit_order(
            order_id=order_id,
            proposal_id=p.proposal_id,
            pair=p.pair,
            generation=p.generation,
            side=p.side,
            order_type=p.order_type,
            reason=p.reason,
            amount=amount,
            bid=p.bid,
            ask=p.ask,
            ts_ms=p.ts_ms,
            limit_price=p.limit_price,
        )

    def _reject(self, p: ProposeOrder, reason: str, detail: str) -> OrderRejected:
        self._rejections[reason] = self._rejections.get(reason, 0) + 1
        return OrderRejected(
            proposal_id=p.proposal_id, pair=p.pair, reason=reason, detail=detail, ts_ms=p.ts_ms
        )

    # -- state fed by events ---------------------------------------------------------------

    def on_portfolio(self, pc: PortfolioChanged) -> None:
        """Take equity and exposure from state (the whole view, or the pairs a change moved);
        halt on a drawdown past ``max_drawdown``."""
        if pc.ts_ms > self._now_ms:
            self._advance(pc.ts_ms)
        self._equity = pc.equity
        if self._day_start_equity is None:
            self._day_start_equity = pc.equity
        if pc.full:
            self._exposure = {pair: value for pair, value in pc.exposure if value > 0}
            self._open = set(self._exposure)
            self._whole_view = True
        else:
            exposure, held = self._exposure, self._open
            for pair, value in pc.exposure:
                if value > 0:
                    exposure[pair] = value
                    held.add(pair)
                else:
                    exposure.pop(pair, None)
                    held.discard(pair)
        peak = max(self._peak, pc.equity)
        if self._follow_state_peak:
            peak = max(peak, pc.peak_equity)
        self._peak = peak
        if not self._drawdown_halt and peak > 0:
            drawdown = (peak - pc.equity) / peak
            if drawdown >= self._config.max_drawdown:
                self._drawdown_halt = (
                    f"max_drawdown: drawdown {drawdown:.2%} >= {self._config.max_drawdown:.2%} "
                    f"(equity {_money(pc.equity)}, peak {_money(peak)})"
                )
                self._halts_changed()

    def on_order(self, order: Order) -> None:
        """Track orders in flight; a terminal one frees its pair.

        A filled entry counts as an open position (and its cost as exposure) at once, before
        the next ``PortfolioChanged`` confirms it, so a pair cannot enter twice in between.
        """
        if order.updated_ms > self._now_ms:
            self._advance(order.updated_ms)
        live = self._live.get(order.order_id)
        if order.status.is_terminal:
            if live is not None:
                del self._live[order.order_id]
                left = self._busy[live.pair] - 1
                if left:
                    self._busy[live.pair] = left
                else:
                    del self._busy[live.pair]
            if order.side is _BUY and order.filled > 0:
                self._open.add(order.pair)
                cost = order.filled * order.average_price
                self._exposure[order.pair] = self._exposure.get(order.pair, 0.0) + cost
        elif live is None:
            # An order approved before a restart, replayed by state: still in flight.
            price = order.limit_price or 0.0
            notional = order.remaining * price if order.side is _BUY else 0.0
            self._live[order.order_id] = _Live(pair=order.pair, side=order.side, notional=notional)
            self._busy[order.pair] = self._busy.get(order.pair, 0) + 1

    def on_settled(self, settled: OrderSettled) -> None:
        """A fill finished its order: the order frees its pair, then the portfolio after the
        fill replaces the estimate ``on_order`` made of the new exposure (it is the booked
        value), then a closed round trip counts."""
        self.on_order(settled.order)
        self.on_portfolio(settled.portfolio)
        if settled.closed is not None:
            self.on_position_closed(settled.closed)

    def on_position_closed(self, pc: PositionClosed) -> None:
        """Book realized PnL for the UTC day; halt past ``daily_loss_limit``; start cooldowns."""
        if pc.ts_ms > self._now_ms:
            self._advance(pc.ts_ms)
        self._open.discard(pc.pair)
        self._exposure.pop(pc.pair, None)
        if pc.reason in COOLDOWN_REASONS:
            self._last_stop[pc.pair] = max(self._last_stop.get(pc.pair, pc.ts_ms), pc.ts_ms)
        if pc.ts_ms // _DAY_MS != self._day:
            return  # a late event from a day already closed
        self._day_pnl += pc.pnl
        start = self._day_start_equity
        if start is None or start <= 0 or self._daily_halt:
            return
        limit = self._config.daily_loss_limit * start
        if -self._day_pnl >= limit:
            self._daily_halt = (
                f"daily_loss_limit: realized {_money(self._day_pnl)} today, limit "
                f"-{_money(limit)} ({self._config.daily_loss_limit:.2%} of {_money(start)} "
                "at day start)"
            )
            self._halts_changed()

    def on_feed_stale(self, notice: FeedStale) -> None:
        """A pair's live feed went stale (entries refused) or is fresh again."""
        if notice.stale:
            self._stale[notice.pair] = notice
        else:
            self._stale.pop(notice.pair, None)

    def halt_entries(self, reason: str) -> None:
        """The kill switch by hand: no new entries until ``resume_entries``."""
        self._manual_halt = f"by hand: {reason}" if reason else "by hand"
        self._halts_changed()

    def resume_entries(self) -> None:
        """Lift a halt made by hand (the drawdown and daily-loss halts stay)."""
        self._manual_halt = ""
        self._halts_changed()

    def on_state_availability(self, change: StateAvailabilityChanged) -> None:
        """The state database was lost (entries refused) or is back."""
        self._state_lost = "" if change.available else (change.reason or "unavailable")

    def reset_halt(self) -> None:
        """Lift the drawdown and daily-loss halts by hand; the current equity becomes the new
        peak and day start (a halt made by hand stays: ``resume_entries`` lifts it)."""
        self._drawdown_halt = ""
        self._daily_halt = ""
        self._halts_changed()
        self._follow_state_peak = False
        if self._equity is not None:
            self._peak = self._equity
            self._day_start_equity = self._equity
        self._day_pnl = 0.0

    def _advance(self, ts_ms: int) -> None:
        """Move market time forward; a new UTC day resets the daily loss and its halt."""
        if ts_ms <= self._now_ms:
            return
        self._now_ms = ts_ms
        day = ts_ms // _DAY_MS
        if self._day is None or day > self._day:
            self._day = day
            self._day_start_equity = self._equity
            self._day_pnl = 0.0
            if self._daily_halt:
                self._daily_halt = ""
                self._halts_changed()

    # -- reporting -------------------------------------------------------------------------

    def halt_reason(self) -> str:
        """Why entries are halted (``""`` when they are not)."""
        return self.halt

    def _halts_changed(self) -> None:
        self.halt = self._manual_halt or self._drawdown_halt or self._daily_halt

    @property
    def now_ms(self) -> int:
        """The latest market time seen."""
        return self._now_ms

    def status(self) -> RiskStatus:
        reason = self.halt_reason()
        return RiskStatus(
            halted=bool(reason),
            halt_reason=reason,
            rejections=tuple(sorted(self._rejections.items())),
            approvals=self._approvals,
            stale_pairs=tuple(sorted(self._stale)),
        )


class RiskCore:
    """The risk actor's logic: proposals in, orders or rejections out."""

    def __init__(self, book: RiskBook) -> None:
        self.book = book
        self.fence = GenerationFence()
        self.unhandled = 0
        """Messages of a type this core does not know (returned ``[]``)."""

    def handle(self, message: object) -> list[Envelope]:
        book = self.book
        halted = book.halt
        # The two messages of every order first, by their exact type: a ``match`` tries each
        # class pattern in turn, and a settled order was the sixth.
        kind = type(message)
        if kind is ProposeOrder:
            out = self._propose(message)  # type: ignore[arg-type]
        elif kind is OrderSettled:
            book.on_settled(message)  # type: ignore[arg-type]
            out = []
        else:
            out = self._handle(message)
        reason = book.halt
        if reason is not halted and reason != halted:
            # A halt set or lifted by the portfolio (drawdown, daily loss, a new day).
            out = [*out, Envelope(to=EVENTS, message=HaltChanged(
                halted=bool(reason), reason=reason or halted, ts_ms=self.book.now_ms))]
        return out

    def _handle(self, message: object) -> list[Envelope]:
        match message:
            case ProposeOrder():
                return self._propose(message)
            case PairGeneration():
                self.fence.advance(message.pair, message.generation)
            case PortfolioChanged():
                self.book.on_portfolio(message)
            case OrderUpdated():
                self.book.on_order(message.order)
            case OrderSettled():
                self.book.on_settled(message)
            case PositionClosed():
                self.book.on_position_closed(message)
            case FeedStale():
                self.book.on_feed_stale(message)
            case StateAvailabilityChanged():
                self.book.on_state_availability(message)
            case _:
                self.unhandled += 1
        return []

    def _propose(self, message: ProposeOrder) -> list[Envelope]:
        if not self.fence.admits(message.pair, message.generation, message):
            return []
        result = self.book.check(message)
        if type(result) is SubmitOrder:
            return [_envelope(EXECUTION, result)]
        return [Envelope(message.pair, result), Envelope(EVENTS, result)]

    def answer(self, query: object) -> RiskStatus:
        """Reply to ``GetRiskStatus``, and to the halts by hand (``HaltEntries``,
        ``ResumeEntries``, ``ResetHalt``) with the status after them; the caller publishes the
        change (an ask has no envelopes).

        Raises:
            TypeError: for any other query (``ask`` hands it back to the caller).
        """
        match query:
            case GetRiskStatus():
                pass
            case HaltEntries():
                self.book.halt_entries(query.reason)
            case ResumeEntries():
                self.book.resume_entries()
            case ResetHalt():
                self.book.reset_halt()
            case _:
                raise TypeError(f"risk core cannot answer {type(query).__name__}")
        return self.book.status()
