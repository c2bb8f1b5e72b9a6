"""Profiles behind the misses: ``python -m bench.profile TARGET`` (see the list below).

cProfile per thread: a ``threading.setprofile`` hook starts one ``cProfile.Profile`` in every
thread created after it is installed (the feed thread, each pykka actor, timers), the main
thread gets its own, and the statistics of all of them are merged and printed by internal
time, with the time per thread name. Profiling slows Python code about twofold and unevenly,
so read the shares, not the absolute rates.

- ``sync``: ``SyncRuntime`` on 1 pair x 200,000 GBM ticks (``bench.replay``'s data).
- ``actors``: the same tape through ``TradingSystem`` at speed max.
- ``live200``: 200 pairs at 20 ticks/s each for 10 s (``bench.live``'s set-up).
- ``fleet``: 1,000 pairs at 20 ticks/s each for 13 s (``bench.fleet``'s steady run).
- ``split``: no profiler: ``SyncRuntime`` on 1 pair x 100,000 prebuilt GBM ticks, with wall
  time per tick stage (market data, the pair's decision, the message cascades) and per
  consumer and message type, to show where the time goes at full speed.
- ``budget``: no profiler: ``SyncRuntime`` on 1 pair x 300,000 GBM ticks in memory, timed as
  the replay bench times it (``bench.replay.run_sync``), trading and with the same strategy
  never signalling; the difference is what the orders cost, set against what 300,000
  ticks/s would leave per order.
- ``instructions``: the same two runs (100,000 ticks each; ``--ticks``), each in a process of
  its own under ``valgrind --tool=callgrind``, counting instructions instead of time: the
  count does not move with the load on a shared machine, so a change to the order path can be
  measured before and after on a busy one. Prints instructions per order and per tick without
  orders (the interpreter's start and the data are the same in both runs and cancel). Needs
  valgrind (``apt-get install valgrind``); about a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench.common import bench_config, temp_db
from bench.data import REPLAY_PAIRS, ReplaySource


class ThreadProfiles:
    def __init__(self) -> None:
        self.profiles: list[tuple[str, cProfile.Profile]] = []
        self._lock = threading.Lock()

    def _boot(self, frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile()
        with self._lock:
            self.profiles.append((threading.current_thread().name, profile))
        profile.enable()

    def __enter__(self) -> ThreadProfiles:
        threading.setprofile(self._boot)
        main = cProfile.Profile()
        self.profiles.append(("main", main))
        main.enable()
        return self

    def __exit__(self, *exc: object) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]
        self.profiles[0][1].disable()

    def report(self, top: int) -> str:
        out = io.StringIO()
        by_name: dict[str, float] = {}
        merged: pstats.Stats | None = None
        for name, profile in self.profiles:
            try:
                stats = pstats.Stats(profile, stream=out)
            except TypeError:  # a thread that never ran Python code under the profiler
                continue
            kind = name.split("-")[0] if name.startswith(("Thread", "Dummy")) else name
            kind = "pair actors" if "OrchestratorActor" in name else kind
            by_name[kind] = by_name.get(kind, 0.0) + stats.total_tt  # type: ignore[attr-defined]
            if merged is None:
                merged = stats
            else:
                merged.add(stats)
        out.write("profiled time by thread: " + ", ".join(
            f"{k} {v:.2f} s" for k, v in sorted(by_name.items(), key=lambda kv: -kv[1])) + "\n")
        if merged is not None:
            merged.sort_stats("tottime").print_stats(top)
        return out.getvalue()


def _sync() -> None:
    from supervision.runtime import SyncRuntime

    source = list(ReplaySource(REPLAY_PAIRS[:1], 200_000))
    with temp_db() as db:
        SyncRuntime(bench_config(REPLAY_PAIRS[:1], db, strategy="ema_cross"), source).run()


def _actors() -> None:
    from bench.replay import run_actors

    source = list(ReplaySource(REPLAY_PAIRS[:1], 200_000))
    with temp_db() as db:
        run_actors(bench_config(REPLAY_PAIRS[:1], db, strategy="ema_cross"), source,
                   len(source))


def _live200() -> None:
    from bench.live import run_live

    run_live(200, 10.0)


def _fleet() -> None:
    from bench.data import LIVE_INTERVAL_MS
    from bench.fleet import PAIRS, WARM_S, run_phases

    run_phases(PAIRS, [(WARM_S + 10.0, LIVE_INTERVAL_MS)])


def _split() -> None:
    from collections import Counter, defaultdict

    from supervision.runtime import SyncRuntime

    source = list(ReplaySource(REPLAY_PAIRS[:1], 100_000))
    clock = time.perf_counter
    spent: defaultdict[tuple[str, str], float] = defaultdict(float)
    calls: Counter[tuple[str, str]] = Counter()

    def timed(name: str, handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def run(message: Any) -> Any:
            t0 = clock()
            out = handler(message)
            key = (name, type(message).__name__)
            spent[key] += clock() - t0
            calls[key] += 1
            return out
        return run

    with temp_db() as db:
        runtime = SyncRuntime(bench_config(REPLAY_PAIRS[:1], db, strategy="ema_cross"), source)
        handlers = runtime._handlers
        for name in list(handlers):
            handlers[name] = timed("pair" if name in runtime.pairs else name, handlers[name])
        pair = runtime.pairs[REPLAY_PAIRS[0]]
        accept, decide, cascade = runtime.market_data.accept, pair.process_market_tick, \
            runtime._run
        commit, every = runtime.state.commit, runtime.commit_ticks
        stages = {"market data": 0.0, "decision": 0.0, "cascades": 0.0, "commits": 0.0}
        t_start = clock()
        for count, tick in enumerate(source, start=1):
            if count % every == 0:
                t0 = clock()
                commit()
                stages["commits"] += clock() - t0
            t0 = clock()
            accept(tick)
            t1 = clock()
            out = decide(tick)
            t2 = clock()
            stages["market data"] += t1 - t0
            stages["decision"] += t2 - t1
            if out:
                cascade(out)
                stages["cascades"] += clock() - t2
        t0 = clock()
        runtime.state.commit()
        stages["commits"] += clock() - t0
        total = clock() - t_start
        runtime.close()
    n = len(source)
    print(f"{n:,} ticks in {total:.2f} s ({n / total:,.0f} ticks/s, timers included)")
    for stage, seconds in stages.items():
        print(f"  {stage:<12} {seconds / n * 1e6:6.2f} us/tick")
    print("per consumer and message (inside the cascades):")
    for (name, kind), seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        count = calls[(name, kind)]
        print(f"  {name:>10} {kind:<18} {count:>7,} x {seconds / count * 1e6:7.1f} us"
              f" = {seconds / n * 1e6:5.2f} us/tick")


def _budget() -> None:
    from bench.replay import run_sync

    source = list(ReplaySource(REPLAY_PAIRS[:1], 300_000))

    def best_us_per_tick(runs: int) -> tuple[float, int]:
        best, fills = float("inf"), 0
        for _ in range(runs):
            with temp_db() as db:
                run = run_sync(bench_config(REPLAY_PAIRS[:1], db, strategy="ema_cross"), source)
            best, fills = min(best, 1e6 / run["ticks_per_s"]), run["fills"]
        return best, fills

    trading, fills = best_us_per_tick(3)
    with never_signal():
        idle, _ = best_us_per_tick(3)
    n = len(source)
    per_order = (trading - idle) * n / fills
    budget = (1e6 / 300_000 - idle) * n / fills
    print(f"{n:,} ticks in memory, best of 3 runs each")
    print(f"  trading: {trading:.2f} us/tick ({1e6 / trading:,.0f} ticks/s), {fills:,} orders, "
          f"each filled once")
    print(f"  the same strategy never signalling: {idle:.2f} us/tick ({1e6 / idle:,.0f} ticks/s)")
    print(f"  so one order costs {per_order:.0f} us (proposal, risk, paper fill, ledger, SQLite "
          f"row, the answers)")
    print(f"  300,000 ticks/s at this rate of orders leaves {budget:.0f} us per order")


@contextlib.contextmanager
def never_signal() -> Iterator[None]:
    """``ema_cross`` does its arithmetic and never signals, while this lasts."""
    from actors.messages import Signal
    from strategies.ema_cross import EmaCross

    crossing = EmaCross.on_price

    def never_crosses(self: EmaCross, price: float) -> Signal:
        crossing(self, price)
        return Signal.HOLD

    EmaCross.on_price = never_crosses  # type: ignore[method-assign]
    try:
        yield
    finally:
        EmaCross.on_price = crossing  # type: ignore[method-assign]


def run_orders(ticks: int, idle: bool) -> int:
    """One threadless run on ``ticks`` GBM ticks built before it; returns the orders made."""
    from supervision.runtime import SyncRuntime

    source = list(ReplaySource(REPLAY_PAIRS[:1], ticks))
    with temp_db() as db, never_signal() if idle else contextlib.nullcontext():
        runtime = SyncRuntime(bench_config(REPLAY_PAIRS[:1], db, strategy="ema_cross"), source)
        status = runtime.run()
        runtime.close()
    return status.orders


def _callgrind(ticks: int, idle: bool) -> tuple[int, int]:
    """(instructions, orders) of ``run_orders`` in a process of its own under callgrind."""
    import os
    import re
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tc-ir-") as folder:
        out = os.path.join(folder, "callgrind.out")
        code = (f"from bench.profile import run_orders; "
                f"print('orders', run_orders({ticks}, {idle}))")
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, "-c", code],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        orders = int(re.search(r"orders (\d+)", done.stdout).group(1))  # type: ignore[union-attr]
        ir = int(re.search(r"Collected : (\d+)", done.stderr).group(1))  # type: ignore[union-attr]
    return ir, orders


def instructions(ticks: int) -> dict[str, float]:
    """Instructions per order and per tick without orders, counted by callgrind."""
    trading, orders = _callgrind(ticks, idle=False)
    idle, _ = _callgrind(ticks, idle=True)
    return {"ticks": ticks, "orders": orders, "ir_trading": trading, "ir_idle": idle,
            "ir_per_order": (trading - idle) / orders, "ir_per_idle_tick": idle / ticks}


def _instructions(ticks: int) -> None:
    r = instructions(ticks)
    print(f"{ticks:,} ticks in memory, {r['orders']:,} orders; instructions (callgrind): "
          f"trading {r['ir_trading']:,}, never signalling {r['ir_idle']:,}")
    print(f"  one order: {r['ir_per_order']:,.0f} instructions")
    print(f"  one tick without orders, with the interpreter's start and the data: "
          f"{r['ir_per_idle_tick']:,.0f} instructions")


TARGETS: dict[str, Callable[[], None]] = {"sync": _sync, "actors": _actors, "live200": _live200,
                                          "fleet": _fleet, "split": _split, "budget": _budget}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", allow_abbrev=False)
    p.add_argument("target", choices=sorted([*TARGETS, "instructions"]))
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--ticks", type=int, default=100_000, help="instructions: ticks per run")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    if args.target == "instructions":
        _instructions(args.ticks)
        return 0
    if args.target in ("split", "budget"):
        TARGETS[args.target]()
        return 0
    with ThreadProfiles() as profiles:
        TARGETS[args.target]()
    print(f"{args.target}: {time.perf_counter() - t0:.1f} s wall under the profiler")
    print(profiles.report(args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
