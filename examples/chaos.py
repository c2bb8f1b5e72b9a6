"""Chaos on four pairs: a crash loop, a hang and a hot swap, while the calm pair trades on.

Runs BTC/USDT, ETH/USDT, SOL/USDT and BNB/USDT on the embedded simulator (``ema_cross``,
speed 20 by default). After a calm phase (a quarter of the run, at least a second):

- ETH/USDT is swapped to ``chaos_strategies:Crasher``, which raises every 20th tick. The
  supervisor restarts it with backoff until the restart limit (3 here), then marks it
  ``failed``; the others go on. Rollback is off in this config (``rollback_after = 0``),
  else the supervisor would return ETH to ``ema_cross`` after a few crashes instead.
- SOL/USDT is swapped to ``chaos_strategies:Hanger``, which blocks inside its first live
  tick. The watchdog (heartbeat every 0.2 s, 1 s timeout) reports it hung and generation 1
  takes over. The blocked thread is released at the end; the generation fence drops
  whatever it sends then.
- BNB/USDT is swapped to ``rsi_reversion``: a swap that simply works.
- BTC/USDT is left alone.

Events print as they come, the status table every two seconds, then the final summary and
two measurements: how long each restarted pair took from its ``PairRestarted`` event to its
next processed tick (its actor is up, has its book, and trades again), and the calm pairs'
tick latency (feed to processed, ``PairStatus.last_latency_ms`` sampled every 50 ms) in the
calm phase against the chaos phase::

    python examples/chaos.py --seconds 8

The strategy registry imports strategies by module path, so the misbehaving strategies live
in ``examples/chaos_strategies.py``. This script puts its own folder first on ``sys.path``
(below) so ``chaos_strategies:Crasher`` imports however the script is started.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, suppress
from pathlib import Path

from actors.messages import (
    PairRestarted,
    StrategySpec,
)
from supervision import (
    ConfigError,
    SystemStatus,
    TradingSystem,
    build_config,
    describe_event,
    format_table,
)

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    # The registry imports "chaos_strategies:..." by module path; see the docstring.
    sys.path.insert(0, HERE)

PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT")
CRASHING, HANGING, SWAPPED = "ETH/USDT", "SOL/USDT", "BNB/USDT"
CALM = ("BTC/USDT", "BNB/USDT")
"""Pairs that never crash or hang (BNB's swap is a clean one)."""
CHAOS = {
    CRASHING: StrategySpec.of("chaos_strategies:Crasher", every=20),
    HANGING: StrategySpec.of("chaos_strategies:Hanger"),
    SWAPPED: StrategySpec.of("rsi_reversion"),
}
RESTART = {"max_restarts": 3, "window_s": 60, "backoff_initial_s": 0.05, "backoff_max_s": 1.0,
           "heartbeat_interval_s": 0.2, "heartbeat_timeout_s": 1.0, "rollback_after": 0}
TABLE_EVERY_S = 2.0
SAMPLE_EVERY_S = 0.05
PROBE_EVERY_S = 0.001


class RecoveryProbe:
    """Time from each ``PairRestarted`` to the restarted pair's next processed tick.

    The event callback runs on the supervisor's thread right after the new actor started; it
    notes the time and the pair's tick counter. A thread of its own then watches that counter
    (the pair's handle, the same figure ``status()`` reports, read without asking any actor,
    so the probe costs the actors nothing) until it moves under the new generation.
    """

    def __init__(self, system: TradingSystem, lines: queue.Queue[str]) -> None:
        self.system = system
        self.lines = lines
        self.pending: list[tuple[str, int, int, float]] = []
        self.recoveries: list[tuple[str, int, float]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recovery-probe", daemon=True)

    def on_event(self, event: object) -> None:
        if isinstance(event, PairRestarted):
            handle = self.system.router.pairs.get(event.pair)
            if handle is not None:
                with self._lock:
                    self.pending.append((event.pair, event.generation, handle.ticks,
                                         time.perf_counter()))
                self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                pending = list(self.pending)
            if not pending:
                self._wake.wait(0.1)
                self._wake.clear()
                continue
            for item in pending:
                pair, generation, ticks, since = item
                handle = self.system.router.pairs.get(pair)
                if handle is None or handle.generation != generation:
                    self._drop(item)  # removed, or replaced again before it traded
                elif handle.ticks > ticks:
                    took = time.perf_counter() - since
                    self._drop(item)
                    self.recoveries.append((pair, generation, took))
                    self.lines.put(f"trading  {pair} generation {generation} again "
                                   f"{took * 1000:.1f} ms after its restart")
            self._stop.wait(PROBE_EVERY_S)

    def _drop(self, item: tuple[str, int, int, float]) -> None:
        with self._lock:
            self.pending.remove(item)


def run(system: TradingSystem, seconds: float, lines: queue.Queue[str]
        ) -> dict[str, list[float]]:
    """Print events and tables, start the chaos after the calm phase, sample latencies."""
    started = time.monotonic()
    deadline = started + seconds
    chaos_at: float | None = started + max(1.0, seconds / 4)
    next_table = started + TABLE_EVERY_S
    next_sample = started
    latency: dict[str, list[float]] = {"calm": [], "chaos": []}
    while not system.finished:
        now = time.monotonic()
        if now >= deadline:
            break
        if chaos_at is not None and now >= chaos_at:
            print(f"-- chaos at {now - started:.1f} s: {CRASHING} crashes, {HANGING} hangs, "
                  f"{SWAPPED} is swapped", flush=True)
            for pair, spec in CHAOS.items():
                system.swap_strategy(pair, spec)
            chaos_at = None
        if now >= next_sample:
            status = system.status()
            phase = "calm" if chaos_at is not None else "chaos"
            latency[phase] += [status.pair(p).last_latency_ms for p in CALM
                               if status.pair(p).ticks]
            next_sample += SAMPLE_EVERY_S
        if now >= next_table:
            print(format_table(system.status()), "", sep="\n", flush=True)
            next_table += TABLE_EVERY_S
        wake = min(deadline, next_table, next_sample, chaos_at or deadline)
        with suppress(queue.Empty):
            print(lines.get(timeout=max(0.0, wake - time.monotonic())), flush=True)
    return latency


def spread(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (f"median {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms, "
            f"max {ordered[-1]:.2f} ms (n={len(ordered)})")


def summary(final: SystemStatus, lines: queue.Queue[str], probe: RecoveryProbe,
            latency: dict[str, list[float]]) -> None:
    while not lines.empty():
        print(lines.get_nowait())
    print(f"final status: {final.state}" + (f" ({final.error})" if final.error else ""))
    print(format_table(final))
    restarts = sum(p.restarts for p in final.pairs)
    failed = [p.pair for p in final.pairs if p.state == "failed"]
    print(f"restarts {restarts}, failed {', '.join(failed) or 'none'}, round trips "
          f"{sum(p.trades for p in final.pairs)}, realized PnL {final.realized_pnl:+,.2f} "
          f"{final.quote}, equity {final.equity:,.2f} {final.quote}")
    took = [t * 1000 for _, _, t in probe.recoveries]
    if took:
        print(f"crash -> trading again (PairRestarted to the pair's next processed tick): "
              f"{len(took)} restarts, median {statistics.median(took):.1f} ms, "
              f"max {max(took):.1f} ms")
    else:
        print("crash -> trading again: no restarted pair traded again")
    calm = ", ".join(CALM)
    print(f"calm pairs' tick latency ({calm}): calm phase {spread(latency['calm'])}; "
          f"chaos phase {spread(latency['chaos'])}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the example; returns the exit code (0, 1 if the system failed, 2 for bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0,
                        help="wall-clock seconds to run (default 8)")
    parser.add_argument("--speed", default="20",
                        help="simulated seconds per wall second, or 'max' (default 20)")
    parser.add_argument("--state-db", help="state database: an SQLite file (default: in a temp "
                                           "dir) or a postgresql:// URL")
    args = parser.parse_args(argv)
    import chaos_strategies  # from HERE, put on sys.path above

    with ExitStack() as stack:
        state_db = args.state_db or str(
            Path(stack.enter_context(tempfile.TemporaryDirectory())) / "state.sqlite")
        try:
            if not args.seconds > 0:
                raise ConfigError(f"--seconds: {args.seconds!r} must be > 0")
            config = build_config({}, {"pairs": ",".join(PAIRS), "speed": args.speed,
                                       "state_db": state_db, "restart": RESTART})
        except ConfigError as exc:
            print(f"chaos: error: {exc}", file=sys.stderr)
            return 2

        lines: queue.Queue[str] = queue.Queue()
        system = TradingSystem(config)
        probe = RecoveryProbe(system, lines)

        def on_event(event: object) -> None:
            probe.on_event(event)
            line = describe_event(event)
            if line is not None:
                lines.put(line)

        system.subscribe(on_event)
        probe.start()
        try:
            with system:
                print(f"running {', '.join(PAIRS)} at speed {args.speed} for "
                      f"{args.seconds:g} s, state in {state_db}", flush=True)
                latency = run(system, args.seconds, lines)
                print(f"-- releasing the hung {HANGING} generation 0 thread; the fence drops "
                      "whatever it sends now", flush=True)
                chaos_strategies.RELEASE.set()
                final = system.stop()
        finally:
            # Actor threads are not daemons: a thread left blocked would keep the process up.
            chaos_strategies.RELEASE.set()
            probe.stop()
        summary(final, lines, probe, latency)
    return 1 if final.state == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
