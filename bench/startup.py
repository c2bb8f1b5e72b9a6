"""Start-up of 200 pairs, and the time from a pair's crash to its next processed tick.

Start-up: the production default feed, the embedded simulator at speed 1 with a tick every
50 ms per pair (20 ticks/s), ``ema_cross``, a fresh SQLite state file. The clock starts
before ``TradingSystem.start()`` (which opens the database, generates each pair's 300
warm-up ticks, starts every actor, warms every strategy and waits for each pair's book) and
stops when every ``PairHandle`` has counted its first processed tick (polled every 1 ms); then
``stop()`` is timed (``bench.fleet`` checks it for 1,000 pairs).
The simulator's first tick for a pair is due 25-75 ms after the feed starts, which is part
of the figure.

Restart: 20 pairs on the paced GBM feed (20 ticks/s each), restart ``backoff_initial_s`` =
0.01 s. One pair at a time is told (``bench.probe.CRASH``) to raise from its strategy on its
next tick; the probe notes the time of the raise and the time the pair's next generation's
strategy gets its first live tick. A subscriber notes when the supervisor publishes
``PairRestarted`` (new actor attached). Each crash hits a different pair, so every restart is
a first failure with the initial backoff, which is subtracted. The split shows the
supervisor's own work (crash -> restarted, minus backoff) and the wait for the feed's next
tick of that pair (at most one 50 ms interval).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from actors.messages import PairRestarted
from bench.common import Row, bench_config, check, temp_db, wait_until
from bench.data import LiveSource, synthetic_pairs
from bench.probe import CRASH, PROBE
from supervision import TradingSystem

BACKOFF_S = 0.01


def run_startup(n_pairs: int) -> dict[str, Any]:
    pairs = synthetic_pairs(n_pairs)
    with temp_db() as db:
        config = bench_config(pairs, db, speed=1, strategy="ema_cross", tick_interval_ms=50.0)
        system = TradingSystem(config)
        t0 = time.perf_counter()
        system.start()
        started = time.perf_counter() - t0
        handles = list(system.router.pairs.values())
        ok = wait_until(lambda: all(h.ticks > 0 for h in handles), 30, 0.001)
        first = time.perf_counter() - t0
        t1 = time.perf_counter()
        final = system.stop()
        stopped = time.perf_counter() - t1
    return {"pairs": n_pairs, "start_returned_s": started, "all_first_tick_s": first,
            "all_pairs_ticked": ok, "stop_s": stopped, "final_state": final.state}


def run_restarts(n_pairs: int, crashes: int) -> dict[str, Any]:
    pairs = synthetic_pairs(n_pairs)
    stop = threading.Event()
    restarted_ns: dict[str, int] = {}

    def on_event(event: object) -> None:
        if isinstance(event, PairRestarted):
            restarted_ns[event.pair] = time.perf_counter_ns()

    PROBE.reset(pairs)
    results = []
    with temp_db() as db:
        config = bench_config(pairs, db, speed=1,
                              restart={"backoff_initial_s": BACKOFF_S, "max_restarts": 100})
        system = TradingSystem(config, source=LiveSource(pairs, None, stop))
        system.subscribe(on_event)
        system.start()
        handles = system.router.pairs
        wait_until(lambda: all(h.ticks > 40 for h in handles.values()), 30)
        for i in range(crashes):
            pair = pairs[(i * 7 + 3) % n_pairs]
            CRASH.arm(pair)
            if not CRASH.wait_recovered(pair, 10):
                results.append({"pair": pair, "recovered": False})
                continue
            crashed, back = CRASH.crashed_ns[pair], CRASH.recovered_ns[pair]
            restarted = restarted_ns.get(pair, back)
            results.append({
                "pair": pair, "recovered": True,
                "crash_to_next_tick_ms": (back - crashed) / 1e6,
                "crash_to_restarted_ms": (restarted - crashed) / 1e6,
                "restarted_to_tick_recv_ms": (CRASH.recovered_recv_ns[pair] - restarted) / 1e6,
                "generation": handles[pair].generation,
            })
            time.sleep(0.1)
        stop.set()
        final = system.stop()
    return {"pairs": n_pairs, "backoff_s": BACKOFF_S, "crashes": results,
            "restarts_total": sum(p.restarts for p in final.pairs)}


def bench_startup(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    n = 200
    up = run_startup(n)
    rows = [
        Row("startup", f"{n} pairs (simulator, 20 t/s)", "start -> every pair's first tick",
            up["all_first_tick_s"], "s", target="<= 3 s",
            ok=up["all_pairs_ticked"] and check(up["all_first_tick_s"], 3.0, False),
            note=f"start() returned after {up['start_returned_s']:.2f} s"),
    ]
    re = run_restarts(20, 4 if quick else 10)
    done = [c for c in re["crashes"] if c["recovered"]]
    worst = max((c["crash_to_next_tick_ms"] for c in done), default=float("nan"))
    median = sorted(c["crash_to_next_tick_ms"] for c in done)[len(done) // 2] if done else \
        float("nan")
    sup = max((c["crash_to_restarted_ms"] for c in done), default=float("nan"))
    wait = max((c["restarted_to_tick_recv_ms"] for c in done), default=float("nan"))
    backoff_ms = BACKOFF_S * 1000
    all_back = len(done) == len(re["crashes"])
    rows.append(Row(
        "restart", "20 pairs @20 t/s, crash in strategy", "crash -> next tick processed - backoff",
        worst - backoff_ms, "ms", target="<= 250 ms",
        ok=all_back and check(worst - backoff_ms, 250.0, False),
        note=f"worst of {len(done)}/{len(re['crashes'])} crashes (median "
             f"{median - backoff_ms:.1f} ms); supervisor part <= {sup - backoff_ms:.1f} ms, "
             f"wait for next tick <= {wait:.1f} ms; backoff {backoff_ms:.0f} ms subtracted"))
    return rows, {"startup": up, "restart": re}
