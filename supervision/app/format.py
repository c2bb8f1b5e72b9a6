"""How a person reads a running system: the status table and one line per notable event.

Plain functions over the status values and event messages; the CLI and the examples print
what they return.
"""

from __future__ import annotations

from actors.messages import (
    FillReplaced,
    HaltChanged,
    OrderFilled,
    OrderRejected,
    PairAdded,
    PairFailed,
    PairRemoved,
    PairRestarted,
    PositionClosed,
    ServiceRestarted,
    StateAvailabilityChanged,
    StrategyRolledBack,
    StrategySwapped,
)
from supervision.status import SystemStatus

_COLUMNS = ("pair", "state", "price", "position", "entry", "unreal", "realized", "trades",
            "ticks", "p50", "p99", "restarts", "strategy")


def format_table(status: SystemStatus) -> str:
    """The compact per-pair table the CLI prints every few seconds; p50 and p99 are the tick
    latencies of the last minute."""
    rows: list[tuple[str, ...]] = [_COLUMNS]
    rows += [
        (p.pair, f"{p.state} (stale)" if p.stale else p.state, _num(p.price), _num(p.position),
         _num(p.entry_price) if p.position else "-", f"{p.unrealized_pnl:+.2f}",
         f"{p.realized_pnl:+.2f}", str(p.trades), str(p.ticks), _ms(p.latency_p50_ms),
         _ms(p.latency_p99_ms), str(p.restarts), p.strategy)
        for p in status.pairs
    ]
    if any(p.shard for p in status.pairs):  # on a cluster: where each pair runs
        rows = [(*rows[0], "shard", "node")] + [
            (*row, p.shard, p.node) for row, p in zip(rows[1:], status.pairs, strict=True)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
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
        case FillReplaced(inferred=f):
            return (f"trades   {f.pair} order {f.order_id}: {len(event.fills)} trade(s) "
                    f"replace its inferred fill")
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
        case HaltChanged(halted=True):
            return f"HALTED   new entries: {event.reason}"
        case HaltChanged():
            return f"resumed  new entries (was: {event.reason})"
        case StateAvailabilityChanged() if event.available:
            return f"state database back; {event.waiting} waiting message(s) written"
        case StateAvailabilityChanged():
            return (f"STATE DATABASE UNAVAILABLE ({event.reason}): new entries refused, "
                    "reconnecting")
    return None
