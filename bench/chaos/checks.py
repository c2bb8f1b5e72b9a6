"""What the chaos suite checks: the state database against the exchange's own ledger.

Plain functions over plain values, no I/O: the driver reads the database and the fake's
ledger and hands both in. Each check yields one line per difference found, so a report
both counts and names them.

After a crash (``final=False``) only what must hold at every instant is checked; an order
in flight may have been filled at the exchange while the database has not heard of it yet:

- ``sent_twice``: a client id whose create reached the exchange more than once, or that
  the exchange holds more than one order for;
- ``unknown``: an order at the exchange that the database has no record of (the intent is
  committed before every create, so even a kill between the two leaves it known);
- ``fill_differs``: a finished order whose filled amount is not the exchange's, or an
  unfinished one that claims more than the exchange filled;
- ``fills_twice``: an exchange trade booked under two fills, or fills of an order that add
  up to more than the exchange filled;
- ``phantom``: a fill that names a trade the exchange never made;
- ``ledger``: balances that are not the initial balances moved by the recorded fills (a
  fill committed without its balances, or the reverse).

After a graceful stop (``graceful=True``), in-flight orders have settled:

- ``unsent``: an order intent still ``new`` that the exchange does not have, though the
  system could know it: no create was sent, or each was refused before the exchange acted
  (it must be sent and followed, or closed as not sent, before the state actor stops).

After the clean reconciling run (``final=True``) the books must agree as well:

- ``unfinished``: an order still ``new`` or open;
- ``position``: a pair's base holdings differ from the exchange's;
- ``balance``: the quote balance differs from the exchange's by more than rounding.

On the paper exchange the fills table is the only record of what was traded (the paper
exchange dies with the process), so ``paper_findings`` checks the database against itself:
each order's fill against its fills, balances against the fills, nothing left unfinished.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

import attrs

from actors.balances import apply_fill
from actors.messages import Fill, Order, OrderStatus
from actors.pairs import split_pair
from tests.fake_exchange import BalanceRecord, OrderRecord, RequestRecord, TradeRecord

CHECKS: tuple[tuple[str, str], ...] = (
    ("sent_twice", "client ids sent twice"),
    ("unknown", "exchange orders unknown to the state database"),
    ("fill_differs", "orders whose filled amount differs"),
    ("fills_twice", "fills recorded twice"),
    ("phantom", "fills the exchange never made"),
    ("ledger", "balances that are not the recorded fills"),
    ("unsent", "order intents left new, never sent, after a graceful stop"),
    ("exit", "runs that failed, or stopped gracefully with an exit code not 0"),
    ("unfinished", "orders left unfinished after the clean run"),
    ("position", "pairs whose net position differs from the exchange's"),
    ("balance", "quote balance off by more than rounding"),
)
"""(name, what it counts), in report order."""

PAPER_SKIPS = frozenset({"sent_twice", "unknown", "phantom", "unsent", "position", "balance"})
"""Checks that need an exchange ledger outside the process: not applicable to paper."""

RATE_LIMITS = frozenset({"http_429", "http_418"})
"""Faults that refuse a request before the exchange acts, and say so."""

AMOUNT_TOLERANCE = 1e-9
"""Relative: float sums of a few hundred fills stay far inside it."""


@attrs.frozen(kw_only=True)
class Database:
    """What the state database holds."""

    orders: tuple[Order, ...]
    fills: tuple[Fill, ...]
    balances: Mapping[str, float]
    initial_balances: Mapping[str, float]


@attrs.frozen(kw_only=True)
class ExchangeOrder:
    client_id: str
    exchange_id: str
    pair: str
    status: str
    """The exchange's status: NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED."""
    executed: float


@attrs.frozen(kw_only=True)
class ExchangeTrade:
    trade_id: str
    exchange_order_id: str
    client_id: str
    pair: str
    qty: float


@attrs.frozen(kw_only=True)
class Exchange:
    """What the exchange's ledger holds."""

    orders: tuple[ExchangeOrder, ...]
    trades: tuple[ExchangeTrade, ...]
    balances: Mapping[str, float]
    """Totals (free and locked) per asset."""
    creates: tuple[str, ...]
    """The client id of every create that reached the exchange's matching (a request
    refused before it, a rate limit for one, is not counted)."""
    in_doubt: tuple[str, ...] = ()
    """Client ids of creates whose sender could not know whether the exchange acted (it
    did, or a 5xx, a garbled body or a timeout answered instead): such an order may stay
    ``new`` through a stop, for the next start to reconcile."""


