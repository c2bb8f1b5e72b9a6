"""A finished backtest as figures: summary, buy-and-hold, per pair, per month, every trade.

``build_report`` turns a ``BacktestRun`` into one JSON-ready dict, the single source every
output reads (terminal tables, JSON, HTML, PNG), so the figures agree everywhere. The
equity-derived figures come from ``metrics`` over the recorder's samples, for the strategy
and for buy-and-hold alike (the same function for both, so they compare like for like).

Buy-and-hold: the starting equity split evenly over the pairs, each share bought at the
pair's first price of the range and held to the end, without fees.

Pure code on the caller's thread; a figure that is undefined is None (JSON null).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from supervision.research.backtest import BacktestRun
from supervision.research.metrics import (
    DrawdownTracker,
    cagr,
    calmar,
    covered_ms,
    returns_of,
    sharpe,
    sortino,
    trade_figures,
)
from supervision.research.recorder import Trade
from supervision.research.timeframes import DAY_MS

CHART_POINTS = 2000


def iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def daily_closes(ts: Sequence[int], values: Sequence[float]) -> list[tuple[int, float]]:
    """The last value of each UTC day, a day without samples carrying the previous close."""
    closes: list[tuple[int, float]] = []
    for t, value in zip(ts, values, strict=True):
        day = t // DAY_MS
        if closes and closes[-1][0] == day:
            closes[-1] = (day, value)
            continue
        while closes and closes[-1][0] + 1 < day:
            closes.append((closes[-1][0] + 1, closes[-1][1]))
        closes.append((day, value))
    return closes


def equity_figures(ts: Sequence[int], values: Sequence[float], initial: float) -> dict[str, Any]:
    """The figures of one equity curve (the strategy's, or buy-and-hold's)."""
    tracker = DrawdownTracker()
    for t, value in zip(ts, values, strict=True):
        tracker.update(t, value)
    final = values[-1] if values else initial
    span = (ts[-1] - ts[0]) if ts else 0
    growth = cagr(initial, final, span)
    daily = returns_of(initial, [v for _, v in daily_closes(ts, values)])
    return {
        "initial_equity": initial,
        "final_equity": final,
        "total_return": final / initial - 1 if initial else None,
        "cagr": growth,
        "max_drawdown": tracker.deepest,
        "max_drawdown_peak": iso(tracker.deepest_peak_ms) if tracker.deepest else None,
        "max_drawdown_trough": iso(tracker.deepest_trough_ms) if tracker.deepest else None,
        "max_drawdown_duration_ms": tracker.deepest_duration_ms,
        "longest_drawdown_ms": tracker.longest_so_far_ms,
        "sharpe": sharpe(daily),
        "sortino": sortino(daily),
        "calmar": calmar(growth, tracker.deepest),
    }


def _trades_figures(trades: Sequence[Trade]) -> dict[str, Any]:
    figures = trade_figures([t.pnl for t in trades], [t.duration_ms for t in trades])
    best = max(trades, key=lambda t: t.pnl, default=None)
    worst = min(trades, key=lambda t: t.pnl, default=None)
    return {
        "trades": figures.trades, "wins": figures.wins, "losses": figures.losses,
        "win_rate": figures.win_rate, "net_pnl": figures.net_pnl,
        "gross_profit": figures.gross_profit, "gross_loss": figures.gross_loss,
        "profit_factor": figures.profit_factor, "expectancy": figures.expectancy,
        "avg_trade_duration_ms": figures.avg_duration_ms,
        "longest_trade_duration_ms": figures.longest_duration_ms,
        "best_trade": _trade_brief(best), "worst_trade": _trade_brief(worst),
    }


def _trade_brief(trade: Trade | None) -> dict[str, Any] | None:
    if trade is None:
        return None
    return {"pair": trade.pair, "pnl": trade.pnl, "return_pct": trade.return_pct,
            "entry": iso(trade.entry_ms), "exit": iso(trade.exit_ms)}


def trade_row(trade: Trade) -> dict[str, Any]:
    return {"pair": trade.pair, "entry": iso(trade.entry_ms), "exit": iso(trade.exit_ms),
            "entry_ms": trade.entry_ms, "exit_ms": trade.exit_ms,
            "entry_price": trade.entry_price, "exit_price": trade.exit_price,
            "amount": trade.amount, "cost": trade.cost, "fees": trade.fees, "pnl": trade.pnl,
            "return_pct": trade.return_pct, "duration_ms": trade.duration_ms,
            "exit_reason": trade.exit_reason}


def summary_figures(run: BacktestRun) -> dict[str, Any]:
    """The run's headline figures (what an optimiser ranks trials by)."""
    rec = run.recording
    span = max(run.data.last_ms - run.data.first_ms, 1)
    held = [(t.entry_ms, t.exit_ms) for t in (*rec.trades, *rec.open_trades)]
    return {
        "start": iso(run.data.first_ms), "end": iso(run.data.last_ms),
        **equity_figures(list(rec.sample_ts), list(rec.equity), rec.initial_equity),
        **_trades_figures(list(rec.trades)),
        "exposure_time": covered_ms(held) / span,
        "fees_paid": rec.fees,
        "fills": rec.fills,
        "open_trades": len(rec.open_trades),
        "risk_rejections": dict(sorted(run.rejections.items())),
    }


