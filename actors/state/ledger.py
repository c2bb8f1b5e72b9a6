"""The trading state in memory: balances, positions, orders, realized PnL, strategy specs.

``Ledger`` is the state actor's model and nothing else's. It is pure: no I/O, no clock (every
timestamp comes from the fill or the mark it is given), so the state core, the threadless
replay runtime and the tests drive the same arithmetic. ``StateStore`` persists what it
changes and rebuilds it with ``Ledger.restore``.

Accounting (spot, long only, every pair quoted in ``quote``):

- A BUY adds to the pair's position: ``entry_price`` is the average fill price, ``cost`` the
  quote spent including fees, ``peak_price`` starts at the entry and never falls.
- A SELL releases cost in proportion to the amount sold:
  ``realized = proceeds - fee - cost * sold / amount``. When what is left is dust (at most
  ``DUST_RELATIVE`` of the amount before the sale, or below the pair's lot) the position
  closes, the rest of its cost is released too, ``trades`` counts one round trip and a
  ``PositionClosed`` carries the round trip's whole PnL (partial sells included).
- A SELL larger than the position (base bought outside the ledger) only books the part the
  position covers; the rest moves balances and nothing else.
- Balances always move by ``actors.balances.apply_fill``: they mirror the exchange, dust
  included, while positions describe what the system itself opened.

Exactly once: a fill whose ``fill_id`` is among the last ``RECENT_FILLS`` applied is ignored
and ``apply_fill`` returns ``None``. Older ids are forgotten, so memory stays bounded: the
state core asks the database first (the ``fills`` primary key refuses any id ever stored)
and only then applies the fill, so an old duplicate changes nothing either.

Values: each open position's value (its amount at its mark, or at its entry price before the
first mark) is kept per pair and updated where the position or its mark changes, so equity
after a fill or a mark costs one C-level sum, not a Python loop over every position, and a
portfolio change can name only the pairs it moved (``portfolio(changed=...)``): with 1,000
pairs, about half of them holding, rebuilding every position's value for each fill and mark
took a quarter of the process's time under the GIL.

Orders: the last value per ``order_id`` wins unless it is older
(``updated_ms``) than the one held or the order already reached a terminal status; terminal
orders leave ``open_orders`` but stay in a bounded recent-orders map so that a fill arriving
after its ``FILLED`` update still finds the order's reason.

Failure: ``LedgerError`` for a fill that cannot be booked (invalid pair symbol, non-positive
or non-finite amount or price, negative fee); the ledger is unchanged when it is raised.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from actors.balances import apply_fill as move_balances
from actors.balances import replace_fill as swap_balances
from actors.messages import (
    ExitReason,
    Fill,
    MarkPrices,
    Order,
    PairBook,
    PortfolioChanged,
    PortfolioSnapshot,
    Position,
    PositionClosed,
    Side,
    StrategySpec,
    builder,
)
from actors.pairs import PairError, split_pair
from actors.recent_ids import RecentIds
from actors.state.exact_sum import ExactSum

DUST_RELATIVE = 1e-9
"""A remainder at most this fraction of the position before the sale closes it."""

RECENT_ORDERS = 10_000
"""Terminal orders remembered for fills that arrive after their order's final update."""

# Built for every fill (a position, a book, a portfolio): function calls, not class calls
# (see ``actors.messages.builder``).
_position = builder(Position)
_book = builder(PairBook)
_portfolio = builder(PortfolioChanged)
_closed = builder(PositionClosed)
_BUY = Side.BUY  # read per fill: a global, not the enum's class attribute lookup

RECENT_FILLS = 10_000
"""Fill ids remembered to refuse a duplicate without asking the database (a redelivery
arrives within seconds; at 3,700 fills per 100,000 ticks this spans 270,000 ticks)."""


class LedgerError(ValueError):
    """A fill the ledger cannot book: bad amount, price or fee."""


