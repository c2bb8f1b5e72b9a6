"""Stateful properties of the live order path's cores: any interleaving of exchange replies,
lost replies, refusals, partial fills, trades listed late, inferred fills, duplicate
deliveries, lost events and restarts ends with the state database equal to the exchange's
ledger.

The exchange is a small model (orders by client id, trades that may be listed late). The
system's side is the real code: ``OrderTracker`` (one per order, lost at a restart),
``reconcile`` at each restart, and a real ``StateCore`` on a SQLite file that a restart
closes and opens again. Events from the trackers wait in an outbox; a restart loses what
was not delivered yet (a kill before the state actor committed it).

After every step: no fill that the exchange never made, no order booked beyond what the
exchange filled, and balances that are exactly the recorded fills. At the end, a clean
start (every create in flight has landed, every trade is listed, open orders are cancelled
at the exchange, then reconciliation and following until done): every order finished with
the exchange's fill, the fills are the exchange's trades one for one, and the balances are
the exchange's.

The one assumption: a create in flight when the process dies lands (or not) before the next
start's reconciliation, as on loopback; a create delayed across a restart would meet a
reconciliation that already closed its intent as never placed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from actors.balances import apply_fill
from actors.execution.order_lifecycle import (
    ExchangeEvent,
    ExchangeOrder,
    ExchangeTrade,
    OrderTracker,
    fill_id_for,
    inferred_order,
    is_inferred,
)
from actors.execution.reconcile import OrderCheck, reconcile
from actors.messages import (
    ExitReason,
    Fill,
    GetBalances,
    GetPortfolio,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdated,
    Side,
)
from actors.state.core import StateCore

PAIR = "BTC/USDT"
FUNDING = {"USDT": 100_000.0}
GRACE_MS = 30_000
FEE_RATE = 0.001


@attrs.define
class _Placed:
    xid: str
    side: Side
    amount: float
    status: str = "open"
    filled: float = 0.0
    value: float = 0.0


class ModelExchange:
    """Orders by client id; trades, some listed only later."""

    def __init__(self) -> None:
        self.orders: dict[str, _Placed] = {}
        self.trades: list[tuple[str, ExchangeTrade, bool]] = []  # (cid, trade, listed)
        self._ids = 0

    def accept(self, cid: str, side: Side, amount: float) -> None:
        self._ids += 1
        self.orders[cid] = _Placed(xid=str(1_000 + self._ids), side=side, amount=amount)

    def fill(self, cid: str, part: float, price: float, *, listed: bool, ts_ms: int) -> None:
        placed = self.orders[cid]
        qty = min(part, placed.amount - placed.filled)
        if placed.status != "open" or qty <= 0:
            return
        self._ids += 1
        placed.filled += qty
        placed.value += qty * price
        if placed.filled >= placed.amount:
            placed.status = "closed"
        self.trades.append((cid, ExchangeTrade(
            id=str(5_000 + self._ids), order_id=placed.xid, amount=qty, price=price,
            fee=qty * price * FEE_RATE, fee_currency="USDT", ts_ms=ts_ms), listed))

    def cancel(self, cid: str) -> None:
        placed = self.orders[cid]
        if placed.status == "open":
            placed.status = "canceled"

    def list_all(self) -> None:
        self.trades = [(cid, trade, True) for cid, trade, _ in self.trades]

    def snapshot(self, cid: str) -> ExchangeOrder | None:
        placed = self.orders.get(cid)
        if placed is None:
            return None
        return ExchangeOrder(
            id=placed.xid, client_id=cid, status=placed.status, filled=placed.filled,
            amount=placed.amount, average=placed.value / placed.filled if placed.filled else None,
            price=None, fee=None, fee_currency=None, ts_ms=None)

    def listed(self, cid: str) -> list[ExchangeTrade]:
        return [trade for owner, trade, listed in self.trades if owner == cid and listed]

    def balances(self) -> dict[str, float]:
        out = dict(FUNDING)
        for cid, trade, _ in self.trades:
            side = self.orders[cid].side
            apply_fill(out, Fill(fill_id=trade.id, order_id=cid, pair=PAIR, side=side,
                                 amount=trade.amount, price=trade.price, fee=trade.fee,
                                 ts_ms=0))
        return out


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


class OrderLifeCycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.mkdtemp(prefix="lifecycle-")
        self.path = f"{self.folder}/state.sqlite"
        self.state = StateCore.open(self.path, "USDT", FUNDING)
        self.exchange = ModelExchange()
        self.trackers: dict[str, OrderTracker] = {}
        """This run's trackers, by order id (client id = order id here)."""
        self.pending: dict[str, Order] = {}
        """Creates sent and not yet at the exchange."""
        self.outbox: list[ExchangeEvent] = []
        self.delivered: list[ExchangeEvent] = []
        self.now = 10_000
        self.count = 0

    def teardown(self) -> None:
        try:
            self._settle()
        finally:
            self.state.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------

    def _tick(self, ms: int = 100) -> int:
        self.now += ms
        return self.now

    def _emit(self, events: Iterable[ExchangeEvent]) -> None:
        self.outbox.extend(events)

    def _pick(self, ids: Iterable[str], index: int) -> str | None:
        ordered = sorted(ids)
        return ordered[index % len(ordered)] if ordered else None

    def _observe(self, tracker: OrderTracker) -> None:
        cid = tracker.client_id
        found = self.exchange.snapshot(cid)
        if found is not None:
            events, _complete = tracker.observe(found, self.exchange.listed(cid), self._tick())
            self._emit(events)

    # -- the system ------------------------------------------------------------------------

    @rule(side=st.sampled_from(Side), amount=st.sampled_from((0.5, 1.0)))
    def submit(self, side: Side, amount: float) -> None:
        """Write-ahead: the NEW intent is committed, then the create goes out."""
        self.count += 1
        now = self._tick()
        order = Order(order_id=f"o-{self.count}", pair=PAIR, side=side,
                      order_type=OrderType.MARKET, reason=ExitReason.ENTRY, amount=amount,
                      status=OrderStatus.NEW, created_ms=now, updated_ms=now)
        self.state.handle(OrderUpdated(order=order))
        self.trackers[order.order_id] = OrderTracker(order, order.order_id)
        self.pending[order.order_id] = order

    @rule(index=st.integers(0, 3), reply_lost=st.booleans())
    def create_lands(self, index: int, reply_lost: bool) -> None:
        """The exchange takes the create; its answer arrives, or is lost (a timeout)."""
        oid = self._pick(self.pending, index)
        if oid is None:
            return
        order = self.pending.pop(oid)
        self.exchange.accept(oid, order.side, order.amount)
        tracker = self.trackers.get(oid)
        if tracker is not None and not reply_lost:
            self._observe(tracker)

    @rule(index=st.integers(0, 3))
    def create_refused_until_given_up(self, index: int) -> None:
        """Rate limits until the retries run out: the exchange never saw it."""
        oid = self._pick((o for o in self.pending if o in self.trackers), index)
        if oid is None:
            return
        del self.pending[oid]
        self._emit(self.trackers[oid].finish(OrderStatus.REJECTED, "gave up", self._tick()))

    @rule(index=st.integers(0, 3))
    def poll(self, index: int) -> None:
        """The order and its listed trades, looked up by client id where needed."""
        oid = self._pick(self.trackers, index)
        if oid is not None:
            self._observe(self.trackers[oid])

    @rule(index=st.integers(0, 3))
    def grace_runs_out(self, index: int) -> None:
        """Time passes; an order reported finished without its trades is inferred."""
        oid = self._pick(self.trackers, index)
        if oid is None:
            return
        tracker = self.trackers[oid]
        self._observe(tracker)
        now = self._tick(GRACE_MS)
        found = self.exchange.snapshot(oid)
        if found is not None and tracker.infer_due(now, GRACE_MS):
            self._emit(tracker.infer(found, now))

    @rule(count=st.integers(1, 5))
    def deliver(self, count: int) -> None:
        """The state actor handles what the gateway told it."""
        for event in self.outbox[:count]:
            self.state.handle(event)
            self.delivered.append(event)
        del self.outbox[:count]

    @rule(index=st.integers(0, 500))
    def deliver_again(self, index: int) -> None:
        """At-least-once delivery within a run (a state actor re-handling its batch)."""
        if self.delivered:
            self.state.handle(self.delivered[index % len(self.delivered)])

    @rule(lands=st.lists(st.booleans(), max_size=10))
    def restart(self, lands: list[bool]) -> None:
        """SIGKILL and start again: trackers and undelivered events are lost, creates in
        flight land or not, the database is opened afresh and reconciled."""
        for i, oid in enumerate(sorted(self.pending)):
            if i < len(lands) and lands[i]:
                order = self.pending[oid]
                self.exchange.accept(oid, order.side, order.amount)
        self.pending.clear()
        self.trackers.clear()
        self.outbox.clear()
        self.delivered.clear()
        self.state.close()
        self.state = StateCore.open(self.path, "USDT", FUNDING)
        self._reconcile()

    # -- the exchange ------------------------------------------------------------------------

    @rule(index=st.integers(0, 3), part=st.sampled_from((0.25, 0.5, 1.0)),
          price=st.sampled_from((100.0, 101.0, 102.5)), listed=st.booleans())
    def exchange_fills(self, index: int, part: float, price: float, listed: bool) -> None:
        cid = self._pick(self.exchange.orders, index)
        if cid is not None:
            self.exchange.fill(cid, part, price, listed=listed, ts_ms=self._tick())

    @rule(index=st.integers(0, 3), price=st.sampled_from((100.0, 101.0, 102.5)))
    def exchange_fills_and_lists_the_trades_late(self, index: int, price: float) -> None:
        """The whole order fills and its trades stay unlisted past the grace period."""
        cid = self._pick(self.exchange.orders, index)
        if cid is not None:
            self.exchange.fill(cid, 1.0, price, listed=False, ts_ms=self._tick())
            self.grace_runs_out(sorted(self.trackers).index(cid) if cid in self.trackers else 0)

    @rule(index=st.integers(0, 3))
    def exchange_cancels(self, index: int) -> None:
        cid = self._pick(self.exchange.orders, index)
        if cid is not None:
            self.exchange.cancel(cid)

    @rule()
    def exchange_lists_late_trades(self) -> None:
        self.exchange.list_all()

    # -- reconciliation (what a start does) ----------------------------------------------------

    def _reconcile(self) -> None:
        snapshot = self.state.answer(GetPortfolio())
        unfinished = [o for book in snapshot.books for o in book.open_orders]
        fills = self.state.store.fills()
        recorded: dict[str, list[Fill]] = {}
        for fill in fills:
            recorded.setdefault(fill.order_id, []).append(fill)
        checks = []
        for order in unfinished:
            found = self.exchange.snapshot(order.order_id)
            checks.append(OrderCheck(
                order=order, client_id=order.order_id,
                recorded=tuple(recorded.get(order.order_id, ())), found=found,
                trades=None if found is None else tuple(self.exchange.listed(order.order_id))))
        late = []
        for fill in fills:
            found = self.exchange.snapshot(fill.order_id)
            if is_inferred(fill.fill_id) and found is not None:
                tracker = OrderTracker(inferred_order(fill), fill.order_id, [fill])
                late.append((tracker, attrs.evolve(
                    found, trades=tuple(self.exchange.listed(fill.order_id)))))
        result = reconcile(checks, now_ms=self._tick(), late=late)
        for event in result.events:
            self.state.handle(event)
        self.trackers = {t.order.order_id: t for t in result.resume}
        self.trackers.update((t.order.order_id, t) for t, _ in late if t.inferred is not None)

    # -- what must hold ------------------------------------------------------------------------

    @invariant()
    def nothing_is_booked_that_the_exchange_did_not_do(self) -> None:
        trades = {fill_id_for(cid, t.id) for cid, t, _ in self.exchange.trades}
        booked: dict[str, float] = {}
        for fill in self.state.store.fills():
            assert is_inferred(fill.fill_id) or fill.fill_id in trades, fill
            booked[fill.order_id] = booked.get(fill.order_id, 0.0) + fill.amount
        for oid, amount in booked.items():
            placed = self.exchange.orders.get(oid)
            assert placed is not None, f"fills of {oid}, which the exchange never had"
            assert amount <= placed.filled or _close(amount, placed.filled), (oid, amount)

    @invariant()
    def balances_are_the_recorded_fills(self) -> None:
        replayed = dict(FUNDING)
        for fill in self.state.store.fills():
            apply_fill(replayed, fill)
        held = self.state.answer(GetBalances())
        for asset in set(replayed) | set(held):
            assert _close(held.get(asset, 0.0), replayed.get(asset, 0.0)), asset

    def _settle(self) -> None:
        """The clean run, then the books must agree with the exchange's."""
        self.restart([True] * len(self.pending))
        self.exchange.list_all()
        for cid in list(self.exchange.orders):
            self.exchange.cancel(cid)
        self.restart([])
        for tracker in list(self.trackers.values()):
            self._observe(tracker)
        self.deliver(len(self.outbox))
        orders = {o.order_id: o for o in self.state.store.orders()}
        for order in orders.values():
            placed = self.exchange.orders.get(order.order_id)
            assert order.status.is_terminal, order
            assert _close(order.filled, placed.filled if placed else 0.0), order
        expected = sorted(fill_id_for(cid, t.id) for cid, t, _ in self.exchange.trades)
        assert sorted(f.fill_id for f in self.state.store.fills()) == expected
        held, owed = self.state.answer(GetBalances()), self.exchange.balances()
        for asset in set(held) | set(owed):
            assert _close(held.get(asset, 0.0), owed.get(asset, 0.0)), asset


OrderLifeCycle.TestCase.settings = settings(max_examples=100, stateful_step_count=40,
                                            deadline=None)
test_any_interleaving_ends_with_state_equal_to_the_exchanges_ledger = pytest.mark.timeout(300)(
    OrderLifeCycle.TestCase)
