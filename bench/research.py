"""Research benchmarks: backtest throughput and memory, the report's cost, optimize scaling.

1. ``year``: a year of 1-minute GBM candles for 10 pairs (525,600 rows each, about 21 M
   ticks) written as CSV files into ``var/bench/research`` (once; reused), then backtested
   with ``run_backtest`` (``ema_cross`` on 5-minute closes, the default exits) streamed from
   the files. Target: under 120 s, with peak RSS growth bounded (streamed, not loaded):
   the recorder keeps bars and trades, never ticks. Quick: two weeks.
2. ``report``: building the report, the JSON, the PNG charts and the HTML of that run, timed
   apart from the backtest.
3. ``optimize``: trials per minute of ``--jobs 1`` and ``--jobs 2``, each a study of the same
   fixed values (a week of 10 pairs' minutes in memory per worker, 32 trials of about a second
   each, none refused or pruned, so both do equal work); target: jobs 2 >= 1.8x jobs 1, in
   wall time, start-up included. Needs two free cores: on a loaded machine it measures the
   load (the note says how much other processes took).

The GBM throughput against nautilus_trader is measured by ``bench.replay`` (the same cores);
this one adds what a backtest adds around them (the CSV parse, the recorder).
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

from actors.messages import StrategySpec
from bench.common import CpuMeter, Row, check, peak_rss_mb, reset_peak_rss, rss_mb
from supervision.config import build_config
from supervision.research import TimeRange, from_files, run_backtest

DATA = Path("var/bench/research")
PAIRS = tuple(f"{base}/USDT" for base in ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "LTC",
                                           "DOT", "AVAX", "LINK"))
START_MS = 1_672_531_200_000  # 2023-01-01
YEAR_MINUTES = 525_600


def write_gbm_candles(path: Path, pair_index: int, minutes: int) -> None:
    """Seeded GBM minute candles (about 60 % a year of volatility), streamed to ``path``."""
    rng = random.Random(1000 + pair_index)
    price = 100.0 * (1 + pair_index)
    sigma = 0.6 / math.sqrt(YEAR_MINUTES)
    with path.open("w", encoding="utf-8") as f:
        f.write("timestamp_ms,open,high,low,close,volume\n")
        lines = []
        for i in range(minutes):
            close = price * math.exp(rng.gauss(0, sigma))
            wick = abs(rng.gauss(0, sigma / 2))
            high, low = max(price, close) * (1 + wick), min(price, close) * (1 - wick)
            lines.append(f"{START_MS + i * 60_000},{price:.4f},{high:.4f},{low:.4f},"
                         f"{close:.4f},{rng.uniform(1, 9):.3f}\n")
            price = close
            if len(lines) == 10_000:
                f.write("".join(lines))
                lines.clear()
        f.write("".join(lines))


def dataset(minutes: int) -> list[tuple[str, str]]:
    folder = DATA / f"{minutes}m"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, pair in enumerate(PAIRS):
        path = folder / f"{pair.replace('/', '_')}-1m.csv"
        if not path.is_file():
            write_gbm_candles(path, i, minutes)
        files.append((pair, str(path)))
    return files


def bench_year(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    minutes = 14 * 1440 if quick else YEAR_MINUTES
    files = dataset(minutes)
    config = build_config({}, {"pairs": ",".join(PAIRS),
                               "strategy": StrategySpec.of("ema_cross", timeframe_s=300)})
    data = from_files(files, TimeRange())
    before = rss_mb()
    reset_peak_rss()
    started = time.perf_counter()
    run = run_backtest(config, data)
    elapsed = time.perf_counter() - started
    growth = peak_rss_mb() - before
    ticks = run.recording.ticks
    from supervision.research import write_report

    folder = Path(tempfile.mkdtemp(prefix="bench-report-"))
    t0 = time.perf_counter()
    write_report(run, folder)
    report_s = time.perf_counter() - t0
    shutil.rmtree(folder)
    case = f"10 pairs x {minutes // 1440} days of 1m candles"
    limit = 120.0 * minutes / YEAR_MINUTES
    rows = [
        Row("research", case, "backtest", elapsed, "s", target=f"< {limit:.0f} s",
            ok=check(elapsed, limit, higher_is_better=False),
            note=f"{ticks:,} ticks, {ticks / elapsed:,.0f}/s, {run.recording.fills} fills"),
        Row("research", case, "peak RSS growth", growth, "MB", target="bounded (< 500 MB)",
            ok=check(growth, 500, higher_is_better=False)),
        Row("research", case, "report (JSON, PNG, HTML)", report_s, "s"),
    ]
    return rows, {"ticks": ticks, "elapsed_s": elapsed, "rss_growth_mb": growth,
                  "report_s": report_s, "fills": run.recording.fills}


def trial_values(count: int) -> list[dict[str, int]]:
    """``count`` valid ``ema_cross`` values (fast < slow), seeded: both runs evaluate these."""
    rng = random.Random(7)
    values = []
    while len(values) < count:
        fast, slow = rng.randint(2, 50), rng.randint(10, 200)
        if fast < slow:
            values.append({"fast": fast, "slow": slow})
    return values


def run_jobs(jobs: int, trials: int, files: list[tuple[str, str]],
             storage: Path) -> dict[str, float]:
    """One study of ``trials`` fixed trials on ``jobs`` processes; its wall time, the span of
    its trials (first start to last end: the workers' start-up and data loading left out),
    and the CPU other processes took meanwhile (this run's workers not counted)."""
    import resource

    from supervision.research import make_job, open_study, resolve_space, run_study

    config = build_config({}, {"pairs": ",".join(p for p, _ in files),
                               "strategy": StrategySpec.of("ema_cross", timeframe_s=300)})
    data = from_files(files, TimeRange())
    args = argparse.Namespace(objective="sharpe", min_trades=0, storage=str(storage),
                              trials=trials, seed=1)
    job = make_job(args, config, data, resolve_space(config.strategy, "strategy"),
                   f"bench-jobs{jobs}")
    # Equal work on both sides: the same values in the same order, none refused, none
    # pruned (which trials a pruner stops depends on which finish first).
    job = attrs.evolve(job, checkpoints=0)
    study = open_study(job)
    for values in trial_values(trials):
        study.enqueue_trial(values)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    meter = CpuMeter()
    started = time.perf_counter()
    run_study(job, jobs, progress=False)
    wall = time.perf_counter() - started
    cores = meter.cores()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) / wall
    done = [t for t in open_study(job).trials if t.datetime_complete is not None]
    span = (max(t.datetime_complete for t in done)
            - min(t.datetime_start for t in done)).total_seconds()
    return {"per_min": trials / wall * 60, "steady_per_min": len(done) / span * 60,
            "wall_s": wall, "others": max(0.0, cores["others"] - workers)}


def bench_optimize(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    # Many short trials rather than a few long ones, so that starting a worker (a new
    # interpreter, its imports, its copy of the data: about 0.5 s more than the first
    # process, which loads the same data meanwhile) is small beside the trials.
    minutes = 2 * 1440 if quick else 7 * 1440
    files = dataset(minutes)
    trials = 24 if quick else 32
    storage = Path(tempfile.mkdtemp(prefix="bench-optimize-"))
    try:
        one = run_jobs(1, trials, files, storage)
        two = run_jobs(2, trials, files, storage)
    finally:
        shutil.rmtree(storage)
    ratio = two["per_min"] / one["per_min"]
    steady = two["steady_per_min"] / one["steady_per_min"]
    case = f"{len(files)} pairs x {minutes // 1440} days, {trials} trials"
    load = (f"other processes {one['others']:.2f} and {two['others']:.2f} cores "
            "(needs two free cores)")
    rows = [Row("research", case, "optimize --jobs 1", one["per_min"], "trials/min",
                note=f"{one['wall_s']:.1f} s"),
            Row("research", case, "optimize --jobs 2", two["per_min"], "trials/min",
                note=f"{two['wall_s']:.1f} s"),
            Row("research", case, "jobs 2 / jobs 1", ratio, "x", target=">= 1.8x",
                ok=check(ratio, 1.8, higher_is_better=True),
                note=f"the same {trials} values each, not pruned; over the trials' own span "
                     f"(start-up left out) {steady:.2f}x; {load}")]
    return rows, {"jobs1": one, "jobs2": two, "ratio": ratio, "steady_ratio": steady}


def bench_research(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    year_rows, year = bench_year(quick)
    opt_rows, opt = bench_optimize(quick)
    return year_rows + opt_rows, {"year": year, "optimize": opt}
