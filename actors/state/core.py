"""The state actor's logic: apply a change to the ledger, persist it, say who must know.

``StateCore`` is the only owner of trading state. ``handle`` takes the events that change it
(``OrderUpdated``, ``OrderFilled``, ``FillReplaced``, ``MarkPrices``, ``RaisePeak``,
``StrategyAssigned``) and
``RequestBook`` (a tell answered with the pair's ``PositionChanged``), and returns the
envelopes to deliver. A fill that carries its finished order (the paper exchange's) is booked
with the order at once and answered with one message each to risk (``OrderSettled``) and the
pair; ``RaisePeak`` is persisted and not answered (the pair holds its peak itself).
``answer`` replies to the queries (``GetPairBook``, ``GetPortfolio``, ``GetBalances``,
``Ping``). It never reads a clock: time comes from the messages, so a replay gives the same
database every run.

Thread: one thread at a time. ``StateCore.open`` runs where the system starts (a bad
database path, URL or password fails there); afterwards only the state actor's thread calls
the core.

Commits: by default ``handle`` commits its change before it returns (one transaction per
change). With ``group_commit`` on, changes accumulate in one open transaction and the caller
commits with ``commit()`` (the state actor when its inbox is drained, the threadless runtime
every so many ticks); rows that change several times in a batch (an order's NEW, OPEN and
FILLED, a position and its peaks, the balances) are written once, with their last value, at
the commit. Whoever publishes what ``handle`` returned must commit first to claim no more
than is durable.

Exactly once: a fill whose id the ledger remembers is dropped at once; any other is inserted
into the ``fills`` table first, and only a new row is applied to the ledger, so a duplicate
older than the ledger's window changes nothing either.

Failure: a write that fails raises ``StateStoreError`` after the ledger has already changed,
so the core's memory is ahead of the database; the uncommitted batch is lost and the core
must be reopened from the database (the last committed state) and the batch's messages
handled again. A fill the ledger cannot book raises ``LedgerError`` and changes nothing. An
unknown message is logged, counted in ``unknown`` and answered with no envelopes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loguru import logger

from actors.fencing import GenerationFence
from actors.messages import (
    EVENTS,
    RISK,
    AuditRecord,
    ClosedTrade,
    Envelope,
    ExitReason,
    FillReplaced,
    FlattenPosition,
    GetBalances,
    GetPairBook,
    GetPortfolio,
    HistoryQuery,
    KeepManualHalt,
    MarkPrices,
    Order,
    OrderFilled,
    OrderSettled,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PairBook,
    PairGeneration,
    Ping,
    PortfolioChanged,
    PortfolioSnapshot,
    PositionChanged,
    ProposeOrder,
    RaisePeak,
    RequestBook,
    RequestPortfolio,
    Side,
    StrategyAssigned,
    builder,
)
from actors.pairs import split_pair
from actors.state.ledger import Ledger
from actors.state.store import StateStore, StateStoreError, open_store

# Built for every fill: function calls, not class calls (see ``actors.messages.builder``).
_position_changed = builder(PositionChanged)
_order_settled = builder(OrderSettled)
_closed_trade = builder(ClosedTrade)
_envelope = builder(Envelope)
_SELL = Side.SELL  # read per fill: a global, not the enum's class attribute lookup


class StateCore:
    """Ledger in memory plus its database; see the module docstring.

    Args:
        store: the open database; the core closes it in ``close``.
        ledger: the state as loaded from ``store``.
        equity_interval_ms: least market time between two stored equity points.
    """

    def __init__(self, store: StateStore, ledger: Ledger, equity_interval_ms: int = 60_000) -> None:
        if equity_interval_ms <= 0:
            raise ValueError(f"equity_interval_ms must be > 0, got {equity_interval_ms}")
        self.store = store
        self.ledger = ledger
        self.equity_interval_ms = equity_interval_ms
        self.fence = GenerationFence()
        self.unknown = 0
        self._last_equity_ms = store.last_equity_ms()
        self._last_mark_ms = self._last_equity_ms or 0
        """Market time of the latest mark: the time of a portfolio sent on request."""
        self.group_commit = False
        """False: each ``handle`` commits; True: the caller commits (see the module doc)."""
        self.publish = True
        """False where nobody subscribes to events (a replay without a listener): no
        ``EVENTS`` envelopes are built at all."""
        store.autocommit = False
        # Rows changed since the last commit, written with their latest values by commit().
        self._dirty_pairs: set[str] = set()
        self._dirty_orders: dict[str, Order] = {}
        self._dirty_assets: set[str] = set()
        """Assets a fill moved: only their balances are written (with 1,000 pairs the whole
        map was 1,001 rows to compare at every commit)."""
        self._dirty_peak = False

    @classmethod
    def open(
        cls,
        location: str,
        quote: str,
        initial_balances: Mapping[str, float],
        *,
        password: str | None = None,
        equity_interval_ms: int = 60_000,
        lots: Mapping[str, float] | None = None,
        existing: bool = False,
    ) -> StateCore:
        """Open (or create) the state database at ``location`` (a path or a PostgreSQL URL,
        see ``actors.state.open_store``) and load it.

        A fresh database starts from ``initial_balances``. An existing one keeps the balances
        it holds and ignores ``initial_balances``: the second run continues the first.

        Args:
            existing: the database must hold state already (a reconnect during a run: a
                database found empty then was replaced, and starting it afresh would forget
                every position).

        Raises:
            StateStoreError: the database cannot be opened, it was created for another
                quote currency than ``quote``, or ``existing`` and it is empty.
        """
        store = open_store(location, password)
        try:
            if not store.initialized:
                if existing:
                    raise StateStoreError(
                        f"state database {store.path!r} is empty, but this run has written "
                        "state to it before: it was replaced or wiped; not starting afresh")
                store.initialize(quote, initial_balances)
            elif store.quote != quote:
                raise StateStoreError(
                    f"state database {store.path!r} counts in {store.quote!r}, not {quote!r}; "
                    "use another database or the same quote currency"
                )
            ledger = store.load(lots=lots)
        except BaseException:
            store.close()
            raise
        return cls(store, ledger, equity_interval_ms)

    def close(self) -> None:
        """Close the database; what was not committed is dropped (commit first to keep it)."""
        self.store.close()

    # -- commits -------------------------------------------------------------------------------

    @property
    def uncommitted(self) -> bool:
        """True while changes wait for ``commit()``."""
        return bool(self.store.pending or self._dirty_pairs or self._dirty_orders
                    or self._dirty_assets or self._dirty_peak)

    def commit(self) -> None:
        """Write the rows changed since the last commit and commit them in one transaction.

        Raises:
            StateStoreError: the write or the commit failed; nothing of the batch is stored.
        """
        if self._dirty_pairs or self._dirty_orders or self._dirty_assets or self._dirty_peak:
            ledger = self.ledger
            pairs = sorted(self._dirty_pairs)
            self.store.write_books(
                positions=[(p, ledger.positions.get(p), ledger.trip_pnl.get(p, 0.0))
                           for p in pairs],
                balances={asset: ledger.balances[asset] for asset in self._dirty_assets}
                if self._dirty_assets else None,
                pnl=[(p, ledger.realized[p], ledger.trades.get(p, 0))
                     for p in pairs if p in ledger.realized],
                peak_equity=ledger.peak_equity if self._dirty_peak else None,
                orders=self._dirty_orders.values(),
            )
        self.store.commit()
        self._dirty_pairs.clear()
        self._dirty_orders.clear()
        self._dirty_assets.clear()
        self._dirty_peak = False

    # -- events --------------------------------------------------------------------------------

    def handle(self, message: object) -> list[Envelope]:
        """Apply one state-changing message; returns what to send, in order.

        Without ``group_commit`` the change is committed before this returns.
        """
        if self.group_commit:
            return self._handle(message)
        try:
            out = self._handle(message)
            if self.uncommitted:
                self.commit()
        except BaseException:
            self.store.rollback()
            raise
        return out

    def _handle(self, message: object) -> list[Envelope]:
        match message:
            case OrderFilled():
                return self._order_filled(message)
            case FillReplaced():
                return self._fill_replaced(message)
            case OrderUpdated():
                return self._order_updated(message)
            case MarkPrices() | RaisePeak() | StrategyAssigned() if not self._admits(message):
                return []
            case MarkPrices():
                return self._marks(message)
            case RaisePeak():
                return self._raise_peak(message)
            case StrategyAssigned():
                return self._strategy_assigned(message)
            case PairGeneration():
                self.fence.advance(message.pair, message.generation)
                return []
            case FlattenPosition():
                return self._flatten(message)
            case RequestBook():
                book = self.ledger.book(message.pair)
                return [Envelope(to=message.pair, message=PositionChanged(book=book))]
            case AuditRecord():
                self.store.insert_audit(message)
                return []
            case KeepManualHalt():
                self.store.keep_manual_halt(message.reason if message.halted else None)
                return []
            case RequestPortfolio():
                # The whole view, at the time of the last mark (state reads no clock).
                return [Envelope(RISK, self.ledger.portfolio(self._last_mark_ms))]
            case _:
                self.unknown += 1
                logger.warning("state: unknown message {!r} ignored", message)
                return []

    def _admits(self, message: MarkPrices | RaisePeak | StrategyAssigned) -> bool:
        """Writes a pair sends are fenced by its generation (see ``actors.fencing``)."""
        if isinstance(message, MarkPrices):
            marks = message.marks
            if len(marks) == 1:  # a pair's own mark, once a market second: no generator
                return self.fence.admits(marks[0][0], message.generation, message)
            return all(self.fence.admits(pair, message.generation, message)
                       for pair, _ in marks)
        return self.fence.admits(message.pair, message.generation, message)

    def _flatten(self, message: FlattenPosition) -> list[Envelope]:
        """Propose selling the whole position at the last mark; risk always lets exits through.
        The proposal speaks for the pair's current generation, so the fence admits it."""
        position = self.ledger.book(message.pair).position
        if position is None:
            return []
        price = self.ledger.marks.get(message.pair, position.entry_price)
        return [Envelope(to=RISK, message=ProposeOrder(
            proposal_id=f"flatten-{message.pair.replace('/', '')}-{message.ts_ms}",
            pair=message.pair, generation=self.fence.current(message.pair), side=Side.SELL,
            order_type=OrderType.MARKET, reason=ExitReason.FLATTEN, price=price, bid=price,
            ask=price, ts_ms=message.ts_ms, amount=position.amount))]

    def _order_updated(self, message: OrderUpdated) -> list[Envelope]:
        order = message.order
        if not self.ledger.apply_order(order):
            return []
        self._dirty_orders[order.order_id] = order
        # Risk hears first: the pair may propose the moment it reads its book, and risk
        # must already know that the order finished.
        out = [
            Envelope(to=RISK, message=message),
            Envelope(to=order.pair, message=PositionChanged(book=self.ledger.book(order.pair))),
        ]
        if self.publish:
            out.append(Envelope(to=EVENTS, message=message))
        return out

    def _order_filled(self, message: OrderFilled) -> list[Envelope]:
        fill = message.fill
        ledger = self.ledger
        if ledger.knows_fill(fill.fill_id):
            return []
        ledger.check_fill(fill)
        # The database decides for ids the ledger no longer remembers: only a new row is
        # applied, so an old duplicate leaves the ledger (and its order) as it was.
        store = self.store
        store.begin()
        if not store.insert_fill(fill):
            return []
        order = message.order
        unseen = False
        if order is not None:
            # The order first: a sell's closed round trip takes its reason from it.
            if self.publish:
                unseen = ledger.known_order(order.order_id) is None
            if ledger.apply_order(order):
                self._dirty_orders[order.order_id] = order
            else:
                order = None
        peak_before = ledger.peak_equity
        held = ledger.positions.get(fill.pair) if fill.side is _SELL else None
        result = ledger.apply_fill(fill, checked=True)
        assert result is not None  # knows_fill said it is new: apply_fill books it
        book, closed = result
        if closed is not None and held is not None:
            store.insert_trade(_closed_trade(
                pair=fill.pair, opened_ms=held.opened_ms, closed_ms=closed.ts_ms,
                amount=held.amount, entry_price=held.entry_price,
                exit_price=order.average_price if order is not None and order.average_price
                else fill.price, pnl=closed.pnl, reason=closed.reason))
        pair = fill.pair
        self._dirty_pairs.add(pair)
        self._dirty_assets.update(split_pair(pair))
        if ledger.peak_equity != peak_before:
            self._dirty_peak = True
        portfolio = ledger.portfolio(fill.ts_ms, (pair,))
        if order is None:
            # Risk first, as for orders: its view must be current before the pair acts again.
            out = [Envelope(RISK, portfolio)]
            if closed is not None:
                out.append(Envelope(RISK, closed))
            out.append(Envelope(pair, _position_changed(book=book)))
            if self.publish:
                out.append(Envelope(EVENTS, message))
                if closed is not None:
                    out.append(Envelope(EVENTS, closed))
        else:
            out = [_envelope(RISK, _order_settled(order=order, portfolio=portfolio,
                                                  closed=closed)),
                   _envelope(pair, _position_changed(book=book, settled=order.order_id))]
            if not self.publish:
                return out
            if unseen:
                # Subscribers (metrics count orders by status) see the order pass NEW and
                # OPEN, as with an exchange that reports each step.
                out.append(Envelope(EVENTS, OrderUpdated(order=_as(order, OrderStatus.NEW))))
                out.append(Envelope(EVENTS, OrderUpdated(order=_as(order, OrderStatus.OPEN))))
            out.append(Envelope(EVENTS, message))
            if closed is not None:
                out.append(Envelope(EVENTS, closed))
            out.append(Envelope(EVENTS, OrderUpdated(order=order)))
        return out

    def _fill_replaced(self, message: FillReplaced) -> list[Envelope]:
        """An inferred fill gives way to the real trades: its row goes, theirs come, and the
        ledger moves by the difference. Done once: a second delivery finds no row to delete."""
        inferred = message.inferred
        store = self.store
        store.begin()
        if not store.delete_fill(inferred.fill_id):
            return []
        fills = [f for f in message.fills if store.insert_fill(f)]
        book = self.ledger.replace_fill(inferred, fills)
        pair = inferred.pair
        self._dirty_pairs.add(pair)
        self._dirty_assets.update(split_pair(pair))
        out = [Envelope(RISK, self.ledger.portfolio(inferred.ts_ms)),
               Envelope(pair, PositionChanged(book=book))]
        if self.publish:
            out.append(Envelope(EVENTS, message))
        return out

    def _marks(self, message: MarkPrices) -> list[Envelope]:
        ledger = self.ledger
        for pair, price in message.peaks:
            self._store_peak(pair, price)
        if ledger.mark(message):
            self._dirty_peak = True
        self._marked_at(message.ts_ms)
        positions = ledger.positions
        marks = message.marks
        if len(marks) == 1:  # a pair's own mark: no list
            held: tuple[str, ...] | list[str] = (marks[0][0],) if marks[0][0] in positions \
                else ()
        else:
            held = [pair for pair, _ in marks if pair in positions]
        if not held:
            # A flat pair's price moves neither equity nor exposure: risk's view stands. Coarse
            # data marks on every tick, and this portfolio was 60 % of a replay of minute
            # candles.
            return []
        return [_envelope(RISK, ledger.portfolio(message.ts_ms, held))]

    def mark_price(self, pair: str, price: float, ts_ms: int,
                   generation: int) -> PortfolioChanged | None:
        """Take one pair's mark as a ``MarkPrices`` of that pair alone (no peaks) would be
        taken, without the message; returns what risk must then hear (a held pair's new
        value), or None. The threadless runtime hands over this way the marks of a pair
        whose tick sends nothing else: coarse data marks on every tick, and the message, its
        envelope and their dispatch were most of a minute-candle backtest."""
        if generation < self.fence.current(pair):  # stale: counted and logged as a message
            self._admits(MarkPrices(ts_ms=ts_ms, marks=((pair, price),), generation=generation))
            return None
        ledger = self.ledger
        if ledger.mark_price(pair, price):
            self._dirty_peak = True
        self._marked_at(ts_ms)
        if pair not in ledger.positions:
            return None
        return ledger.portfolio(ts_ms, (pair,))

    def _marked_at(self, ts_ms: int) -> None:
        """Store an equity point every ``equity_interval_ms`` of market time."""
        last = self._last_equity_ms
        if last is None or ts_ms - last >= self.equity_interval_ms:
            self.store.record_equity(ts_ms, self.ledger.equity())
            self._last_equity_ms = ts_ms
        self._last_mark_ms = max(self._last_mark_ms, ts_ms)

    def _raise_peak(self, message: RaisePeak) -> list[Envelope]:
        """Persist only: the pair keeps its own peak, and gets this one back with its book
        after a restart."""
        self._store_peak(message.pair, message.price)
        return []

    def _store_peak(self, pair: str, price: float) -> None:
        if self.ledger.raise_peak(pair, price):
            self._dirty_pairs.add(pair)

    def _strategy_assigned(self, message: StrategyAssigned) -> list[Envelope]:
        self.ledger.assign_strategy(message.pair, message.spec)
        self.store.record_strategy(message.pair, message.spec, message.generation)
        book = self.ledger.book(message.pair)
        return [Envelope(to=message.pair, message=PositionChanged(book=book))]

    # -- queries -------------------------------------------------------------------------------

    def answer(
        self, query: object
    ) -> PairBook | PortfolioSnapshot | dict[str, float] | Ping | tuple[Any, ...]:
        """Reply to a query.

        Raises:
            TypeError: a query the state actor does not answer (returned to the asker).
        """
        match query:
            case GetPairBook():
                return self.ledger.book(query.pair)
            case GetPortfolio():
                return self.ledger.snapshot()
            case GetBalances():
                return dict(self.ledger.balances)
            case Ping():
                return query
            case HistoryQuery():
                return self.store.page(query)
            case _:
                raise TypeError(f"the state actor does not answer {type(query).__name__}")

    def __repr__(self) -> str:
        return f"StateCore(path={self.store.path!r}, pairs={sorted(self.ledger.pairs)!r})"


def _as(order: Order, status: OrderStatus) -> Order:
    """``order`` as it stood at ``status`` before anything filled (built directly: no
    ``attrs.evolve`` per order)."""
    return Order(order_id=order.order_id, pair=order.pair, side=order.side,
                 order_type=order.order_type, reason=order.reason, amount=order.amount,
                 status=status, created_ms=order.created_ms, updated_ms=order.created_ms,
                 limit_price=order.limit_price)