def build_report(run: BacktestRun) -> dict[str, Any]:
    """Every figure of ``run``, JSON-ready."""
    rec = run.recording
    ts, equity, bh = list(rec.sample_ts), list(rec.equity), list(rec.buy_and_hold)
    initial = rec.initial_equity
    span = max(run.data.last_ms - run.data.first_ms, 1)
    trades = list(rec.trades)
    summary = summary_figures(run)
    buy_and_hold = {
        **equity_figures(ts, bh, initial),
        "pairs": {pair: _pair_return(rec.first_price.get(pair), rec.last_price.get(pair))
                  for pair in rec.pairs},
    }
    return {
        "run": _run_section(run),
        "summary": summary,
        "buy_and_hold": buy_and_hold,
        "pairs": [_pair_section(run, pair, span) for pair in rec.pairs],
        "months": _months(ts, equity, bh, initial, trades),
        "trades": [trade_row(t) for t in trades],
        "open_trades": [trade_row(t) for t in rec.open_trades],
        "daily": [{"date": dt.date.fromordinal(_EPOCH_ORDINAL + day).isoformat(),
                   "equity": e, "buy_and_hold": b}
                  for (day, e), (_, b) in zip(daily_closes(ts, equity), daily_closes(ts, bh),
                                              strict=True)],
        "equity": _chart_series(ts, equity, bh),
        "prices": {pair: {"ts": list(s.ts), "close": list(s.close), "low": list(s.low),
                          "high": list(s.high)} for pair, s in rec.prices.items()},
    }


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _run_section(run: BacktestRun) -> dict[str, Any]:
    config, rec = run.config, run.recording
    spec = config.strategy
    return {
        "strategy": run.status.pairs[0].strategy if run.status.pairs else spec.path,
        "strategy_spec": {"name": spec.path, "params": spec.params_dict()},
        "exits": {k: (v.value if hasattr(v, "value") else v)
                  for k, v in _asdict(config.exits).items()},
        "risk": _asdict(config.risk),
        "paper": _asdict(config.paper),
        "pairs": list(rec.pairs),
        "quote": config.quote,
        "files": dict(run.data.files),
        "bar_ms": run.data.bar_ms,
        "ticks": rec.ticks,
        "elapsed_s": run.elapsed_s,
        "ticks_per_s": rec.ticks / run.elapsed_s if run.elapsed_s > 0 else None,
        "digest": rec.digest,
    }


def _asdict(value: Any) -> dict[str, Any]:
    import attrs

    return attrs.asdict(value, recurse=False)


def _pair_return(first: float | None, last: float | None) -> float | None:
    return last / first - 1 if first and last else None


def _pair_section(run: BacktestRun, pair: str, span: int) -> dict[str, Any]:
    rec = run.recording
    trades = [t for t in rec.trades if t.pair == pair]
    held = [(t.entry_ms, t.exit_ms) for t in (*trades, *rec.open_trades) if t.pair == pair]
    return {
        "pair": pair,
        **_trades_figures(trades),
        "fees": sum(t.fees for t in trades),
        "exposure_time": covered_ms(held) / span,
        "open": any(t.pair == pair for t in rec.open_trades),
        "buy_and_hold_return": _pair_return(rec.first_price.get(pair), rec.last_price.get(pair)),
    }


def _months(ts: Sequence[int], equity: Sequence[float], bh: Sequence[float], initial: float,
            trades: Sequence[Trade]) -> list[dict[str, Any]]:
    """Each calendar month (UTC): equity at its start and end, return, trades closed in it."""
    months: dict[str, dict[str, Any]] = {}
    previous_e, previous_b = initial, initial
    for t, e, b in zip(ts, equity, bh, strict=True):
        key = _month(t)
        month = months.get(key)
        if month is None:
            month = months[key] = {"month": key, "start_equity": previous_e,
                                   "bh_start": previous_b}
        month["end_equity"], month["bh_end"] = e, b
        previous_e, previous_b = e, b
    for trade in trades:
        month = months.get(_month(trade.exit_ms))
        if month is not None:
            month.setdefault("_trades", []).append(trade)
    out = []
    for month in months.values():
        closed = month.pop("_trades", [])
        bh_start, bh_end = month.pop("bh_start"), month.pop("bh_end")
        figures = trade_figures([t.pnl for t in closed], [t.duration_ms for t in closed])
        out.append({**month,
                    "return": month["end_equity"] / month["start_equity"] - 1,
                    "trades": figures.trades, "net_pnl": figures.net_pnl,
                    "win_rate": figures.win_rate,
                    "buy_and_hold_return": bh_end / bh_start - 1})
    return out


def _month(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).strftime("%Y-%m")


def _chart_series(ts: Sequence[int], equity: Sequence[float],
                  bh: Sequence[float]) -> dict[str, list[Any]]:
    """At most ``CHART_POINTS`` points: each bucket's last equity and its deepest drawdown."""
    n = len(ts)
    size = max(1, math.ceil(n / CHART_POINTS))
    out: dict[str, list[Any]] = {"ts": [], "equity": [], "buy_and_hold": [], "drawdown": []}
    peak = -math.inf
    deepest = 0.0
    for i in range(n):
        value = equity[i]
        peak = max(peak, value)
        deepest = max(deepest, (peak - value) / peak if peak > 0 else 0.0)
        if (i + 1) % size == 0 or i == n - 1:
            out["ts"].append(ts[i])
            out["equity"].append(value)
            out["buy_and_hold"].append(bh[i])
            out["drawdown"].append(-deepest)
            deepest = 0.0
    return out


