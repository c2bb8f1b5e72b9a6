"""The report as a person reads it in a terminal: aligned text tables.

Plain functions over the report dict (``report.build_report``); the CLI prints what they
return. Undefined figures (None) show as ``-``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *,
          right: Sequence[bool] | None = None) -> str:
    """Columns padded to their widest cell; ``right`` aligns a column's cells right."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    align = right or [False] * len(header)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if a else str(c).ljust(w)
                         for c, w, a in zip(cells, widths, align, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]),
                      *(line(r) for r in rows)])


def pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:+.{digits}f}%"


def num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def duration(ms: float | None) -> str:
    """``3d 4h``, ``5h 12m``, ``40m``."""
    if ms is None:
        return "-"
    minutes = int(ms // 60_000)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins}m"
    return f"{mins}m"


def summary_table(report: dict[str, Any]) -> str:
    """Strategy and buy-and-hold side by side, then the trade figures."""
    s, b = report["summary"], report["buy_and_hold"]
    quote = report["run"]["quote"]
    side = [
        ("final equity", f"{num(s['final_equity'])} {quote}", f"{num(b['final_equity'])} {quote}"),
        ("total return", pct(s["total_return"]), pct(b["total_return"])),
        ("CAGR", pct(s["cagr"]), pct(b["cagr"])),
        ("max drawdown", pct(-s["max_drawdown"]), pct(-b["max_drawdown"])),
        ("drawdown duration", duration(s["max_drawdown_duration_ms"]),
         duration(b["max_drawdown_duration_ms"])),
        ("Sharpe", num(s["sharpe"]), num(b["sharpe"])),
        ("Sortino", num(s["sortino"]), num(b["sortino"])),
        ("Calmar", num(s["calmar"]), num(b["calmar"])),
    ]
    first = table(["", "strategy", "buy and hold"], side, right=[False, True, True])
    best, worst = s["best_trade"], s["worst_trade"]
    rejections = ", ".join(f"{k} {v}" for k, v in s["risk_rejections"].items()) or "none"
    rows = [
        ("period", f"{s['start'][:16]} to {s['end'][:16]}"),
        ("starting equity", f"{num(s['initial_equity'])} {quote}"),
        ("trades", (f"{s['trades']} ({s['wins']} won, {s['losses']} lost; "
                   f"{s['open_trades']} still open)")),
        ("win rate", pct(s["win_rate"], 1).lstrip("+")),
        ("profit factor", num(s["profit_factor"])),
        ("expectancy", f"{num(s['expectancy'])} {quote} per trade"),
        ("avg / longest trade", (f"{duration(s['avg_trade_duration_ms'])} / "
                                f"{duration(s['longest_trade_duration_ms'])}")),
        ("time in market", pct(s["exposure_time"], 1).lstrip("+")),
        ("fees paid", f"{num(s['fees_paid'])} {quote}"),
        ("best trade", "-" if best is None else f"{best['pair']} {num(best['pnl'])} "
                                                 f"({best['return_pct']:+.2f}%)"),
        ("worst trade", "-" if worst is None else f"{worst['pair']} {num(worst['pnl'])} "
                                                   f"({worst['return_pct']:+.2f}%)"),
        ("risk rejections", rejections),
    ]
    second = "\n".join(f"{k:<20}{v}" for k, v in rows)
    return f"{first}\n\n{second}"


def pairs_table(report: dict[str, Any]) -> str:
    rows = [(p["pair"], str(p["trades"]), pct(p["win_rate"], 1).lstrip("+"),
             num(p["net_pnl"]), num(p["profit_factor"]), num(p["expectancy"]),
             duration(p["avg_trade_duration_ms"]), pct(p["exposure_time"], 1).lstrip("+"),
             num(p["fees"]), pct(p["buy_and_hold_return"]))
            for p in report["pairs"]]
    return table(["pair", "trades", "win rate", "net PnL", "profit f.", "expectancy",
                  "avg trade", "in market", "fees", "buy & hold"], rows,
                 right=[False, *[True] * 9])


def months_table(report: dict[str, Any]) -> str:
    rows = [(m["month"], num(m["start_equity"]), num(m["end_equity"]), pct(m["return"]),
             str(m["trades"]), num(m["net_pnl"]), pct(m["win_rate"], 1).lstrip("+"),
             pct(m["buy_and_hold_return"]))
            for m in report["months"]]
    return table(["month", "start", "end", "return", "trades", "net PnL", "win rate",
                  "buy & hold"], rows, right=[False, *[True] * 7])


def full_text(report: dict[str, Any]) -> str:
    run = report["run"]
    head = (f"backtest of {run['strategy']} on {', '.join(run['pairs'])}: "
            f"{run['ticks']:,} ticks in {run['elapsed_s']:.1f} s, digest {run['digest']}")
    return "\n\n".join([head, summary_table(report), pairs_table(report), months_table(report)])
