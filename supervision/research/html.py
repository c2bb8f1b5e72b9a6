"""The report as one self-contained HTML page: tables and inline SVG charts, no scripts.

Everything the page shows is inside the file (styles, charts as inline ``<svg>``), so it opens
from a disk, an e-mail or an archive with no network and no server. Every text that comes
from data is escaped. The trades table shows the first ``MAX_TRADE_ROWS`` trades; the JSON
report next to it has every one.

Plain functions on the caller's thread.
"""

from __future__ import annotations

from html import escape
from typing import Any

from supervision.research.tables import duration, num, pct

MAX_TRADE_ROWS = 2000

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;
max-width:1060px;color:#111827;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#6b7280;margin:0 0 16px}
table{border-collapse:collapse;margin:6px 0 12px;font-variant-numeric:tabular-nums}
th,td{padding:3px 10px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f9fafb}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:0 32px}
.pos{color:#15803d}.neg{color:#b91c1c}
figure{margin:8px 0 16px}figure svg{width:100%;height:auto;display:block}
.scroll{max-height:480px;overflow:auto;border:1px solid #e5e7eb}
"""


def _cell(text: str, signed: float | None = None) -> str:
    cls = "" if signed is None or signed == 0 else (' class="pos"' if signed > 0 else
                                                    ' class="neg"')
    return f"<td{cls}>{escape(text)}</td>"


def _table(header: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _summary(report: dict[str, Any]) -> str:
    s, b, quote = report["summary"], report["buy_and_hold"], report["run"]["quote"]
    rows = []
    for label, key, show in (
        ("final equity", "final_equity", lambda v: f"{num(v)} {quote}"),
        ("total return", "total_return", pct), ("CAGR", "cagr", pct),
        ("max drawdown", "max_drawdown", lambda v: pct(-v)),
        ("drawdown duration", "max_drawdown_duration_ms", duration),
        ("Sharpe", "sharpe", num), ("Sortino", "sortino", num), ("Calmar", "calmar", num),
    ):
        sign = key in ("total_return", "cagr")
        rows.append(f"<tr><td>{label}</td>{_cell(show(s[key]), s[key] if sign else None)}"
                    f"{_cell(show(b[key]), b[key] if sign else None)}</tr>")
    left = _table(["", "strategy", "buy and hold"], rows)
    best, worst = s["best_trade"], s["worst_trade"]
    trade_rows = [
        ("trades", f"{s['trades']} ({s['wins']} won, {s['losses']} lost)"),
        ("still open at the end", str(s["open_trades"])),
        ("win rate", pct(s["win_rate"], 1).lstrip("+")),
        ("profit factor", num(s["profit_factor"])),
        ("expectancy", f"{num(s['expectancy'])} {quote}"),
        ("average trade", duration(s["avg_trade_duration_ms"])),
        ("longest trade", duration(s["longest_trade_duration_ms"])),
        ("time in market", pct(s["exposure_time"], 1).lstrip("+")),
        ("fees paid", f"{num(s['fees_paid'])} {quote}"),
        ("best trade", "-" if best is None else f"{best['pair']} {num(best['pnl'])}"),
        ("worst trade", "-" if worst is None else f"{worst['pair']} {num(worst['pnl'])}"),
        ("risk rejections", ", ".join(f"{k} {v}" for k, v in s["risk_rejections"].items())
         or "none"),
    ]
    right = _table(["trades", ""], [f"<tr><td>{k}</td><td>{escape(v)}</td></tr>"
                                    for k, v in trade_rows])
    return f'<div class="grid"><div>{left}</div><div>{right}</div></div>'


def _pairs(report: dict[str, Any]) -> str:
    rows = [f"<tr><td>{escape(p['pair'])}</td><td>{p['trades']}</td>"
            f"<td>{pct(p['win_rate'], 1).lstrip('+')}</td>{_cell(num(p['net_pnl']), p['net_pnl'])}"
            f"<td>{num(p['profit_factor'])}</td><td>{num(p['expectancy'])}</td>"
            f"<td>{duration(p['avg_trade_duration_ms'])}</td>"
            f"<td>{pct(p['exposure_time'], 1).lstrip('+')}</td><td>{num(p['fees'])}</td>"
            f"{_cell(pct(p['buy_and_hold_return']), p['buy_and_hold_return'])}</tr>"
            for p in report["pairs"]]
    return _table(["pair", "trades", "win rate", "net PnL", "profit factor", "expectancy",
                   "avg trade", "in market", "fees", "buy & hold"], rows)


def _months(report: dict[str, Any]) -> str:
    rows = [f"<tr><td>{m['month']}</td><td>{num(m['start_equity'])}</td>"
            f"<td>{num(m['end_equity'])}</td>{_cell(pct(m['return']), m['return'])}"
            f"<td>{m['trades']}</td>{_cell(num(m['net_pnl']), m['net_pnl'])}"
            f"<td>{pct(m['win_rate'], 1).lstrip('+')}</td>"
            f"{_cell(pct(m['buy_and_hold_return']), m['buy_and_hold_return'])}</tr>"
            for m in report["months"]]
    return _table(["month", "start", "end", "return", "trades", "net PnL", "win rate",
                   "buy & hold"], rows)


def _trades(report: dict[str, Any]) -> str:
    trades = report["trades"]
    rows = []
    for t in trades[:MAX_TRADE_ROWS]:
        ret = f"{t['return_pct']:+.2f}%"
        rows.append(f"<tr><td>{escape(t['pair'])}</td><td>{t['entry'][:19]}</td>"
                    f"<td>{t['exit'][:19]}</td><td>{t['entry_price']:,.8g}</td>"
                    f"<td>{t['exit_price']:,.8g}</td><td>{t['amount']:.8g}</td>"
                    f"{_cell(num(t['pnl']), t['pnl'])}{_cell(ret, t['pnl'])}"
                    f"<td>{duration(t['duration_ms'])}</td>"
                    f"<td>{escape(t['exit_reason'])}</td></tr>")
    note = (f"<p class=meta>The first {MAX_TRADE_ROWS} of {len(trades)} trades; report.json "
            "has all of them.</p>" if len(trades) > MAX_TRADE_ROWS else "")
    table = _table(["pair", "entry", "exit", "entry price", "exit price", "amount", "PnL",
                    "return", "duration", "exit reason"], rows)
    return f'{note}<div class="scroll">{table}</div>'


def _figure(stem: str, svg: str, caption: str) -> str:
    return (f'<figure id="chart-{escape(stem)}" class="chart">{svg}'
            f"<figcaption class=meta>{escape(caption)}</figcaption></figure>")


def render_html(report: dict[str, Any], svgs: dict[str, str]) -> str:
    """The whole page; ``svgs`` are the charts by stem (``charts.write_charts``)."""
    run, s = report["run"], report["summary"]
    title = f"Backtest: {run['strategy']}"
    pair_charts = "".join(
        _figure(stem, svgs[stem], f"{pair}: price (close; band: low to high), "
                                  "entries (green) and exits (red)")
        for pair in run["pairs"] if (stem := f"price-{pair.replace('/', '_')}") in svgs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="meta">{escape(", ".join(run["pairs"]))} &middot; {s["start"][:16]} to {s["end"][:16]}
(UTC) &middot; {run["ticks"]:,} ticks &middot; digest {escape(run["digest"])}</p>
<h2>Summary</h2>{_summary(report)}
<h2>Equity</h2>{_figure("equity", svgs["equity"], "Strategy equity beside buy-and-hold")}
{_figure("drawdown", svgs["drawdown"], "Drawdown from the running peak")}
<h2>Per pair</h2>{_pairs(report)}
<h2>Per month</h2>{_months(report)}
<h2>Prices, entries and exits</h2>{pair_charts}
<h2>Trades</h2>{_trades(report)}
</body></html>
"""


_STITCHED_CAPTION = "Out-of-sample equity, each window trading what its in-sample search found"


def render_walk_forward_html(report: dict[str, Any], text: str, svg: str) -> str:
    """The walk-forward page: the windows' table (as the terminal shows it) and the
    stitched out-of-sample equity."""
    title = f"Walk-forward: {report['study']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_STYLE} pre{{font-size:12px;overflow:auto}}</style></head>
<body><h1>{escape(title)}</h1>
<p class="meta">{escape(", ".join(report["pairs"]))} &middot; {escape(report["mode"])} windows
&middot; objective {escape(report["objective"])}</p>
{_figure("stitched", svg, _STITCHED_CAPTION)}
<h2>Windows</h2><pre>{escape(text)}</pre>
</body></html>
"""
