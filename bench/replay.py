"""Replay throughput on ten pairs, and the recorded files: actors and threadless must agree.

Data: the seeded GBM trade tape of ``bench.data`` (20 ms apart, 0.04 % per tick) on ten
pairs x 100,000 ticks (quick: 20,000), traded by ``ema_cross(10, 30)``, long only, exits off,
every cross a market order of 600 USDT, which gives about 3,700 fills per 100,000 ticks. The
one-pair figures, with their targets as multiples of nautilus_trader on the same CSV, are
``bench.peer``'s.

The tape is run (a) through the actors (``TradingSystem``, speed max, finite source; timed
from ``start()`` until every tick has been processed and the order path has drained) and (b)
through the synchronous core (``SyncRuntime.run``), twice: on ticks built in memory before the
clock starts and on ticks built while it runs (the source's cost included). All record every
fill in SQLite (WAL); the benchmark counts the rows in the ``fills`` table afterwards and
compares them with the status, and with the reference loop's fill count (all must agree). The
time to build the ticks alone (``source_rate``) and the bare arithmetic loop (the floor) are
timed on the same data. Peak RSS per run comes from VmHWM after resetting it
(``/proc/self/clear_refs``). ``run_actors`` and ``run_sync`` are the runners the peer
benchmark uses too.

The recorded files in ``../shared/data`` run the same way, one pair per file, with a stake of
0.01 units (two lots where a lot is coarser) at the file's first price and no minimum
notional (skipped when the folder is absent). For each file the actors' fill count must equal
the threadless core's: a check, so ``make bench`` fails where they part.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import (
    Row,
    bench_config,
    check,
    commits_in_db,
    fills_in_db,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
    settle_memory,
    temp_db,
    wait_until,
)
from bench.data import (
    REPLAY_PAIRS,
    ReplaySource,
    bare_ema_loop,
    first_price,
    recorded_files,
    source_rate,
)
from supervision import TradingSystem
from supervision.config import SystemConfig
from supervision.runtime import SyncRuntime, lot_size

EMA = "ema_cross"


def run_actors(config: SystemConfig, source: Any, expected: int | None) -> dict[str, Any]:
    """Through the actors at full speed; ``expected`` ticks (None: until the feed ends)."""
    settle_memory()
    base_rss = rss_mb()
    reset_peak_rss()
    system = TradingSystem(config, source=source)
    t0 = time.perf_counter()
    system.start()
    system.wait(3600)
    handles = list(system.router.pairs.values())
    if expected is not None:
        wait_until(lambda: sum(h.ticks for h in handles) >= expected, 600, 0.001)
    system.drain(30)
    elapsed = time.perf_counter() - t0
    final = system.stop()
    ticks = sum(p.ticks for p in final.pairs)
    return {
        "ticks": ticks, "seconds": elapsed, "ticks_per_s": ticks / elapsed,
        "fills": final.fills, "orders": final.orders, "fills_in_db": fills_in_db(
            config.state_db), "state": final.state, "error": final.error,
        "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base_rss,
        "shed": sum(p.ticks_shed for p in final.pairs),
        "dropped": sum(p.ticks_dropped for p in final.pairs),
        "commits": commits_in_db(config.state_db),
    }


def run_sync(config: SystemConfig, source: Any) -> dict[str, Any]:
    settle_memory()
    base_rss = rss_mb()
    reset_peak_rss()
    t0 = time.perf_counter()
    runtime = SyncRuntime(config, source)
    status = runtime.run()
    elapsed = time.perf_counter() - t0
    runtime.close()
    return {
        "ticks": status.ticks_accepted, "seconds": elapsed,
        "ticks_per_s": status.ticks_accepted / elapsed, "fills": status.fills,
        "orders": status.orders, "fills_in_db": fills_in_db(config.state_db),
        "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base_rss,
    }


def _rows(case: str, kind: str, r: dict[str, Any], target: float | None) -> list[Row]:
    per_100k = r["fills"] / r["ticks"] * 1e5 if r["ticks"] else 0.0
    recorded = "all fills in SQLite" if r["fills_in_db"] == r["fills"] else \
        f"ONLY {r['fills_in_db']} of {r['fills']} fills in SQLite"
    row = Row("replay", case, f"{kind} ticks/s", r["ticks_per_s"], "ticks/s",
              note=f"{r['ticks']:,} ticks in {r['seconds']:.1f} s, {per_100k:,.0f} fills/100k, "
                   f"{recorded}, peak RSS {r['peak_rss_mb']:.0f} MB")
    if target is not None:
        row.target = f">= {target:,.0f}"
        row.ok = check(r["ticks_per_s"], target, True) and r["fills_in_db"] == r["fills"]
    return [row]


def bench_replay(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    ten_n = 20_000 if quick else 100_000
    rows: list[Row] = []
    details: dict[str, Any] = {}
    for label, pairs, per_pair, target_actor, target_sync in (
        ("10 pairs", REPLAY_PAIRS, ten_n, None, None),
    ):
        source = ReplaySource(pairs, per_pair)
        total = len(source)
        case = f"{label}, {total:,} GBM ticks"
        floor_fills = 0
        floor_s = 0.0
        for i in range(len(pairs)):
            fills, seconds = bare_ema_loop(source.paths[i][0])
            floor_fills += fills
            floor_s += seconds
        build_rate = source_rate(source)
        with temp_db() as db:
            actors = run_actors(bench_config(pairs, db, strategy=EMA), source, total)
        with temp_db() as db:
            sync = run_sync(bench_config(pairs, db, strategy=EMA), source)
        in_memory = list(source)  # before the clock starts, as the published run loads data
        with temp_db() as db:
            preloaded = run_sync(bench_config(pairs, db, strategy=EMA), in_memory)
        del in_memory
        rows += _rows(case, "actors", actors, target_actor)
        rows += _rows(case, "sync core, ticks in memory", preloaded, target_sync)
        rows += _rows(case, "sync core, ticks built on the fly", sync, None)
        same = actors["fills"] == sync["fills"] == preloaded["fills"] == floor_fills
        rows.append(Row("replay", case, "bare loop ticks/s (floor)", total / floor_s, "ticks/s",
                        note=f"{floor_fills:,} fills; actors/sync/bare fills "
                             f"{'agree' if same else 'DIFFER'}"))
        rows.append(Row("replay", case, "tick construction alone", build_rate, "ticks/s",
                        note="the source's own cost, included in the actors' and the "
                             "on-the-fly runs"))
        details[label] = {"ticks": total, "actors": actors, "sync": sync,
                          "sync_in_memory": preloaded,
                          "bare_loop": {"fills": floor_fills, "seconds": floor_s,
                                        "ticks_per_s": total / floor_s},
                          "source_ticks_per_s": build_rate, "fills_agree": same}
    recorded, rec_details = _recorded(quick)
    rows += recorded
    details["recorded"] = rec_details
    return rows, details


def _recorded(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    files = recorded_files(quick)
    if not files:
        return [Row("replay", "recorded files", "skipped", float("nan"), "",
                    note="../shared/data not present")], {"skipped": True}
    rows: list[Row] = []
    details: dict[str, Any] = {}
    for path, pair in files:
        # 0.01 units, or two lots where the pair's lot is coarser (XRP trades in 0.1)
        stake = max(0.01, 2 * lot_size(pair)) * first_price(path)
        extra = {"replay": {pair: str(path)}}
        out: dict[str, Any] = {}
        for kind, runner in (("actors", run_actors), ("sync core", run_sync)):
            with temp_db() as db:
                config = bench_config([pair], db, strategy=EMA, stake=stake, min_notional=0.0,
                                      **extra)
                out[kind] = (runner(config, None, None) if runner is run_actors
                             else runner(config, None))
            rows += _rows(f"{Path(path).name} ({pair})", kind, out[kind], None)
        # The actors must decide as the threadless core does, whatever the data's spacing
        # (hourly candles once made the actors' pair run ahead of its own orders).
        fills = (out["actors"]["fills"], out["sync core"]["fills"])
        rows.append(Row("replay", f"{Path(path).name} ({pair})", "actors/threadless fills",
                        float(fills[0]), "fills", target=f"= {fills[1]:,} (threadless)",
                        ok=fills[0] == fills[1]))
        details[path.name] = out
    return rows, details
