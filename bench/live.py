"""Live-path latency (1, 10, 50, 200 pairs at 20 ticks/s each) and the noisy neighbour.

Runs the production actors (``TradingSystem``, state in SQLite/WAL) on a paced feed: speed 1,
every pair ticking every 50 ms of market time, pairs staggered evenly inside those 50 ms,
GBM prices, strategy ``ema_cross(10, 30)`` (probed, see ``bench.probe``). The first
``warm_s`` seconds (EMA warm-up, threads settling) are not counted.

Three measurements, all against ``tick.recv_ns``, the ``perf_counter_ns`` the market data
actor's feed thread stamps when a tick enters it (the product's own latency origin):

- tick -> decision: what each pair's handle records itself (``PairHandle.latency``, the
  samples behind the status table's p50/p99) when the pair's actor has decided on a tick and
  sent what it decided. Read once at the end, so nothing polls the system while it is
  measured (a poller of 200 handles every 5 ms took about 2 % of a core, holding the GIL);
  coverage (samples against ticks processed) is reported.
- tick -> strategy: the probed strategy records ``now - recv_ns`` on entry, for every tick.
- tick -> order acknowledged: a ``subscribe`` callback takes ``perf_counter_ns`` when the
  state actor publishes ``OrderUpdated(OPEN)`` (the paper exchange's acknowledgement, after
  risk, execution and the state actor's SQLite commit of the write-ahead ``NEW`` and of
  ``OPEN``) and matches the order's ``created_ms`` to the ``ts_ms`` of the tick on which the
  strategy signalled.

For comparison, 200 pairs run once more with a thread per pair (``pair_workers = 0``), the
design the pair pool replaced (informational).

Noisy neighbour: the same run with one pair's strategy spinning a pure-Python loop for 20 ms
on every tick; the other pairs' tick -> decision p99 is compared with a calm run. Twice: with
the noisy strategy on its pair's thread (informational: the GIL makes every pair wait), and
isolated in its own process (the target). For the isolated run the noisy pair is swapped,
during the unmeasured warm-up, to ``chaos_strategies:Burner`` in a process, which spins the
same number of loop iterations as the thread case. A control run puts the same CPU load
outside the system (a plain process spinning as long every 50 ms): on a machine without a
spare core that is the floor for the isolated case, which no design inside the system can
go below. Alongside, the cost of isolation itself: the ``on_tick`` round trip to an isolated
``ema_cross`` against the same call in process.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from actors.messages import MarketTick, OrderStatus, OrderUpdated, StrategySpec
from bench.common import (
    CpuMeter,
    Row,
    bench_config,
    check,
    summarize_ns,
    temp_db,
    wait_until,
)
from bench.data import LIVE_INTERVAL_MS, START_MS, LiveSource, synthetic_pairs
from bench.probe import BURN, PROBE
from strategies.isolated import ProcessStrategy, isolated
from strategies.registry import build_strategy
from supervision import TradingSystem

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BURNER = "chaos_strategies:Burner"
"""The isolated noisy strategy (``examples/chaos_strategies.py``): ``ema_cross`` plus a
pure-Python loop of ``loops`` iterations per live price, set through its spec, so that it
burns in a child process too (the thread case's ``BURN`` control lives in this process)."""


class DecisionSamples:
    """Tick -> decision latencies the pairs record after ``start`` (see the module docstring)."""

    def __init__(self, system: TradingSystem) -> None:
        self.system = system
        self.since_ns = 0
        self.ticks_before: dict[str, int] = {}

    def start(self) -> None:
        self.since_ns = time.perf_counter_ns()
        self.ticks_before = {p: h.ticks for p, h in self.system.router.pairs.items()}

    def values(self, exclude: Iterable[str] = ()) -> list[int]:
        skip = set(exclude)
        since = self.since_ns
        return [lat for p, h in self.system.router.pairs.items() if p not in skip
                for lat in h.latency.since(since)]

    @property
    def coverage(self) -> float:
        """Samples still held against ticks processed (below 1: a pair's ring overflowed)."""
        processed = sum(h.ticks - self.ticks_before.get(p, 0)
                        for p, h in self.system.router.pairs.items())
        return len(self.values()) / processed if processed else 0.0


class AckRecorder:
    """Subscriber: tick recv -> ``OrderUpdated(OPEN)`` published, matched by created_ms."""

    def __init__(self, from_ms: int) -> None:
        self.from_ms = from_ms
        self.samples: list[int] = []
        self.unmatched = 0

    def __call__(self, event: object) -> None:
        if type(event) is not OrderUpdated or event.order.status is not OrderStatus.OPEN:
            return
        now = time.perf_counter_ns()
        order = event.order
        if order.created_ms < self.from_ms:
            return
        recv = PROBE.signal_recv_ns.get((order.pair, order.created_ms))
        if recv is None:
            self.unmatched += 1
        else:
            self.samples.append(now - recv)


def run_live(n_pairs: int, seconds: float, warm_s: float = 2.0,
             burn: dict[str, float] | None = None,
             swap: dict[str, StrategySpec] | None = None,
             *, on_started: Callable[[TradingSystem], Any] | None = None,
             state_db: str | None = None, **config: Any) -> dict[str, Any]:
    """One paced run; returns the latency summaries and counters. ``swap`` gives pairs
    another strategy as soon as the system runs (during the unmeasured ``warm_s``);
    ``on_started`` is called with the started system (the API load bench starts its clients
    there); ``config`` adds top-level config keys; ``state_db`` replaces the fresh SQLite
    file."""
    pairs = synthetic_pairs(n_pairs)
    stop = threading.Event()
    from_ms = START_MS + int(warm_s * 1000)
    source = LiveSource(pairs, warm_s + seconds, stop)
    BURN.seconds = dict(burn or {})
    if burn and not BURN.loops_per_second:
        BURN.calibrate()
    PROBE.reset(pairs, measure_from_ms=from_ms)
    acks = AckRecorder(from_ms)
    with contextlib.ExitStack() as stack:
        db = state_db or stack.enter_context(temp_db())
        system = TradingSystem(bench_config(pairs, db, speed=1, **config), source=source)
        system.subscribe(acks)
        t0 = time.perf_counter()
        system.start()
        started = time.perf_counter() - t0
        if on_started is not None:
            on_started(system)
        swapped_s = _swap(system, swap or {})
        threading.Event().wait(max(0.0, warm_s - (time.perf_counter() - t0)))
        decisions = DecisionSamples(system)
        decisions.start()
        meter = CpuMeter()
        ended = system.wait(warm_s + seconds + 60)
        cpu = meter.cores()
        stop.set()
        system.drain(10)
        final = system.stop()
    BURN.seconds = {}
    PROBE.enabled = False
    noisy = tuple(burn or ()) + tuple(swap or ())
    out = {
        "pairs": n_pairs, "seconds": seconds, "feed_ended": ended, "start_s": started,
        "swap_s": swapped_s,
        "decision": summarize_ns(decisions.values(exclude=noisy)),
        "decision_coverage": decisions.coverage,
        "strategy": summarize_ns(PROBE.samples(exclude=noisy)),
        "ack": summarize_ns(acks.samples), "ack_unmatched": acks.unmatched,
        "ticks": sum(p.ticks for p in final.pairs),
        "shed": sum(p.ticks_shed for p in final.pairs),
        "fills": final.fills, "cpu_cores_used": cpu["self"],
        "other_processes_cores": cpu["others"], "state": final.state,
    }
    if noisy:
        out["noisy_pair"] = {
            "decision": summarize_ns(decisions.values(exclude=set(pairs) - set(noisy))),
        }
    return out


def _swap(system: TradingSystem, specs: dict[str, StrategySpec]) -> float:
    """Swap pairs' strategies and wait until each pair trades the new one; returns the
    seconds that took (an isolated strategy's child starting is most of it)."""
    t0 = time.perf_counter()
    for pair, spec in specs.items():
        system.swap_strategy(pair, spec)
    pairs = system.router.pairs
    if not wait_until(lambda: all(pairs[p].spec == spec for p, spec in specs.items()), 30):
        raise RuntimeError(f"bench: the swap of {', '.join(specs)} did not happen in 30 s")
    return time.perf_counter() - t0


def _latency_rows(case: str, r: dict[str, Any]) -> list[Row]:
    rows = []
    for key, label in (("decision", "tick->decision"), ("strategy", "tick->strategy"),
                       ("ack", "tick->order ack")):
        s = r[key]
        note = f"n={s['n']}"
        if key == "decision":
            note += f", coverage {r['decision_coverage']:.0%}, shed {r['shed']}"
        if key == "ack":
            note += f", fills {r['fills']}"
        rows.extend(Row("latency", case, f"{label} {stat[:-3]}", s[stat], "ms", note=note)
                    for stat in ("p50_ms", "p99_ms", "max_ms"))
    return rows


def bench_latency(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    # Full: long enough for a p99 of 3,000-60,000 samples; shorter than before the soak ran
    # 10 million ticks, so that the whole make bench stays under ten minutes.
    seconds = {1: 4.0, 10: 4.0, 50: 4.0, 200: 4.0} if quick else \
              {1: 15.0, 10: 10.0, 50: 10.0, 200: 10.0}
    targets = {50: 0.5, 200: 2.0}
    rows: list[Row] = []
    details: dict[str, Any] = {"tick_interval_ms": LIVE_INTERVAL_MS}
    for n, secs in seconds.items():
        r = run_live(n, secs)
        details[f"{n}_pairs"] = r
        case = f"{n} pair{'s' if n > 1 else ''} @20 t/s"
        lat = _latency_rows(case, r)
        if n in targets:
            p99 = next(x for x in lat if x.metric == "tick->decision p99")
            p99.target = f"<= {targets[n]} ms"
            p99.ok = check(p99.value, targets[n], higher_is_better=False)
        rows.extend(lat)
        rows.append(Row("latency", case, "cpu used", r["cpu_cores_used"], "cores",
                        note=f"start() {r['start_s']:.2f} s; other processes used "
                             f"{r['other_processes_cores']:.2f} cores meanwhile"))
    # The design the pool replaced, for comparison: every pair on a thread of its own.
    r = details["200_pairs_thread_each"] = run_live(200, seconds[200], pair_workers=0)
    decision = r["decision"]
    rows.append(Row("latency", "200 pairs @20 t/s, a thread per pair (pair_workers = 0)",
                    "tick->decision p99", decision["p99_ms"], "ms",
                    note=f"informational: the design before the pair pool; p50 "
                         f"{decision['p50_ms']:.3f} ms, cpu {r['cpu_cores_used']:.2f} cores"))
    return rows, details


_HOG = """
import sys, time
n = int(sys.argv[1])
while True:
    began = time.perf_counter()
    acc = 0
    for i in range(n):
        acc = (acc + i * i) & 0xFFFF
    time.sleep(max(0.0, 0.05 - (time.perf_counter() - began)))
"""


@contextlib.contextmanager
def _hog(loops: int) -> Iterator[None]:
    """A process outside the system that burns ``loops`` iterations every 50 ms."""
    hog = subprocess.Popen([sys.executable, "-c", _HOG, str(loops)])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def ipc_cost(n: int = 3000) -> dict[str, Any]:
    """``on_tick`` on ``ema_cross(10, 30)``: in this process, and isolated in its own (the
    round trip: pack, send, the child decides, one byte back); per-call nanoseconds."""
    inner = StrategySpec.of("ema_cross")
    ticks = [MarketTick(pair="Q000/USDT", ts_ms=START_MS + 50 * i, price=100.0 + (i % 97) / 10,
                        bid=100.0, ask=100.2, amount=1.0, recv_ns=i + 1) for i in range(n)]
    t0 = time.perf_counter()
    proxy = build_strategy(isolated(inner))
    assert isinstance(proxy, ProcessStrategy)
    local = build_strategy(inner)
    perf = time.perf_counter_ns
    try:
        proxy.warm_up(ticks[:100])
        proxy.ready()
        start_s = time.perf_counter() - t0
        local.warm_up(ticks[:100])
        timings: dict[str, list[int]] = {"process": [], "thread": []}
        for tick in ticks[100:]:
            for name, strategy in (("process", proxy), ("thread", local)):
                began = perf()
                strategy.on_tick(tick)
                timings[name].append(perf() - began)
    finally:
        proxy.close()
    return {"child_start_s": start_s,
            **{name: summarize_ns(values) for name, values in timings.items()}}


def bench_noisy(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    n, secs = (10, 4.0) if quick else (20, 10.0)
    pairs = synthetic_pairs(n)
    noisy = {pairs[0]: 0.020}
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))  # the child inherits it and imports the Burner
    if not BURN.loops_per_second:
        BURN.calibrate()
    loops = int(noisy[pairs[0]] * BURN.loops_per_second)
    burner = isolated(StrategySpec.of(BURNER, loops=loops))
    ipc = ipc_cost(1000 if quick else 3000)
    # The target compares the isolated run with the calm one: run them back to back, as the
    # load from other processes on a shared machine drifts.
    calm = run_live(n, secs)
    isolated_run = run_live(n, secs, swap={pairs[0]: burner})
    # A CPU hog is isolated to protect the others: at ``idle`` priority its child runs only
    # on a core nothing else wants, so it never preempts the pairs' threads (at ``normal`` a
    # child woken by its tick tends to preempt them on the core that woke it).
    idle_run = run_live(n, secs, swap={pairs[0]: isolated(StrategySpec.of(BURNER, loops=loops),
                                                          priority="idle")})
    with _hog(loops):
        control = run_live(n, secs)
    loud = run_live(n, secs, burn=noisy)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        loud_fast_switch = run_live(n, secs, burn=noisy)
    finally:
        sys.setswitchinterval(previous)
    calm_p99 = calm["decision"]["p99_ms"]
    limit = 2 * calm_p99
    case = f"{n} pairs, 1 burns 20 ms/tick"

    def note(r: dict[str, Any]) -> str:
        return (f"p50 {r['decision']['p50_ms']:.3f} ms, max {r['decision']['max_ms']:.2f} ms, "
                f"n={r['decision']['n']}; other processes {r['other_processes_cores']:.2f} "
                "cores")

    noisy_own = isolated_run["noisy_pair"]["decision"]
    rows = [
        Row("noisy", f"{n} pairs calm", "others tick->decision p99", calm_p99, "ms",
            note=f"p50 {calm['decision']['p50_ms']:.3f} ms, n={calm['decision']['n']}; "
                 f"other processes {calm['other_processes_cores']:.2f} cores"),
        Row("noisy", case + " in its own process, isolation_priority idle",
            "others tick->decision p99", idle_run["decision"]["p99_ms"], "ms",
            target=f"<= 2x calm ({limit:.3f} ms)",
            ok=check(idle_run["decision"]["p99_ms"], limit, higher_is_better=False),
            note=note(idle_run) + f" (the isolated child among them); its own p50 "
                                  f"{idle_run['noisy_pair']['decision']['p50_ms']:.1f} ms"),
        Row("noisy", case + " in its own process (priority normal)", "others tick->decision p99",
            isolated_run["decision"]["p99_ms"], "ms",
            note=note(isolated_run) + f" (the isolated child among them); swap to the "
                                      f"isolated burner took {isolated_run['swap_s']:.2f} s"),
        Row("noisy", case + " in its own process (priority normal)",
            "noisy pair's own tick->decision p50",
            noisy_own["p50_ms"], "ms",
            note=f"p99 {noisy_own['p99_ms']:.2f} ms, n={noisy_own['n']}: its 20 ms of work "
                 "plus the round trip"),
        Row("noisy", f"{n} pairs calm + an unrelated process burning 20 ms every 50 ms",
            "others tick->decision p99", control["decision"]["p99_ms"], "ms",
            note="control: what the same CPU load does from outside the system, i.e. the "
                 "floor for the isolated case on this machine; " + note(control)),
        Row("noisy", case + " on its thread", "others tick->decision p99",
            loud["decision"]["p99_ms"], "ms",
            note="informational (threads cannot isolate CPU under the GIL): " + note(loud)),
        Row("noisy", case + " on its thread, switchinterval 0.5 ms",
            "others tick->decision p99", loud_fast_switch["decision"]["p99_ms"], "ms",
            note="informational: sys.setswitchinterval(0.0005) instead of 5 ms"),
        Row("noisy", "isolation cost, ema_cross", "on_tick round trip p50",
            ipc["process"]["p50_ms"] * 1000, "us",
            note=f"p99 {ipc['process']['p99_ms'] * 1000:.0f} us, against "
                 f"{ipc['thread']['p50_ms'] * 1000:.1f} us in process (p99 "
                 f"{ipc['thread']['p99_ms'] * 1000:.1f} us), n={ipc['process']['n']}; "
                 f"child start {ipc['child_start_s'] * 1000:.0f} ms"),
    ]
    return rows, {"calm": calm, "noisy_thread": loud, "noisy_process": isolated_run,
                  "noisy_process_idle": idle_run,
                  "calm_with_unrelated_hog": control,
                  "noisy_switch_0_5ms": loud_fast_switch, "ipc": ipc,
                  "burn_s_per_tick": 0.020, "burn_loops": loops,
                  "loops_per_second": BURN.loops_per_second}