class Ledger:
    """In-memory trading state of one account quoted in ``quote``.

    Args:
        quote: the asset cash and equity are counted in, e.g. ``"USDT"``.
        balances: free balances per asset; copied.
        lots: smallest tradeable amount per pair; a remainder below it is dust.
    """

    def __init__(
        self,
        quote: str,
        balances: Mapping[str, float],
        *,
        lots: Mapping[str, float] | None = None,
    ) -> None:
        self.quote = quote
        self.balances: dict[str, float] = dict(balances)
        self.lots: dict[str, float] = dict(lots or {})
        self.positions: dict[str, Position] = {}
        self.trip_pnl: dict[str, float] = {}
        """Realized PnL of each open position's round trip so far (partial sells)."""
        self.open_orders: dict[str, Order] = {}
        self.recent_orders: OrderedDict[str, Order] = OrderedDict()
        self.realized: dict[str, float] = {}
        self.trades: dict[str, int] = {}
        self.strategies: dict[str, StrategySpec] = {}
        self.marks: dict[str, float] = {}
        self._values: dict[str, float] = {}
        """Each open position's value at its mark, by pair (written by ``_set_value``)."""
        self._values_sum = ExactSum()
        self._realized_sum = ExactSum()
        """The exact sums of ``_values`` and ``realized``: equity and the realized PnL are
        read once per fill and per mark, and a sum over 1,000 pairs each time was about 5 %
        of the trading process's time (``actors.state.exact_sum``)."""
        self._recent_fills: RecentIds[str] = RecentIds(RECENT_FILLS)
        """The ids of the last ``RECENT_FILLS`` fills applied."""
        self.fill_count = 0
        """Fills applied over the account's life (restored from the database)."""
        self.order_count = 0
        self.pairs: set[str] = set()
        self.peak_equity = self.equity()

    @classmethod
    def restore(
        cls,
        *,
        quote: str,
        balances: Mapping[str, float],
        positions: Iterable[Position] = (),
        trip_pnl: Mapping[str, float] | None = None,
        open_orders: Iterable[Order] = (),
        recent_orders: Iterable[Order] = (),
        realized: Mapping[str, float] | None = None,
        trades: Mapping[str, int] | None = None,
        strategies: Mapping[str, StrategySpec] | None = None,
        fill_ids: Iterable[str] = (),
        fill_count: int | None = None,
        order_count: int = 0,
        pairs: Iterable[str] = (),
        peak_equity: float | None = None,
        lots: Mapping[str, float] | None = None,
    ) -> Ledger:
        """Rebuild a ledger from persisted parts (``StateStore.load``).

        ``recent_orders`` are terminal orders and ``fill_ids`` applied fills, oldest first (only
        the last ``RECENT_FILLS`` are kept); ``fill_count`` defaults to the ids' number; without
        ``peak_equity`` the peak starts at the restored equity.
        """
        ledger = cls(quote, balances, lots=lots)
        ledger.positions = {p.pair: p for p in positions}
        ledger._values = {pair: ledger.value(p) for pair, p in ledger.positions.items()}
        ledger._values_sum = ExactSum(ledger._values.values())
        ledger.trip_pnl = dict(trip_pnl or {})
        ledger.open_orders = {o.order_id: o for o in open_orders}
        for order in recent_orders:
            ledger._remember(order)
        ledger.realized = dict(realized or {})
        ledger._realized_sum = ExactSum(ledger.realized.values())
        ledger.trades = dict(trades or {})
        ledger.strategies = dict(strategies or {})
        ids = list(fill_ids)
        ledger._recent_fills = RecentIds(RECENT_FILLS, ids)
        ledger.fill_count = len(ids) if fill_count is None else fill_count
        ledger.order_count = order_count
        ledger.pairs = set(pairs)
        ledger.pairs.update(ledger.positions, ledger.realized, ledger.strategies)
        ledger.pairs.update(o.pair for o in ledger.open_orders.values())
        ledger.peak_equity = ledger.equity() if peak_equity is None else peak_equity
        return ledger

    # -- orders --------------------------------------------------------------------------------

    def known_order(self, order_id: str) -> Order | None:
        """The order as last applied, open or recently terminal; None if unknown."""
        held = self.open_orders.get(order_id)
        return held if held is not None else self.recent_orders.get(order_id)

    def apply_order(self, order: Order) -> bool:
        """Record the order's latest value; False (nothing changed) for a stale update.

        Stale: the order is already terminal, or ``updated_ms`` is older than the held value.
        """
        held = self.known_order(order.order_id)
        if held is not None and (held.status.is_terminal or order.updated_ms < held.updated_ms):
            return False
        if held is None:
            self.order_count += 1
        self.pairs.add(order.pair)
        if order.status.is_terminal:
            self.open_orders.pop(order.order_id, None)
            self._remember(order)
        else:
            self.open_orders[order.order_id] = order
        return True

    def _remember(self, order: Order) -> None:
        recent = self.recent_orders
        if order.order_id in recent:
            recent.move_to_end(order.order_id)
        recent[order.order_id] = order  # a new key goes to the end by itself
        while len(recent) > RECENT_ORDERS:
            recent.popitem(last=False)

    # -- fills ---------------------------------------------------------------------------------

    def apply_fill(
        self, fill: Fill, *, checked: bool = False
    ) -> tuple[PairBook, PositionClosed | None] | None:
        """Book ``fill`` once: balances, position, realized PnL, peak equity.

        ``checked``: the caller ran ``check_fill`` on it already, and ``knows_fill`` said
        it is new (the state core does both before it asks the database).

        Returns:
            The pair's book after the fill and the ``PositionClosed`` when it finished a round
            trip; ``None`` when ``fill.fill_id`` was applied before (nothing changes).

        Raises:
            LedgerError: invalid pair, amount or price not positive and finite, negative fee.
        """
        if not checked:
            if fill.fill_id in self._recent_fills:
                return None
            _check_fill(fill)
        closed = None
        pair = fill.pair
        if fill.side is _BUY:
            self._buy(fill)
        else:
            closed = self._sell(fill)
        move_balances(self.balances, fill)
        self._recent_fills.add(fill.fill_id)
        self.fill_count += 1
        self.pairs.add(pair)
        self.realized.setdefault(pair, 0.0)  # a new pair's 0.0 leaves the sum as it is
        self.trades.setdefault(pair, 0)
        self.peak_equity = max(self.peak_equity, self.equity())
        return self.book(pair), closed

    def replace_fill(self, inferred: Fill, fills: Iterable[Fill]) -> PairBook:
        """Swap a booked (inferred) fill for the real ``fills`` of the same order.

        Balances move exactly as if ``fills`` had been booked instead. The position and the
        realized PnL move by the difference only: the fills normally add up to the inferred
        amount at its average price, so what is left is the fee and rounding. While the
        position is open the difference joins its amount, cost and entry; once it is closed,
        the realized PnL takes it.

        Raises:
            LedgerError: a fill is invalid or of another order or side.
        """
        real = list(fills)
        for fill in real:
            _check_fill(fill)
            if (fill.order_id, fill.pair, fill.side) != (
                    inferred.order_id, inferred.pair, inferred.side):
                raise LedgerError(f"fill {fill.fill_id!r} cannot replace {inferred.fill_id!r}: "
                                  "another order")
        swap_balances(self.balances, inferred, real)
        for fill in real:
            self._recent_fills.add(fill.fill_id)
        self.fill_count += len(real) - 1
        pair = inferred.pair
        amount = sum(f.amount for f in real) - inferred.amount
        value = sum(f.amount * f.price for f in real) - inferred.amount * inferred.price
        fee = sum(f.fee for f in real) - inferred.fee
        held = self.positions.get(pair)
        if inferred.side is Side.BUY:
            spent = value + fee
            if held is not None and held.amount + amount > 0:
                total = held.amount + amount
                self.positions[pair] = Position(
                    pair=pair, amount=total,
                    entry_price=(held.amount * held.entry_price + value) / total,
                    cost=held.cost + spent, opened_ms=held.opened_ms,
                    peak_price=held.peak_price)
            else:
                self._add_realized(pair, -spent)
        else:
            proceeds = value - fee
            self._add_realized(pair, proceeds)
            if held is not None:
                self.trip_pnl[pair] = self.trip_pnl.get(pair, 0.0) + proceeds
                if held.amount - amount > 0:
                    self.positions[pair] = Position(
                        pair=pair, amount=held.amount - amount, entry_price=held.entry_price,
                        cost=held.cost, opened_ms=held.opened_ms, peak_price=held.peak_price)
        kept = self.positions.get(pair)
        if kept is not None and kept is not held:  # its value follows its new amount
            self._set_value(pair, self.value(kept))
        self.peak_equity = max(self.peak_equity, self.equity())
        return self.book(pair)

    def knows_fill(self, fill_id: str) -> bool:
        """True if the fill is among the recently applied ones (older ids: ask the store)."""
        return fill_id in self._recent_fills

    @property
    def fill_ids(self) -> frozenset[str]:
        """The ids of the last ``RECENT_FILLS`` fills applied (a copy)."""
        return self._recent_fills.ids

    @staticmethod
    def check_fill(fill: Fill) -> None:
        """Raise ``LedgerError`` if ``apply_fill`` could not book ``fill``; change nothing."""
        _check_fill(fill)

    def _buy(self, fill: Fill) -> None:
        pair, price = fill.pair, fill.price
        held = self.positions.get(pair)
        spent = fill.amount * price + fill.fee
        if held is None:
            self.positions[pair] = _position(
                pair=pair,
                amount=fill.amount,
                entry_price=price,
                cost=spent,
                opened_ms=fill.ts_ms,
                peak_price=price,
            )
            self.trip_pnl[pair] = 0.0
            self._set_value(pair, fill.amount * self.marks.get(pair, price))
            return
        amount = held.amount + fill.amount
        # Built directly: attrs.evolve introspects the class on every call (hot path).
        self.positions[fill.pair] = _position(
            pair=held.pair,
            amount=amount,
            entry_price=(held.amount * held.entry_price + fill.amount * fill.price) / amount,
            cost=held.cost + spent,
            opened_ms=held.opened_ms,
            peak_price=max(held.peak_price, fill.price),
        )
        self._set_value(fill.pair, self.value(self.positions[fill.pair]))

    def _sell(self, fill: Fill) -> PositionClosed | None:
        held = self.positions.get(fill.pair)
        if held is None:
            return None
        covered = min(fill.amount, held.amount)
        # Only the covered share of the proceeds belongs to this position's round trip.
        proceeds = (fill.amount * fill.price - fill.fee) * (covered / fill.amount)
        remaining = held.amount - covered
        closing = remaining <= held.amount * DUST_RELATIVE or remaining < self.lots.get(
            fill.pair, 0.0
        )
        released = held.cost if closing else held.cost * (covered / held.amount)
        pnl = proceeds - released
        self._add_realized(fill.pair, pnl)
        trip = self.trip_pnl.get(fill.pair, 0.0) + pnl
        if not closing:
            kept = self.positions[fill.pair] = _position(
                pair=held.pair, amount=remaining, entry_price=held.entry_price,
                cost=held.cost - released, opened_ms=held.opened_ms, peak_price=held.peak_price,
            )
            self.trip_pnl[fill.pair] = trip
            self._set_value(fill.pair, self.value(kept))
            return None
        del self.positions[fill.pair]
        self._values_sum.remove(self._values.pop(fill.pair))
        self.trip_pnl.pop(fill.pair, None)
        self.trades[fill.pair] = self.trades.get(fill.pair, 0) + 1
        order = self.known_order(fill.order_id)
        return _closed(
            pair=fill.pair,
            reason=order.reason if order is not None else ExitReason.EXIT_SIGNAL,
            pnl=trip,
            ts_ms=fill.ts_ms,
        )

    # -- peaks, marks, strategies --------------------------------------------------------------

    def raise_peak(self, pair: str, price: float) -> bool:
        """Raise the open position's peak price; False if there is none or it is not higher."""
        held = self.positions.get(pair)
        if held is None or not math.isfinite(price) or price <= held.peak_price:
            return False
        self.positions[pair] = _position(
            pair=held.pair, amount=held.amount, entry_price=held.entry_price, cost=held.cost,
            opened_ms=held.opened_ms, peak_price=price,
        )
        return True

    def mark(self, prices: MarkPrices) -> bool:
        """Take the latest prices (non-positive or non-finite ones are skipped).

        Returns:
            True when the peak equity rose.
        """
        for pair, price in prices.marks:
            self._take_mark(pair, price)
        return self._raise_peak_equity()

    def mark_price(self, pair: str, price: float) -> bool:
        """``mark`` of one pair's price, without a message (the threadless runtime's marks)."""
        self._take_mark(pair, price)
        return self._raise_peak_equity()

    def _take_mark(self, pair: str, price: float) -> None:
        if math.isfinite(price) and price > 0:
            self.marks[pair] = price
            self.pairs.add(pair)
            held = self.positions.get(pair)
            if held is not None:
                self._set_value(pair, held.amount * price)

    def _raise_peak_equity(self) -> bool:
        equity = self.equity()
        if equity > self.peak_equity:
            self.peak_equity = equity
            return True
        return False

    def assign_strategy(self, pair: str, spec: StrategySpec) -> None:
        self.strategies[pair] = spec
        self.pairs.add(pair)

    # -- views ---------------------------------------------------------------------------------

    @property
    def cash(self) -> float:
        return self.balances.get(self.quote, 0.0)

    def value(self, position: Position) -> float:
        """The position at its mark, or at its entry price before the first mark."""
        return position.amount * self.marks.get(position.pair, position.entry_price)

    def equity(self) -> float:
        """Quote cash plus the open positions at their marks (their values summed exactly,
        rounded once: ``math.fsum`` over ``value`` of each)."""
        return self.balances.get(self.quote, 0.0) + self._values_sum.value

    def total_realized(self) -> float:
        """The realized PnL of every pair, summed exactly (``math.fsum``)."""
        return self._realized_sum.value

    def _set_value(self, pair: str, value: float) -> None:
        values = self._values
        old = values.get(pair)
        values[pair] = value
        if old is None:
            self._values_sum.add(value)
        else:
            self._values_sum.replace(old, value)

    def _add_realized(self, pair: str, pnl: float) -> None:
        old = self.realized.get(pair, 0.0)
        new = self.realized[pair] = old + pnl
        self._realized_sum.replace(old, new)

    def exposure(self, changed: Iterable[str] | None = None) -> tuple[tuple[str, float], ...]:
        """Each open position's value in the quote currency, by pair; with ``changed``, only
        those pairs' (0.0 for a pair without a position), in the order given."""
        values = self._values
        if changed is not None:
            return tuple([(pair, values.get(pair, 0.0)) for pair in changed])
        if len(values) <= 1:  # flat, or the common case: no sort
            return tuple(values.items())
        return tuple(sorted(values.items()))

    def book(self, pair: str) -> PairBook:
        orders: tuple[Order, ...] = ()
        if self.open_orders:
            mine = [o for o in self.open_orders.values() if o.pair == pair]
            if len(mine) > 1:
                mine.sort(key=_created)
            orders = tuple(mine)
        return _book(
            pair=pair,
            position=self.positions.get(pair),
            open_orders=orders,
            realized_pnl=self.realized.get(pair, 0.0),
            trades=self.trades.get(pair, 0),
            strategy=self.strategies.get(pair),
        )

    def portfolio(self, ts_ms: int, changed: Iterable[str] | None = None) -> PortfolioChanged:
        """The portfolio now: every position's exposure, or with ``changed`` only those
        pairs' (``PortfolioChanged.full`` False), which is what a fill or a mark moved."""
        cash = self.balances.get(self.quote, 0.0)
        return _portfolio(
            ts_ms=ts_ms,
            cash=cash,
            equity=cash + self._values_sum.value,  # ``equity()``, once per fill and mark
            peak_equity=self.peak_equity,
            exposure=self.exposure(changed),
            realized_pnl=self._realized_sum.value,
            full=changed is None,
        )

    def snapshot(self) -> PortfolioSnapshot:
        return PortfolioSnapshot(
            quote=self.quote,
            cash=self.cash,
            equity=self.equity(),
            peak_equity=self.peak_equity,
            realized_pnl=self.total_realized(),
            books=tuple(self.book(pair) for pair in sorted(self.pairs)),
            marks=tuple(sorted(self.marks.items())),
            fills=self.fill_count,
            orders=self.order_count,
        )


def _created(order: Order) -> tuple[int, str]:
    return order.created_ms, order.order_id


def _check_fill(fill: Fill) -> None:
    try:
        split_pair(fill.pair)
    except PairError as exc:
        raise LedgerError(f"fill {fill.fill_id!r}: {exc}") from exc
    if not (math.isfinite(fill.amount) and fill.amount > 0):
        raise LedgerError(
            f"fill {fill.fill_id!r}: amount must be > 0 and finite, got {fill.amount}"
        )
    if not (math.isfinite(fill.price) and fill.price > 0):
        raise LedgerError(f"fill {fill.fill_id!r}: price must be > 0 and finite, got {fill.price}")
    if not (math.isfinite(fill.fee) and fill.fee >= 0):
        raise LedgerError(f"fill {fill.fill_id!r}: fee must be >= 0 and finite, got {fill.fee}")
