"""Status snapshots of a running system and how they are printed.

Values only: the embedding facade and the threadless runtime build them; the CLI prints them
as a table and writes them as JSON.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.messages import (
    OrderFilled,
    OrderRejected,
    PairAdded,
    PairBook,
    PairFailed,
    PairRemoved,
    PairRestarted,
    PortfolioSnapshot,
    PositionClosed,
    RiskStatus,
    ServiceRestarted,
    StrategyRolledBack,
    StrategySwapped,
)


@attrs.frozen(kw_only=True)
class PairStatus:
    pair: str
    state: str
    """starting, running, restarting, paused, failed or stopped."""
    generation: int
    restarts: int
    strategy: str
    price: float
    position: float
    entry_price: float
    unrealized_pnl: float
    realized_pnl: float
    trades: int
    open_orders: int
    ticks: int
    ticks_shed: int
    ticks_dropped: int
    last_latency_ms: float
    last_error: str = ""
    latency_p50_ms: float | None = None
    """Median tick latency (feed receipt to processed) over the last minute; None: no ticks."""
    latency_p99_ms: float | None = None
    stale: bool = False
    """The pair's live market data is stale: it opens no positions until data returns."""


@attrs.frozen(kw_only=True)
class SystemStatus:
    state: str
    """running, finished (the data ended), stopped or failed."""
    quote: str
    cash: float
    equity: float
    peak_equity: float
    realized_pnl: float
    fills: int
    orders: int
    halted: bool
    halt_reason: str
    rejections: tuple[tuple[str, int], ...]
    ticks_accepted: int
    ticks_dropped: tuple[tuple[str, int], ...]
    pairs: tuple[PairStatus, ...]
    error: str = ""
    feed: dict[str, Any] | None = None
    """The live exchange feed's figures (``LiveFeed.stats``: stale pairs, records dropped by
    reason, reconnects); None on the simulator and replays."""

    def pair(self, pair: str) -> PairStatus:
        return next(p for p in self.pairs if p.pair == pair)

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=True)


def pair_figures(book: PairBook | None, price: float) -> dict[str, float]:
    """Position, entry, unrealized and realized PnL of a pair's book at ``price``."""
    if book is None:
        return {"position": 0.0, "entry_price": 0.0, "unrealized_pnl": 0.0,
                "realized_pnl": 0.0, "trades": 0, "open_orders": 0}
    position = book.position
    unrealized = 0.0
    if position is not None and price > 0:
        unrealized = position.amount * price - position.cost
    return {
        "position": position.amount if position else 0.0,
        "entry_price": position.entry_price if position else 0.0,
        "unrealized_pnl": unrealized,
        "realized_pnl": book.realized_pnl,
        "trades": book.trades,
        "open_orders": len(book.open_orders),
    }


def portfolio_figures(portfolio: PortfolioSnapshot, risk: RiskStatus) -> dict[str, Any]:
    return {
        "quote": portfolio.quote, "cash": portfolio.cash, "equity": portfolio.equity,
        "peak_equity": portfolio.peak_equity, "realized_pnl": portfolio.realized_pnl,
        "fills": portfolio.fills, "orders": portfolio.orders, "halted": risk.halted,
        "halt_reason": risk.halt_reason, "rejections": risk.rejections,
    }


_COLUMNS = ("pair", "state", "price", "position", "entry", "unreal", "realized", "trades",
            "ticks", "p50", "p99", "restarts", "strategy")


def format_table(status: SystemStatus) -> str:
    """The compact per-pair table the CLI prints every few seconds; p50 and p99 are the tick
    latencies of the last minute."""
    rows = [_COLUMNS] + [
        (p.pair, f"{p.state} (stale)" if p.stale else p.state, _num(p.price), _num(p.position),
         _num(p.entry_price) if p.position else "-", f"{p.unrealized_pnl:+.2f}",
         f"{p.realized_pnl:+.2f}", str(p.trades), str(p.ticks), _ms(p.latency_p50_ms),
         _ms(p.latency_p99_ms), str(p.restarts), p.strategy)
        for p in status.pairs
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    halted = f"  HALTED: {status.halt_reason}" if status.halted else ""
    stale = [p.pair for p in status.pairs if p.stale]
    halted += f"  STALE FEED: {', '.join(stale)}" if stale else ""
    lines.append(
        f"equity {status.equity:,.2f} {status.quote}  cash {status.cash:,.2f}  realized "
        f"{status.realized_pnl:+,.2f}  fills {status.fills}  ticks {status.ticks_accepted}"
        f"  dropped {sum(n for _, n in status.ticks_dropped)}{halted}"
    )
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}ms" if value < 10 else f"{value:,.0f}ms"


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    if abs(value) >= 1:
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return f"{value:.8f}".rstrip("0").rstrip(".")


def describe_event(event: object) -> str | None:
    """One line for an event worth telling a person (the CLI's log, the examples); None for
    the others (order updates, signals)."""
    match event:
        case OrderFilled(fill=f):
            return (f"fill     {f.pair} {f.side.value.upper()} {f.amount:.8g} @ {f.price:,.8g}"
                    f" fee {f.fee:.4g}")
        case PositionClosed():
            return f"closed   {event.pair} by {event.reason.value}: PnL {event.pnl:+.2f}"
        case PairRestarted():
            return (f"restart  {event.pair} generation {event.generation} "
                    f"(restart {event.restarts}) after {event.error}")
        case PairFailed():
            return f"FAILED   {event.pair} after {event.restarts} restarts: {event.error}"
        case StrategySwapped(error=""):
            return f"swapped  {event.pair} -> {event.description}"
        case StrategySwapped():
            return f"swap refused for {event.pair}: {event.error}"
        case StrategyRolledBack():
            return f"rollback {event.pair} -> {event.spec.path} after {event.crashes} crashes"
        case PairAdded():
            return f"added    {event.pair} trading {event.strategy}"
        case PairRemoved():
            return f"removed  {event.pair} ({event.policy} its position)"
        case ServiceRestarted():
            return f"recovered {event.name} (restart {event.restarts}) after {event.error}"
        case OrderRejected():
            return f"refused  {event.pair} entry by risk: {event.reason} ({event.detail})"
    return None