@attrs.frozen
class Findings:
    """Differences by check name (see ``CHECKS``)."""

    by_check: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.by_check.values())

    def count(self, name: str) -> int:
        return len(self.by_check.get(name, ()))

    def lines(self) -> list[str]:
        return [f"{name}: {detail}" for name, _ in CHECKS for detail in self.by_check.get(name, ())]


def _close(a: float, b: float, absolute: float = 1e-12) -> bool:
    return abs(a - b) <= max(absolute, AMOUNT_TOLERANCE * max(abs(a), abs(b)))


def replayed_balances(initial: Mapping[str, float], fills: Iterable[Fill]) -> dict[str, float]:
    """The initial balances moved by every fill, as the ledger moves them."""
    balances = dict(initial)
    for fill in fills:
        apply_fill(balances, fill)
    return balances


def _ledger(db: Database) -> list[str]:
    replayed = replayed_balances(db.initial_balances, db.fills)
    out = []
    for asset in sorted(set(replayed) | set(db.balances)):
        held, expected = db.balances.get(asset, 0.0), replayed.get(asset, 0.0)
        if not _close(held, expected, 1e-8):
            out.append(f"{asset}: database {held:.10g}, initial + fills {expected:.10g}")
    return out


def trade_id_in(fill_id: str, order_id: str) -> str | None:
    """The exchange trade id a fill id names (``<order>-t<trade>``), or None."""
    prefix = f"{order_id}-t"
    return fill_id[len(prefix):] if fill_id.startswith(prefix) else None


def live_findings(db: Database, exchange: Exchange, client_ids: Mapping[str, str], *,
                  final: bool, graceful: bool = False) -> Findings:
    """The checks against the exchange; ``client_ids`` maps each order id to the client id
    it carries at the exchange."""
    found: dict[str, list[str]] = defaultdict(list)
    by_client = {client_ids[o.order_id]: o for o in db.orders}
    creates = Counter(exchange.creates)
    placed = Counter(o.client_id for o in exchange.orders)
    for cid in sorted(set(creates) | set(placed)):
        if creates[cid] > 1 or placed[cid] > 1:
            found["sent_twice"].append(f"{cid}: {creates[cid]} creates reached the exchange, "
                                       f"{placed[cid]} orders")
    at_exchange: dict[str, ExchangeOrder] = {}
    for xo in exchange.orders:
        at_exchange.setdefault(xo.client_id, xo)
        if xo.client_id not in by_client:
            found["unknown"].append(f"exchange order {xo.exchange_id} ({xo.client_id}, "
                                    f"{xo.pair} {xo.status})")
    trades_of: dict[str, dict[str, ExchangeTrade]] = defaultdict(dict)
    for trade in exchange.trades:
        trades_of[trade.client_id][trade.trade_id] = trade
    fills_of: dict[str, list[Fill]] = defaultdict(list)
    for fill in db.fills:
        fills_of[fill.order_id].append(fill)
    for order in db.orders:
        cid = client_ids[order.order_id]
        placed_order = at_exchange.get(cid)
        executed = placed_order.executed if placed_order is not None else 0.0
        terminal = order.status.is_terminal
        if (terminal and not _close(order.filled, executed)) or (
                not terminal and order.filled > executed and not _close(order.filled, executed)):
            found["fill_differs"].append(f"{order.order_id} ({order.status.value}): database "
                                         f"{order.filled:.10g}, exchange {executed:.10g}")
        fills = fills_of.get(order.order_id, [])
        trades = trades_of.get(cid, {})
        named = Counter(trade_id_in(f.fill_id, order.order_id) for f in fills)
        named.pop(None, None)
        for trade_id, times in sorted(named.items(), key=lambda kv: str(kv[0])):
            if times > 1:
                found["fills_twice"].append(f"{order.order_id}: trade {trade_id} {times} times")
            if trade_id not in trades:
                found["phantom"].append(f"{order.order_id}: fill of trade {trade_id}")
        booked = sum(f.amount for f in fills)
        if booked > executed and not _close(booked, executed):
            found["fills_twice"].append(f"{order.order_id}: fills add up to {booked:.10g}, "
                                        f"the exchange filled {executed:.10g}")
    found["ledger"] = _ledger(db)
    if final or graceful:
        doubt = set(exchange.in_doubt)
        found["unsent"] = [f"{o.order_id} ({o.pair})" for o in db.orders
                           if o.status is OrderStatus.NEW
                           and client_ids[o.order_id] not in at_exchange
                           and client_ids[o.order_id] not in doubt]
    if final:
        found["unfinished"] = [f"{o.order_id} ({o.pair} {o.status.value})"
                               for o in db.orders if not o.status.is_terminal]
        found["position"], found["balance"] = _books(db, exchange)
    return Findings({name: tuple(lines) for name, lines in found.items() if lines})


