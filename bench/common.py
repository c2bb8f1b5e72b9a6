"""Shared helpers: the benchmark configuration, percentiles, memory readings, the machine.

Every benchmark builds its ``SystemConfig`` with ``bench_config``: exits that never fire
(stop-loss, take-profit and trailing stop at 0), a generous balance, and risk limits that
never refuse an entry, so that every strategy cross becomes an order and fills per 100,000
ticks can be compared with the published EMA-crossover figure. State lives in a fresh SQLite
file (WAL, as in production) in a temporary directory.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.metadata
import math
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from supervision.config import SystemConfig, build_config

PROBED = "bench.probe:ProbedEmaCross"

NO_EXITS = {"stop_loss": 0.0, "take_profit": 0.0, "trailing_stop": 0.0,
            "trailing_activation": 0.0}


def bench_risk(stake: float, min_notional: float = 10.0) -> dict[str, Any]:
    return {
        "stake_amount": stake, "max_open_positions": 100_000, "max_pair_exposure": 1.0,
        "max_total_exposure": 1.0, "daily_loss_limit": 1.0, "max_drawdown": 1.0,
        "stop_loss_cooldown_s": 0.0, "min_notional": min_notional,
    }


def bench_config(pairs: Sequence[str], state_db: str, *, speed: str | float = "max",
                 stake: float = 600.0, strategy: str = PROBED, min_notional: float = 10.0,
                 **extra: Any) -> SystemConfig:
    """A config for a benchmark run; ``extra`` adds or overrides top-level keys."""
    values: dict[str, Any] = {
        "pairs": ",".join(pairs), "speed": speed, "state_db": state_db,
        "initial_balance": 1e9, "strategy": {"name": strategy},
        "risk": bench_risk(stake, min_notional), "exits": NO_EXITS,
    }
    values.update(extra)
    return build_config({}, values)


@contextlib.contextmanager
def temp_db() -> Iterator[str]:
    """A fresh state database path, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tc-bench-") as folder:
        yield os.path.join(folder, "state.sqlite")


def fills_in_db(location: str) -> int:
    """Rows in the ``fills`` table of the state database at ``location`` (a path or URL)."""
    from actors.state import open_store

    with open_store(location) as store:
        return len(store.fills())


def commits_in_db(location: str) -> int:
    """Group-commit batches the state database has committed (``meta.commit_seq``)."""
    from actors.state import open_store

    with open_store(location) as store:
        return store.commit_seq


# -- statistics -----------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (``q`` in [0, 100])."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return float(sorted_values[rank - 1])


def summarize_ns(samples: Sequence[int]) -> dict[str, float]:
    """p50 / p99 / max in milliseconds, and the sample count."""
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": percentile(ordered, 50) / 1e6,
        "p99_ms": percentile(ordered, 99) / 1e6,
        "max_ms": (ordered[-1] / 1e6) if ordered else float("nan"),
    }


# -- memory -----------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb() -> float:
    """Current resident set size (VmRSS), or the peak where /proc is unavailable."""
    kb = _status_kb("VmRSS")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark for this process (Linux ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


def settle_memory() -> None:
    gc.collect()


# -- other processes ----------------------------------------------------------------------------


class CpuMeter:
    """CPU used by this process and by everything else on the machine over an interval, in
    cores, from ``/proc/stat`` and ``/proc/self/stat``: other helpers, tests or builds
    running at the same time show up as ``others`` and make tails worse."""

    def __init__(self) -> None:
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._start = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
            with open("/proc/self/stat", encoding="ascii") as f:
                mine = f.read().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            return None
        busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)
        return busy / self._tick, (int(mine[11]) + int(mine[12])) / self._tick, \
            time.monotonic()

    def cores(self) -> dict[str, float]:
        end = self._read()
        if end is None or self._start is None:
            return {"self": float("nan"), "others": float("nan")}
        wall = max(1e-9, end[2] - self._start[2])
        busy = (end[0] - self._start[0]) / wall
        mine = (end[1] - self._start[1]) / wall
        return {"self": mine, "others": max(0.0, busy - mine)}


def loadavg() -> float:
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


# -- machine ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii",
                                            errors="replace") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("pykka", "ccxt", "attrs", "loguru"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "missing"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable,
        "python": sys.version.split()[0], "implementation": platform.python_implementation(),
        "platform": platform.platform(), "switch_interval_s": sys.getswitchinterval(),
        "loadavg_1min_at_start": loadavg(),
        **versions,
    }


def machine_line(m: dict[str, Any]) -> str:
    return (f"{m['cpu']}, {m['usable_cores']}/{m['cores']} cores, {m['implementation']} "
            f"{m['python']}, pykka {m['pykka']}, ccxt {m['ccxt']}, attrs {m['attrs']}, "
            f"loguru {m['loguru']}, {m['platform']}")


# -- results ------------------------------------------------------------------------------------


@attrs.define
class Row:
    """One line of the results table; ``target`` is None for an informational figure."""

    bench: str
    case: str
    metric: str
    value: float
    unit: str
    target: str | None = None
    ok: bool | None = None
    note: str = ""


def check(value: float, limit: float, higher_is_better: bool) -> bool:
    if math.isnan(value):  # nothing measured, which is a miss
        return False
    return value >= limit if higher_is_better else value <= limit


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.005) -> bool:
    """Poll ``predicate`` on a timed wait until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    idle = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        idle.wait(step)
    return True
