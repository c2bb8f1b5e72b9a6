"""Walk-forward: optimise in-sample, trade the next stretch out-of-sample, window by window.

The span is cut into ``--wf-windows`` out-of-sample (OOS) stretches of equal length, each
after an in-sample (IS) stretch ``ratio / (1 - ratio)`` times as long: ``rolling`` slides
the IS stretch along (always the same length), ``anchored`` starts every IS stretch at the
beginning (each longer than the last). Each window's IS data is optimised as ``optimize``
does (a study of its own, ``<study>-wf<i>``, resumable), and the best values found trade the
OOS data, which the search never saw; strategies warm up on the data before each stretch.

The report holds each window's IS and OOS figures, the OOS equity stitched into one curve
(each stretch starts where the last ended), and the degradation: how much of the IS result
survives OOS, the honest estimate of what live trading will see. A window whose search found
no result stays in cash and says so.

Runs on the main thread (its studies use ``--jobs`` processes).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any, TextIO

import attrs

from supervision.config import ConfigError, SystemConfig
from supervision.research.backtest import run_backtest
from supervision.research.optimize import (
    OBJECTIVES,
    Dimension,
    apply_values,
    best_trials,
    check_study_matches,
    identity_of,
    make_job,
    run_study,
)
from supervision.research.report import equity_figures, iso, summary_figures
from supervision.research.source import BacktestData
from supervision.research.timeframes import TimeRange

MODES = ("rolling", "anchored")


@attrs.frozen
class Window:
    index: int
    train: TimeRange
    test: TimeRange


def windows(first_ms: int, last_ms: int, count: int, ratio: float, mode: str) -> list[Window]:
    """The IS/OOS windows over ``[first_ms, last_ms)``; raises ``ConfigError`` for a bad
    count, ratio or mode."""
    if mode not in MODES:
        raise ConfigError(f"wf-mode: {mode!r} is not one of {', '.join(MODES)}")
    if count < 1:
        raise ConfigError(f"wf-windows: {count} must be at least 1")
    if not 0 < ratio < 1:
        raise ConfigError(f"wf-train-ratio: {ratio} must be between 0 and 1 (the in-sample "
                          "share of a window, e.g. 0.75)")
    span = last_ms - first_ms
    factor = ratio / (1 - ratio)
    test = int(span / (count + factor))
    train = int(test * factor)
    if test < 60_000 or train < 60_000:
        raise ConfigError(f"wf-windows: {count} windows leave stretches shorter than a minute "
                          "in this span; use fewer windows or a longer --timerange")
    out = []
    for i in range(count):
        test_start = first_ms + train + i * test
        test_end = last_ms if i == count - 1 else test_start + test
        train_start = first_ms if mode == "anchored" else test_start - train
        out.append(Window(i, TimeRange(train_start, test_start), TimeRange(test_start,
                                                                           test_end)))
    return out


def _figures(values: dict[str, Any]) -> dict[str, Any]:
    keys = ("trades", "total_return", "cagr", "max_drawdown", "sharpe", "sortino", "calmar",
            "net_pnl", "win_rate", "profit_factor", "expectancy")
    return {k: values.get(k) for k in keys}


def run_walk_forward(args: argparse.Namespace, config: SystemConfig, data: BacktestData,
                     dims: tuple[Dimension, ...], *, name: str, out: TextIO) -> int:
    from supervision.research.cli import EXIT_OK

    plan = windows(data.first_ms, data.last_ms, args.wf_windows, args.wf_train_ratio,
                   args.wf_mode)
    initial = config.funding[config.quote]
    stitched_ts: list[int] = []
    stitched: list[float] = []
    equity = initial
    rows = []
    for window in plan:
        train, test = data.within(window.train), data.within(window.test)
        job = make_job(args, config, train, dims, f"{name}-wf{window.index}")
        from supervision.research.optimize import open_study

        check_study_matches(open_study(job), identity_of(job))
        print(f"window {window.index + 1}/{len(plan)}: in-sample {iso(train.first_ms)[:16]} "
              f"to {iso(train.last_ms)[:16]}, out-of-sample to {iso(test.last_ms)[:16]}",
              file=out, flush=True)
        study = run_study(job, args.jobs, progress=not args.no_progress,
                          cluster=args.cluster)
        best = best_trials(study, 1)
        row: dict[str, Any] = {"window": window.index,
                               "in_sample": {"start": iso(train.first_ms),
                                             "end": iso(train.last_ms)},
                               "out_of_sample": {"start": iso(test.first_ms),
                                                 "end": iso(test.last_ms)}}
        if not best:
            row["note"] = "no in-sample result (every trial pruned): stayed in cash"
            row["in_sample"]["figures"] = None
            row["out_of_sample"]["figures"] = None
            stitched_ts += [test.first_ms, test.last_ms]
            stitched += [equity, equity]
            rows.append(row)
            continue
        top = best[0]
        values = dict(top.params)
        strategy_values = {d.name: values[d.name] for d in dims if d.section == "strategy"}
        exit_values = {d.name: values[d.name] for d in dims if d.section == "exits"}
        oos = run_backtest(apply_values(config, strategy_values, exit_values), test)
        oos_figures = summary_figures(oos)
        rows.append({**row, "values": values,
                     "in_sample": {**row["in_sample"], "objective": top.value,
                                   "figures": _figures(top.user_attrs)},
                     "out_of_sample": {**row["out_of_sample"],
                                       "objective": OBJECTIVES[args.objective](oos_figures),
                                       "figures": _figures(oos_figures)}})
        scale = equity / initial
        rec = oos.recording
        stitched_ts += list(rec.sample_ts)
        stitched += [v * scale for v in rec.equity]
        equity = stitched[-1]
    report = {
        "study": name, "objective": args.objective, "mode": args.wf_mode,
        "train_ratio": args.wf_train_ratio, "pairs": list(data.pairs),
        "quote": config.quote, "windows": rows,
        "stitched": {**equity_figures(stitched_ts, stitched, initial),
                     "ts": stitched_ts, "equity": stitched},
        "degradation": degradation(rows),
    }
    folder = (Path(args.report_dir) if args.report_dir else
              Path("var/walk-forward") / f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{name}")
    write_walk_forward(report, folder)
    print(walk_forward_text(report), file=out)
    print(f"\nreport: {folder.resolve()}", file=out, flush=True)
    return EXIT_OK


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def degradation(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How the in-sample figures hold up out of sample, over the windows with a result:
    each figure's mean IS and OOS, the change, and the share kept (OOS / IS, where IS is
    positive; for the CAGR that is the walk-forward efficiency)."""
    done = [r for r in rows if r["in_sample"].get("figures")]
    out: dict[str, Any] = {"windows": len(done)}
    for key in ("objective", "total_return", "cagr", "sharpe", "max_drawdown", "win_rate"):
        def pick(side: dict[str, Any], key: str = key) -> float | None:
            value = side.get("objective") if key == "objective" else side["figures"].get(key)
            return float(value) if value is not None else None

        is_mean = _mean([pick(r["in_sample"]) for r in done])
        oos_mean = _mean([pick(r["out_of_sample"]) for r in done])
        # A share kept means something only of a positive in-sample figure.
        kept = (oos_mean / is_mean if is_mean is not None and is_mean > 0
                and oos_mean is not None else None)
        change = oos_mean - is_mean if is_mean is not None and oos_mean is not None else None
        out[key] = {"in_sample": is_mean, "out_of_sample": oos_mean, "change": change,
                    "kept": kept}
    return out


