"""The report's charts, drawn once with matplotlib and written as PNG and as SVG text.

Three kinds: the equity curve beside buy-and-hold, the drawdown, and each pair's price (the
bucket's low-high band and its close) with the trades' entries and exits marked. The same
figure gives the PNG file and the SVG the HTML report inlines, so both show the same thing.

Uses matplotlib's object API (``Figure`` + the Agg canvas), never ``pyplot``: no global
figure registry, no GUI backend, safe in a worker process. The rc settings it needs are set
inside ``rc_context`` only. Runs on the caller's thread; a chart that cannot be drawn raises
(the CLI reports it; the JSON is written first).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_RC: Any = {"svg.fonttype": "none", "svg.hashsalt": "trade-conductor", "font.size": 9,
       "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
       "grid.alpha": 0.3, "path.simplify": True}
_BLUE, _GREY, _RED, _GREEN = "#2563eb", "#9ca3af", "#dc2626", "#16a34a"


def _times(ts: list[int]) -> Any:
    return np.array(ts, dtype="datetime64[ms]")


def _date_axis(ax: Any) -> None:
    """Dates that never collide: the concise formatter names a month once, then days."""
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)


def _figure(height: float = 3.2) -> tuple[Figure, Any]:
    fig = Figure(figsize=(10, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def equity_figure(report: dict[str, Any]) -> Figure:
    series = report["equity"]
    quote = report["run"]["quote"]
    fig, ax = _figure()
    t = _times(series["ts"])
    ax.plot(t, series["buy_and_hold"], color=_GREY, linewidth=1, label="buy and hold")
    ax.plot(t, series["equity"], color=_BLUE, linewidth=1.4, label="strategy")
    ax.set_title("Equity")
    ax.set_ylabel(quote)
    ax.legend(loc="best", frameon=False)
    _date_axis(ax)
    return fig


def drawdown_figure(report: dict[str, Any]) -> Figure:
    series = report["equity"]
    fig, ax = _figure(2.4)
    t = _times(series["ts"])
    depth = np.array(series["drawdown"]) * 100
    ax.fill_between(t, depth, 0, color=_RED, alpha=0.35, linewidth=0)
    ax.plot(t, depth, color=_RED, linewidth=0.8)
    ax.set_title("Drawdown")
    ax.set_ylabel("%")
    _date_axis(ax)
    return fig


def price_figure(report: dict[str, Any], pair: str) -> Figure:
    prices = report["prices"][pair]
    fig, ax = _figure()
    t = _times(prices["ts"])
    ax.fill_between(t, prices["low"], prices["high"], color=_GREY, alpha=0.3, linewidth=0)
    ax.plot(t, prices["close"], color="#374151", linewidth=0.9, label=pair)
    trades = [tr for tr in (*report["trades"], *report["open_trades"]) if tr["pair"] == pair]
    if trades:
        ax.scatter(_times([tr["entry_ms"] for tr in trades]),
                   [tr["entry_price"] for tr in trades], marker="^", s=28, color=_GREEN,
                   label="entry", zorder=3)
        closed = [tr for tr in trades if tr["exit_reason"] != "open"]
        ax.scatter(_times([tr["exit_ms"] for tr in closed]),
                   [tr["exit_price"] for tr in closed], marker="v", s=28, color=_RED,
                   label="exit", zorder=3)
    ax.set_title(f"{pair}: price, entries and exits")
    ax.set_ylabel(report["run"]["quote"])
    ax.legend(loc="best", frameon=False)
    _date_axis(ax)
    return fig


def stitched_figure(report: dict[str, Any]) -> Figure:
    """Walk-forward: the out-of-sample stretches' equity, stitched, with window starts."""
    with mpl.rc_context(_RC):
        fig, ax = _figure()
        stitched = report["stitched"]
        ax.plot(_times(stitched["ts"]), stitched["equity"], color=_BLUE, linewidth=1.2)
        for window in report["windows"]:
            start = np.datetime64(window["out_of_sample"]["start"].rstrip("Z"), "ms")
            ax.axvline(start, color=_GREY, linewidth=0.8, linestyle="--")
        ax.set_title("Out-of-sample equity, stitched (dashed: window starts)")
        ax.set_ylabel(report["quote"])
        _date_axis(ax)
    return fig


def write_figure(fig: Figure, path: Path) -> None:
    with mpl.rc_context(_RC):
        fig.savefig(path, format="png", metadata={"Software": None})


def figures(report: dict[str, Any]) -> dict[str, Figure]:
    """Every chart of the report by file stem: equity, drawdown, price-BASE_QUOTE..."""
    with mpl.rc_context(_RC):
        out = {"equity": equity_figure(report), "drawdown": drawdown_figure(report)}
        for pair in report["run"]["pairs"]:
            out[f"price-{pair.replace('/', '_')}"] = price_figure(report, pair)
    return out


def svg_text(fig: Figure) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog)."""
    buffer = io.StringIO()
    with mpl.rc_context(_RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def write_charts(report: dict[str, Any], folder: Path) -> dict[str, str]:
    """Write each chart as ``<stem>.png`` into ``folder``; returns the SVG of each by stem."""
    svgs = {}
    for stem, fig in figures(report).items():
        write_figure(fig, folder / f"{stem}.png")
        svgs[stem] = svg_text(fig)
    return svgs
