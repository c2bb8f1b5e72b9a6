"""Reconciliation on start (live mode): the state database against what the exchange says.

The gateway gathers the facts (each unfinished order of the database looked up by its client
id, with its trades; the exchange's open orders; its balances) and ``reconcile`` decides, with
no I/O, what state must hear so both sides agree:

- an order the exchange still has open is **adopted**: its missed fills are applied and the
  gateway follows it again;
- an order the exchange reports finished is closed with its real final status, after its
  missed fills;
- an order the exchange does not know: a ``NEW`` intent never acknowledged is closed as
  ``REJECTED`` (it never reached the exchange: the create was never sent or never arrived);
  an order that was acknowledged is closed as ``CANCELED`` (the exchange forgot it);
- fills are applied exactly once: their ids come from the exchange's trade ids, and the ones
  the database already holds are skipped;
- an order booked with an inferred fill (its trades had not appeared) whose trades the
  exchange lists now: they replace the inferred fill (``late``);
- open orders at the exchange that no database order accounts for (placed by hand, or by
  another program) are reported, never touched;
- recent trades at the exchange (my trades) that no database fill and no unfinished order
  accounts for are reported: a fill of an order the database thinks finished, or a trade of
  someone else's order (the trade ids are in our fill ids, so each is recognised);
- balances are compared (the database's after the missed fills against the exchange's totals)
  and differences reported: the database tracks the money this system trades, which may be
  less than the account holds.

Everything it decides is also in the returned ``ReconcileReport``, whose ``lines`` the system
logs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import attrs

from actors.balances import apply_fill, replace_fill
from actors.execution.order_lifecycle import (
    ExchangeEvent,
    ExchangeOrder,
    ExchangeTrade,
    OrderTracker,
)
from actors.messages import Fill, FillReplaced, Order, OrderFilled, OrderStatus


@attrs.frozen(kw_only=True)
class OrderCheck:
    """What is known about one unfinished database order."""

    order: Order
    client_id: str
    recorded: tuple[Fill, ...] = ()
    """Fills the database holds for it."""
    found: ExchangeOrder | None = None
    """The exchange's order for the client id; None when the exchange does not know it."""
    trades: tuple[ExchangeTrade, ...] | None = None
    """Its trades at the exchange (None: not fetched; fills then come from ``filled``)."""


@attrs.frozen(kw_only=True)
class ReconcileReport:
    checked: int = 0
    adopted: tuple[str, ...] = ()
    """Orders still open at the exchange, followed again."""
    closed: tuple[tuple[str, str], ...] = ()
    """(order id, final status) of orders the exchange reports finished."""
    unknown: tuple[tuple[str, str], ...] = ()
    """(order id, status given) of orders the exchange does not know."""
    missed_fills: tuple[tuple[str, float], ...] = ()
    """(fill id, amount) applied now."""
    inferred_replaced: tuple[str, ...] = ()
    """Orders whose late trades replaced their inferred fill now."""
    foreign_orders: tuple[str, ...] = ()
    """Exchange order ids open at the exchange that no database order accounts for."""
    unbooked_trades: tuple[tuple[str, str, float], ...] = ()
    """(trade id, exchange order id, amount) of recent trades no fill accounts for."""
    balance_differences: tuple[tuple[str, float, float], ...] = ()
    """(asset, database, exchange) where they differ beyond the tolerance."""

    @property
    def clean(self) -> bool:
        """Nothing needed resolving and nothing differs."""
        return not (self.closed or self.unknown or self.missed_fills or self.inferred_replaced
                    or self.foreign_orders
                    or self.unbooked_trades or self.balance_differences)

    def lines(self) -> list[str]:
        """One log line per finding."""
        summary = (f"reconciliation: {self.checked} unfinished order(s) checked, "
                   f"{len(self.adopted)} still open, {len(self.closed)} closed at the exchange, "
                   f"{len(self.unknown)} unknown to it, {len(self.missed_fills)} missed fill(s)")
        out = [summary]
        out += [f"reconciliation: order {oid} is still open at the exchange; following it"
                for oid in self.adopted]
        out += [f"reconciliation: order {oid} finished at the exchange as {status}"
                for oid, status in self.closed]
        out += [f"reconciliation: order {oid} is unknown to the exchange; closed as {status}"
                for oid, status in self.unknown]
        out += [f"reconciliation: missed fill {fid} ({amount:g}) applied"
                for fid, amount in self.missed_fills]
        out += [f"reconciliation: the trades of order {oid} replace its inferred fill"
                for oid in self.inferred_replaced]
        out += [f"reconciliation: exchange order {xid} is open but not ours; left alone"
                for xid in self.foreign_orders]
        out += [f"reconciliation: exchange trade {tid} (order {xid}, {amount:g}) is in no "
                "recorded fill; left alone" for tid, xid, amount in self.unbooked_trades]
        out += [f"reconciliation: balance {asset}: database {db:.8g}, exchange {ex:.8g}"
                for asset, db, ex in self.balance_differences]
        return out


