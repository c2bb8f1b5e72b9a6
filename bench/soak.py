"""Soak: memory over 10,000,000 ticks on 20 pairs through the actors (quick: 150,000).

One run of the production actors at full speed on a GBM feed generated on the fly (so the
data itself takes no memory), ``ema_cross`` trading about 3,700 times per 100,000 ticks, all
state in SQLite. A bench thread reads VmRSS (``/proc/self/status``) and the processed-tick
count every 0.25 s. Growth is the least-squares slope of RSS against ticks processed between
the warm-up mark and the end of the measured ticks, in MB per million ticks; the difference
between the RSS at those two marks is shown too. The warm-up (400,000 ticks; quick: 100,000)
is long enough for every bounded buffer to fill at this trading rate, and to reach its
steady size: the market data history rings (2,000 ticks per pair), the per-pair latency
rings, and the 10,000 recent orders of the ledger and of the paper exchange and the ledger's
10,000 recent fill ids (full at about 270,000 ticks at 3,700 fills per 100,000). A full
order map then grows its table once more, at its first compaction (``sys.getsizeof``: 657 to
997 KB each, measured at 270,000-325,000 ticks), so a 300,000-tick warm-up left that step
inside the measured window. The quick run's warm-up is too short for these, so its figures
are upper bounds.

After the measured ticks the same run goes on with ``tracemalloc`` on (started then, so it
costs the measured part nothing): 300,000 ticks to settle (quick: 30,000), so that every
bounded buffer has turned over completely under tracemalloc (the 10,000-order maps take
about 260,000 ticks) and refilled buffers do not count as growth, a snapshot, a further
200,000 ticks (quick: 50,000), a second snapshot; each snapshot follows a full collection, so
that it holds live objects only. The source lines whose live allocations
grew between the two snapshots are listed, top ten. SQLite's write-ahead log is sampled beside
the RSS over the whole run: the state actor keeps it bounded, and a check says so.
``tracemalloc``'s own overhead stays out of the RSS figure.
"""

from __future__ import annotations

import contextlib
import gc
import linecache
import os
import threading
import time
import tracemalloc
from typing import Any

from bench.common import Row, bench_config, check, rss_mb, temp_db
from bench.data import LIVE_INTERVAL_MS, LiveSource, synthetic_pairs
from supervision import TradingSystem


def _slope(points: list[tuple[int, float]]) -> float:
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx if sxx else float("nan")


_SKIP = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "*/bench/*"),
)


def _live_snapshot() -> tracemalloc.Snapshot:
    """A snapshot of live objects only: a full collection first frees cyclic garbage and
    empties CPython's free lists (up to 2,000 tuples of each length), whose blocks
    tracemalloc would otherwise still count at the line that last allocated them."""
    gc.collect()
    return tracemalloc.take_snapshot()


def _top(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot,
         limit: int = 10) -> list[dict[str, Any]]:
    """The source lines whose live allocations grew most from ``before`` to ``after``."""
    diff = after.filter_traces(_SKIP).compare_to(before.filter_traces(_SKIP), "lineno")
    out = []
    for stat in sorted(diff, key=lambda s: s.size_diff, reverse=True)[:limit]:
        frame = stat.traceback[0]
        out.append({
            "where": f"{frame.filename.split('/work/main/')[-1]}:{frame.lineno}",
            "kb": stat.size_diff / 1024, "blocks": stat.count_diff,
            "line": linecache.getline(frame.filename, frame.lineno).strip(),
        })
    return out


