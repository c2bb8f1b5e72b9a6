"""Cluster overhead: a proposal's round trip head <-> shard, 1,000 pairs starting in 4
shards, and throughput with 1, 2 and 4 shards for a strategy that burns 5 ms per tick.

Everything runs in a network namespace of its own with loopback only
(``supervision.cluster.loopback``; run as root): ``bench_cluster`` re-runs this module there
(``python -m bench.cluster --inner``), which starts a local Ray (``--cluster auto``), and
reads the figures it prints as JSON.

- Round trip: one pair replays recorded-format trades at ``--speed max`` with
  ``RoundTrip``, a strategy that signals on every tick (BUY, then SELL), so every tick is a
  proposal. The orchestrator holds the pair's next tick until its proposal is answered
  (risk, execution and state on the head; the fill back in the pair's book), so the time
  from one signal to the next ``on_tick`` call is the round trip plus one tick's work. The
  strategy keeps these times and writes them to a file when it is closed. The same run in
  one process gives the baseline; the overhead is the difference.
- Start-up: 1,000 synthetic pairs in 4 shards on the simulator at speed 1; the clock runs
  from ``TradingSystem.start()`` (Ray already joined, which is timed apart) until every pair
  has processed a tick.
- Scaling: 8 pairs replay 600 trades each at ``--speed max`` with ``Burn``, which spins
  ``burn_ms`` of CPU (the thread's own) in pure Python per tick and never trades; ticks
  processed per second from the feeds' start, with 1, 2 and 4 shards (``cpus_per_shard``
  0.5, so Ray admits them on two cores). One shard is one process, so one GIL: at most
  1,000 / 5 = 200 ticks/s. More shards are more processes; they scale until the cores are
  used up (two here, shared with the head).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs

from actors.market import MarketSimulator
from actors.messages import MarketTick, Signal
from bench.common import Row, check, percentile
from strategies.base import Strategy, float_between

ROOT = Path(__file__).resolve().parents[1]
START_MS = 1_700_000_000_000


@attrs.frozen(kw_only=True)
class RoundTripParams:
    out: str = ""
    timeframe_s: float = 0.0


class RoundTrip(Strategy):
    """Signals on every tick, alternating BUY and SELL; records signal -> next tick."""

    name = "round_trip"
    Params = RoundTripParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._buy = True
        self._signalled_ns = 0
        self.samples: list[int] = []

    @property
    def warmup(self) -> int:
        return 1

    def on_price(self, price: float) -> Signal:
        now = time.perf_counter_ns()
        if self._signalled_ns:
            self.samples.append(now - self._signalled_ns)
        self._signalled_ns = time.perf_counter_ns()
        signal = Signal.BUY if self._buy else Signal.SELL
        self._buy = not self._buy
        return signal

    def warm_up(self, ticks: Any) -> None:
        """No history: the round trips start with the live ticks."""

    def close(self) -> None:
        if self.params.out and self.samples:
            with open(self.params.out, "a", encoding="utf-8") as fh:
                fh.write("\n".join(str(s) for s in self.samples) + "\n")
            self.samples = []


@attrs.frozen(kw_only=True)
class BurnParams:
    burn_ms: float = attrs.field(default=5.0, validator=float_between(0, 1000))
    timeframe_s: float = 0.0


class Burn(Strategy):
    """Spins ``burn_ms`` of CPU in pure Python per tick (a heavy model, say); never trades."""

    name = "burn"
    Params = BurnParams

    @property
    def warmup(self) -> int:
        return 1

    def on_tick(self, tick: MarketTick) -> Signal:
        # CPU time of this thread, not wall time: two pairs spinning by the wall clock on one
        # GIL would each count the other's turn as their own.
        end = time.thread_time() + self.params.burn_ms / 1000.0
        while time.thread_time() < end:
            pass
        return Signal.HOLD

    def on_price(self, price: float) -> Signal:
        return Signal.HOLD

    def warm_up(self, ticks: Any) -> None:
        """Nothing to learn, and no time to burn on history."""


def write_trades(path: str, pair: str, ticks: int, seed: int = 7) -> None:
    stream = MarketSimulator([pair], seed, START_MS, 250.0).ticks()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("timestamp_ms,price,amount,side\n")
        for _ in range(ticks):
            t = next(stream)
            fh.write(f"{t.ts_ms},{t.price},{t.amount or 0.01},"
                     f"{t.side.value if t.side else 'buy'}\n")


def _config(folder: str, name: str, extra: dict[str, Any], cluster: dict[str, Any] | None
            ) -> Any:
    from supervision import build_config

    file_values: dict[str, Any] = {"risk": {"stake_amount": 100.0, "max_open_positions": 10_000,
                                            "max_pair_exposure": 1.0,
                                            "max_total_exposure": 1.0,
                                            "stop_loss_cooldown_s": 0.0},
                                   "exits": {"stop_loss": 0.0, "take_profit": 0.0,
                                             "trailing_stop": 0.0}}
    if cluster is not None:
        file_values["cluster"] = {"address": "auto", "cpus_per_shard": 0.5, **cluster}
    return build_config(file_values, {"state_db": os.path.join(folder, f"{name}.sqlite"),
                                      "initial_balance": 1e9, **extra})


def _replay(config: Any, expected: int, timeout: float) -> float:
    """Ticks processed per second, from the feeds' start (``start()`` returns) until
    ``expected`` ticks are processed (the pairs' figures reach the head twice a second, which
    bounds the resolution)."""
    from supervision import TradingSystem

    with TradingSystem(config) as system:
        t0 = time.perf_counter()
        handles = list(system.router.pairs.values())
        while sum(h.ticks for h in handles) < expected and time.perf_counter() - t0 < timeout:
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        ticks = sum(h.ticks for h in handles)
    return ticks / elapsed


def round_trip(folder: str, quick: bool) -> dict[str, Any]:
    data = os.path.join(folder, "rt.csv")
    n = 400 if quick else 2000
    write_trades(data, "BTC/USDT", n)
    out: dict[str, Any] = {}
    for mode, cluster in (("one_process", None), ("cluster", {"shards": 1})):
        samples = os.path.join(folder, f"rt-{mode}.txt")
        strategy = {"name": "bench.cluster:RoundTrip", "params": {"out": samples}}
        _replay(_config(folder, f"rt-{mode}", {"replay": (("BTC/USDT", data),), "speed": "max",
                                               "strategy": strategy}, cluster), n, 300)
        values = sorted(int(x) / 1e6 for x in Path(samples).read_text().split())
        values = values[len(values) // 10:] or values  # the first tenth warms up
        out[mode] = {"n": len(values), "p50_ms": percentile(values, 50),
                     "p99_ms": percentile(values, 99)}
    return out


def startup(pairs: int) -> dict[str, Any]:
    from supervision import TradingSystem

    names = ",".join(f"S{i:04d}/USDT" for i in range(pairs))
    with tempfile.TemporaryDirectory(prefix="tc-cluster-") as folder:
        config = _config(folder, "start", {"pairs": names, "speed": 1,
                                           "strategy": {"name": "ema_cross"}},
                         {"shards": 4})
        system = TradingSystem(config)
        t0 = time.perf_counter()
        system.start()
        started = time.perf_counter() - t0
        handles = list(system.router.pairs.values())
        while not all(h.ticks for h in handles) and time.perf_counter() - t0 < 120:
            time.sleep(0.05)
        first = time.perf_counter() - t0
        system.stop(30)
    return {"pairs": pairs, "start_returned_s": started, "all_first_tick_s": first}


def scaling(folder: str, quick: bool) -> dict[str, Any]:
    pairs = [f"B{i}/USDT" for i in range(8)]
    ticks = 150 if quick else 600
    files = []
    for pair in pairs:
        path = os.path.join(folder, f"{pair.replace('/', '')}.csv")
        write_trades(path, pair, ticks)
        files.append((pair, path))
    rates = {}
    for shards in (1, 2, 4):
        config = _config(folder, f"burn{shards}", {
            "replay": tuple(files), "speed": "max", "pair_workers": 2,
            "strategy": {"name": "bench.cluster:Burn", "params": {"burn_ms": 5.0}}},
            {"shards": shards})
        rates[str(shards)] = _replay(config, ticks * len(pairs), 600)
    return {"ticks_per_s": rates, "burn_ms": 5.0, "pairs": len(pairs)}


def inner(quick: bool) -> dict[str, Any]:
    """Runs inside the namespace: Ray is started once and shared by every run."""
    import ray

    t0 = time.perf_counter()
    ray.init(include_dashboard=False, logging_level="WARNING", namespace="trade-conductor")
    joined = time.perf_counter() - t0
    try:
        with tempfile.TemporaryDirectory(prefix="tc-cluster-") as folder:
            return {"ray_init_s": joined, "round_trip": round_trip(folder, quick),
                    "startup": startup(200 if quick else 1000),
                    "scaling": scaling(folder, quick)}
    finally:
        ray.shutdown()


def bench_cluster(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    """Run ``inner`` in a loopback-only namespace and turn its figures into rows."""
    command = ["unshare", "-n", sys.executable, "-m", "supervision.cluster.loopback",
               sys.executable, "-m", "bench.cluster", "--inner"] + (["--quick"] if quick else [])
    with tempfile.TemporaryDirectory(prefix="tcray-") as ray_tmp:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800,
                              env={**os.environ, "RAY_TMPDIR": ray_tmp}, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"bench.cluster --inner failed ({done.returncode}): "
                           f"{done.stderr[-2000:]}")
    figures = json.loads(lines[-1])
    rt, start, scale = figures["round_trip"], figures["startup"], figures["scaling"]
    p99 = rt["cluster"]["p99_ms"]
    rows = [
        Row("cluster", "proposal round trip, one process", "p50", rt["one_process"]["p50_ms"],
            "ms"),
        Row("cluster", "proposal round trip, one process", "p99", rt["one_process"]["p99_ms"],
            "ms"),
        Row("cluster", "proposal round trip, head <-> shard", "p50", rt["cluster"]["p50_ms"],
            "ms"),
        Row("cluster", "proposal round trip, head <-> shard", "p99", p99, "ms",
            target="<= 5 ms", ok=check(p99, 5.0, higher_is_better=False)),
        Row("cluster", f"{start['pairs']} pairs in 4 shards", "start until all ticked",
            start["all_first_tick_s"], "s",
            target="<= 15 s" if start["pairs"] >= 1000 else None,
            ok=check(start["all_first_tick_s"], 15.0, higher_is_better=False)
            if start["pairs"] >= 1000 else None),
    ]
    rows += [Row("cluster", f"5 ms/tick strategy, {n} shard(s)", "throughput", rate, "ticks/s")
             for n, rate in scale["ticks_per_s"].items()]
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split(
        "\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--inner", action="store_true", help="already in a loopback namespace")
    args = p.parse_args(argv)
    if args.inner:
        print(json.dumps(inner(args.quick)), flush=True)
        return 0
    rows, _ = bench_cluster(args.quick)
    for row in rows:
        print(f"{row.case}: {row.metric} {row.value:.3g} {row.unit}"
              + (f" (target {row.target}: {'PASS' if row.ok else 'MISS'})" if row.target
                 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