@attrs.frozen(kw_only=True)
class Reconciliation:
    events: tuple[ExchangeEvent, ...]
    """For state, in order."""
    resume: tuple[OrderTracker, ...]
    """Trackers of the adopted orders, for the gateway to follow."""
    report: ReconcileReport


def reconcile(
    checks: Sequence[OrderCheck],
    *,
    open_at_exchange: Sequence[ExchangeOrder] = (),
    recent_trades: Sequence[ExchangeTrade] = (),
    booked_trade_ids: Collection[str] = (),
    db_balances: Mapping[str, float] | None = None,
    exchange_balances: Mapping[str, float] | None = None,
    now_ms: int,
    use_trades: bool = True,
    balance_tolerance: float = 1e-6,
    late: Sequence[tuple[OrderTracker, ExchangeOrder]] = (),
) -> Reconciliation:
    """Decide what state must hear; see the module docstring.

    ``exchange_balances`` are totals (free plus in orders) per asset; only assets the
    database holds are compared. ``recent_trades`` are the exchange's trades of the account
    over a recent window, ``booked_trade_ids`` the trade ids the database's fills carry
    (``trade_id_of``).
    """
    events: list[ExchangeEvent] = []
    resume: list[OrderTracker] = []
    adopted: list[str] = []
    closed: list[tuple[str, str]] = []
    unknown: list[tuple[str, str]] = []
    missed: list[tuple[str, float]] = []
    ours: set[str] = set()
    for check in checks:
        order = check.order
        tracker = OrderTracker(order, check.client_id, check.recorded, use_trades=use_trades)
        found = check.found
        if found is None:
            acknowledged = order.status is not OrderStatus.NEW
            status = OrderStatus.CANCELED if acknowledged else OrderStatus.REJECTED
            why = ("unknown_at_exchange: the exchange no longer knows this order" if acknowledged
                   else "never_placed: the exchange has no order with this client id")
            events += tracker.finish(status, why, now_ms)
            unknown.append((order.order_id, status.value))
            continue
        ours.add(found.id)
        out, complete = tracker.observe(found, check.trades, now_ms)
        missed.extend((e.fill.fill_id, e.fill.amount) for e in out if isinstance(e, OrderFilled))
        events += out
        if tracker.done:
            closed.append((order.order_id, tracker.order.status.value))
        else:
            adopted.append(order.order_id)
            resume.append(tracker)
        del complete  # an incomplete terminal snapshot stays open and is followed again
    replaced: list[str] = []
    for late_tracker, found in late:
        ours.add(found.id)
        out, _complete = late_tracker.observe(found, found.trades, now_ms)
        replaced += [e.inferred.order_id for e in out if isinstance(e, FillReplaced)]
        events += out
    foreign = tuple(xo.id for xo in open_at_exchange
                    if xo.id not in ours and not _ours_by_client_id(xo, checks))
    booked = set(booked_trade_ids)
    booked.update(trade_id_of(e.fill.fill_id) or "" for e in events
                  if isinstance(e, OrderFilled))
    unbooked = tuple((t.id, t.order_id or "", t.amount) for t in recent_trades
                     if t.id not in booked and t.order_id not in ours)
    differences: list[tuple[str, float, float]] = []
    if db_balances is not None and exchange_balances is not None:
        after = dict(db_balances)
        for event in events:
            if isinstance(event, OrderFilled):
                apply_fill(after, event.fill)
            elif isinstance(event, FillReplaced):
                replace_fill(after, event.inferred, event.fills)
        for asset in sorted(after):
            db, ex = after[asset], exchange_balances.get(asset, 0.0)
            if abs(db - ex) > balance_tolerance * max(1.0, abs(db), abs(ex)):
                differences.append((asset, db, ex))
    report = ReconcileReport(
        checked=len(checks), adopted=tuple(adopted), closed=tuple(closed),
        unknown=tuple(unknown), missed_fills=tuple(missed), foreign_orders=foreign,
        inferred_replaced=tuple(replaced),
        unbooked_trades=unbooked,
        balance_differences=tuple(differences))
    return Reconciliation(events=tuple(events), resume=tuple(resume), report=report)


def trade_id_of(fill_id: str) -> str | None:
    """The exchange trade id inside a fill id made by ``order_lifecycle.fill_id_for``."""
    head, sep, tail = fill_id.rpartition("-t")
    return tail if sep and head and tail else None


def _ours_by_client_id(xo: ExchangeOrder, checks: Sequence[OrderCheck]) -> bool:
    return xo.client_id is not None and any(c.client_id == xo.client_id for c in checks)