def run_soak(n_pairs: int, warm: int, measured: int, settle: int, traced: int
             ) -> dict[str, Any]:
    """``warm`` ticks, then ``measured`` ticks of RSS readings, then ``settle`` and
    ``traced`` ticks under tracemalloc."""
    pairs = synthetic_pairs(n_pairs)
    measured += warm
    total = measured + settle + traced
    per_pair = -(-total // n_pairs)
    stop = threading.Event()
    source = LiveSource(pairs, per_pair * LIVE_INTERVAL_MS / 1000, stop)
    samples: list[tuple[int, float]] = []
    marks: dict[str, Any] = {}
    with temp_db() as db:
        system = TradingSystem(bench_config(pairs, db, strategy="ema_cross"), source=source)
        router = system.router
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                ticks = sum(h.ticks for h in router.pairs.values())
                rss = rss_mb()
                samples.append((ticks, rss))
                with contextlib.suppress(OSError):
                    marks["largest_wal_mb"] = max(marks.get("largest_wal_mb", 0.0),
                                                  os.path.getsize(db + "-wal") / 1e6)
                if "warm" not in marks and ticks >= warm:
                    marks["warm"] = (ticks, rss, time.perf_counter())
                if "measured" not in marks and ticks >= measured:
                    marks["measured"] = (ticks, rss, time.perf_counter())
                    tracemalloc.start()
                if "traced_from" not in marks and ticks >= measured + settle:
                    marks["traced_from"] = ticks
                    marks["before"] = _live_snapshot()

        sampler = threading.Thread(target=sample, name="bench-rss", daemon=True)
        t0 = time.perf_counter()
        system.start()
        sampler.start()
        system.wait(3600)
        system.drain(30)
        elapsed = time.perf_counter() - t0
        done.set()
        sampler.join()
        traced_ticks = sum(h.ticks for h in router.pairs.values()) - marks.get("traced_from", 0)
        after = _live_snapshot() if "before" in marks else None
        tracemalloc.stop()
        final = system.stop()
        gc.collect()
    warm_ticks, warm_rss, _ = marks.get("warm", (0, float("nan"), 0.0))
    end_ticks, end_rss, _ = marks.get("measured", (0, float("nan"), 0.0))
    window = [(t, r) for t, r in samples if warm_ticks <= t <= end_ticks]
    slope = _slope(window) * 1e6
    return {
        "pairs": n_pairs, "ticks": sum(p.ticks for p in final.pairs), "seconds": elapsed,
        "fills": final.fills, "warm_ticks": warm_ticks, "warm_rss_mb": warm_rss,
        "measured_ticks": end_ticks, "measured_rss_mb": end_rss,
        "growth_mb_per_m_slope": slope,
        "growth_mb_per_m_endpoints": (end_rss - warm_rss) / max(1, end_ticks - warm_ticks) * 1e6,
        "traced_ticks": traced_ticks,
        "tracemalloc_top": _top(marks["before"], after) if after is not None else [],
        "samples": samples[:: max(1, len(samples) // 200)],
        "largest_wal_mb": marks.get("largest_wal_mb", 0.0),
    }


WAL_BOUND_MB = 256.0
"""The log is emptied from 64 MB on, within about a second; at full speed it grows about
20 MB/s here (94 MB was the largest seen), so this leaves room for a faster machine. Without
the emptying, this run's log passed 400 MB within 800,000 ticks."""


def bench_soak(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    if quick:
        r = run_soak(20, warm=100_000, measured=150_000, settle=30_000, traced=50_000)
    else:
        r = run_soak(20, warm=400_000, measured=10_000_000, settle=300_000, traced=200_000)
    top = r["tracemalloc_top"]
    biggest = ", ".join(f"{t['where']} {t['kb']:.0f} KB" for t in top[:3])
    per_m = r["traced_ticks"] and 1e6 / r["traced_ticks"]
    rows = [
        Row("soak", f"20 pairs, {r['measured_ticks'] - r['warm_ticks']:,} ticks after "
            f"{r['warm_ticks']:,} warm-up", "RSS growth",
            r["growth_mb_per_m_slope"], "MB/M ticks", target="<= 2 MB/M ticks",
            ok=check(r["growth_mb_per_m_slope"], 2.0, False),
            note=f"RSS {r['warm_rss_mb']:.0f} MB at {r['warm_ticks']:,} ticks -> "
                 f"{r['measured_rss_mb']:.0f} MB; endpoints "
                 f"{r['growth_mb_per_m_endpoints']:.1f} MB/M; {r['fills']:,} fills"),
        Row("soak", f"tracemalloc over {r['traced_ticks']:,} more ticks",
            "live-allocation growth, top 3 lines", sum(t["kb"] for t in top[:3]) * per_m / 1024,
            "MB/M ticks", note=biggest),
        # The state actor empties a WAL past 64 MB (actors.state.wal_checkpointer).
        Row("soak", f"the whole run, {r['ticks']:,} ticks", "largest WAL file",
            r["largest_wal_mb"], "MB", target=f"<= {WAL_BOUND_MB} MB",
            ok=check(r["largest_wal_mb"], WAL_BOUND_MB, False),
            note="sampled every 0.25 s beside the RSS"),
    ]
    return rows, r
