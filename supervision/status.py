"""Status snapshots of a running system: values only.

The embedding facade and the threadless runtime build them; ``supervision.app.format`` prints
them as a table, the CLI writes them as JSON.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.messages import (
    PairBook,
    PortfolioSnapshot,
    RiskStatus,
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
    shard: str = ""
    node: str = ""
    """On a cluster: the shard hosting the pair, and that shard's node ("" in one process)."""


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