def _books(db: Database, exchange: Exchange) -> tuple[list[str], list[str]]:
    pairs = sorted({o.pair for o in db.orders} | {o.pair for o in exchange.orders})
    positions = []
    quotes = set()
    for pair in pairs:
        base, quote = split_pair(pair)
        quotes.add(quote)
        held, at = db.balances.get(base, 0.0), exchange.balances.get(base, 0.0)
        if not _close(held, at, 1e-10):
            positions.append(f"{pair}: database {held:.10g} {base}, exchange {at:.10g}")
    balances = []
    for quote in sorted(quotes):
        held, at = db.balances.get(quote, 0.0), exchange.balances.get(quote, 0.0)
        if not _close(held, at, 1e-6):
            balances.append(f"{quote}: database {held:.10g}, exchange {at:.10g}")
    return positions, balances


def paper_findings(db: Database, *, final: bool) -> Findings:
    """The checks of the database against itself (the paper exchange keeps no ledger that
    survives the process)."""
    found: dict[str, list[str]] = defaultdict(list)
    fills_of: dict[str, list[Fill]] = defaultdict(list)
    for fill in db.fills:
        fills_of[fill.order_id].append(fill)
    orders = {o.order_id for o in db.orders}
    for order in db.orders:
        booked = sum(f.amount for f in fills_of.get(order.order_id, ()))
        if booked > order.amount and not _close(booked, order.amount):
            found["fills_twice"].append(f"{order.order_id}: fills add up to {booked:.10g} of "
                                        f"{order.amount:.10g}")
        if order.status.is_terminal and not _close(order.filled, booked):
            found["fill_differs"].append(f"{order.order_id} ({order.status.value}): order says "
                                         f"{order.filled:.10g}, fills {booked:.10g}")
    found["fill_differs"] += [f"fill {f.fill_id} of an order the database does not hold"
                              for f in db.fills if f.order_id not in orders]
    found["ledger"] = _ledger(db)
    if final:
        found["unfinished"] = [f"{o.order_id} ({o.pair} {o.status.value})"
                               for o in db.orders if not o.status.is_terminal]
    return Findings({name: tuple(lines) for name, lines in found.items() if lines})


def exchange_view(orders: Sequence[OrderRecord], trades: Sequence[TradeRecord],
                  balances: Mapping[str, BalanceRecord], requests: Sequence[RequestRecord],
                  order_path: str = "/api/v3/order") -> Exchange:
    """The fake Binance's records as plain values."""
    creates = [r for r in requests if r.method == "POST" and r.path == order_path]
    return Exchange(
        orders=tuple(ExchangeOrder(client_id=o.client_order_id, exchange_id=str(o.order_id),
                                   pair=o.symbol, status=o.status, executed=float(o.executed_qty))
                     for o in orders),
        trades=tuple(ExchangeTrade(trade_id=str(t.trade_id), exchange_order_id=str(t.order_id),
                                   client_id=t.client_order_id, pair=t.symbol, qty=float(t.qty))
                     for t in trades),
        balances={asset: float(b.total) for asset, b in balances.items()},
        creates=tuple(str(r.get("newClientOrderId")) for r in creates if r.handled),
        in_doubt=tuple(str(r.get("newClientOrderId")) for r in creates
                       if r.handled or r.fault not in RATE_LIMITS))