def walk_forward_text(report: dict[str, Any]) -> str:
    from supervision.research.tables import num, pct, table

    rows = []
    for r in report["windows"]:
        is_f, oos_f = r["in_sample"].get("figures"), r["out_of_sample"].get("figures")
        if not is_f:
            rows.append((str(r["window"] + 1), r["out_of_sample"]["start"][:10], "-", "-", "-",
                         "-", "-", "-", r.get("note", "")))
            continue
        rows.append((str(r["window"] + 1), r["out_of_sample"]["start"][:10],
                     num(r["in_sample"]["objective"], 3), num(r["out_of_sample"]["objective"], 3),
                     pct(is_f["total_return"]), pct(oos_f["total_return"]),
                     f"{is_f['trades']}/{oos_f['trades']}", pct(-oos_f["max_drawdown"]),
                     ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in sorted(r["values"].items()))))
    objective = report["objective"]
    head = table(["window", "OOS from", f"IS {objective}", f"OOS {objective}", "IS return",
                  "OOS return", "trades IS/OOS", "OOS max dd", "values"], rows,
                 right=[True, False, True, True, True, True, True, True, False])
    s, d = report["stitched"], report["degradation"]
    kept = d["objective"]["kept"]
    lines = [
        head, "",
        (f"stitched out-of-sample: return {pct(s['total_return'])}, CAGR {pct(s['cagr'])}, "
        f"max drawdown {pct(-s['max_drawdown'])}, Sharpe {num(s['sharpe'])}"),
        f"degradation: {objective} {num(d['objective']['in_sample'], 3)} in sample -> "
        f"{num(d['objective']['out_of_sample'], 3)} out of sample"
        + (f" ({100 * kept:.0f}% kept)" if kept is not None else ""),
        (f"             return per window {pct(d['total_return']['in_sample'])} -> "
        f"{pct(d['total_return']['out_of_sample'])}; walk-forward efficiency (OOS CAGR / IS "
        f"CAGR) {num(d['cagr']['kept'])}"),
    ]
    return "\n".join(lines)


def write_walk_forward(report: dict[str, Any], folder: Path) -> None:
    """``walk_forward.json``, the stitched equity as PNG, and a page with both."""
    from supervision.research.charts import stitched_figure, svg_text, write_figure
    from supervision.research.html import render_walk_forward_html
    from supervision.research.outputs import write_json

    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "walk_forward.json", report)
    figure = stitched_figure(report)
    write_figure(figure, folder / "stitched-equity.png")
    page = render_walk_forward_html(report, walk_forward_text(report), svg_text(figure))
    (folder / "walk_forward.html").write_text(page, encoding="utf-8")
