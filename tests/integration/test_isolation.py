"""Process isolation in the running system: a pair's strategy in its own process crashes,
hangs, is swapped in and out, and is stopped with the system, and no child outlives its use.

The strategies (``examples/chaos_strategies.py``) leave an empty file named after their
process id in ``pid_dir``, so a test knows every child that was started; a child is gone
once ``/proc/<pid>`` is (a zombie keeps it until its parent reaps it). Waits are on events
and status with timeouts; no test sleeps.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.messages import MarketTick, PairRestarted, StrategySpec, StrategySwapped
from actors.state.store import spec_from_json
from strategies.isolated import isolated
from supervision import TradingSystem, build_config
from supervision.runtime.threadless import SyncRuntime
from tests.helpers import endless_chop, eventually, trading

START_MS = 1_700_000_000_000
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BTC, ETH = "BTC/USDT", "ETH/USDT"
PRICES = {BTC: 60_000.0, ETH: 3_000.0}


@pytest.fixture(autouse=True)
def chaos_strategies_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """``chaos_strategies:...`` imports in the children too: they get this ``sys.path``."""
    monkeypatch.syspath_prepend(str(EXAMPLES))


@pytest.fixture
def pid_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "pids"
    folder.mkdir()
    return folder


def pids(folder: Path) -> list[int]:
    """Every child a strategy started in, oldest first (validating a spec builds it once
    in this process, which leaves this process's id)."""
    files = sorted(folder.iterdir(), key=lambda f: f.stat().st_mtime_ns)
    return [int(f.name) for f in files if int(f.name) != os.getpid()]


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def config_for(tmp_path: Path, strategy: object = None, **overrides: object):
    values = {"pairs": f"{BTC},{ETH}", "state_db": str(tmp_path / "state.sqlite"),
              "speed": 100.0, "strategy": strategy or {"name": "ema_cross"},
              "restart": {"backoff_initial_s": 0.01}, **overrides}
    return build_config({}, values)


def chop(stop: threading.Event) -> Iterator[MarketTick]:
    return endless_chop(PRICES, stop, START_MS)


def spec(name: str, pid_dir: Path, **params: object) -> StrategySpec:
    return StrategySpec.of(f"chaos_strategies:{name}", pid_dir=str(pid_dir), **params)


def ticks_of(system: TradingSystem, pair: str) -> int:
    return system.status().pair(pair).ticks


def swapped(pair: str, description: str):
    return lambda events: any(isinstance(e, StrategySwapped) and e.pair == pair
                              and e.description.startswith(description) for e in events)


def restarted(pair: str):
    return lambda events: any(isinstance(e, PairRestarted) and e.pair == pair for e in events)


def test_a_child_that_dies_restarts_its_pair_with_a_new_child_and_trading_goes_on(
        tmp_path, pid_dir):
    """BTC's isolated strategy calls ``os._exit(3)`` on its third live tick: BTC restarts
    (the error names the exit code), its dead child is reaped, the next generation trades in
    a new child; ETH never notices."""
    crash = isolated(spec("Exiter", pid_dir, at=3, marker=str(tmp_path / "exited")))
    with trading(config_for(tmp_path), chop) as (system, log):
        system.swap_strategy(BTC, crash)
        log.wait_for(restarted(BTC), timeout=20, message="BTC to restart")
        after_restart = ticks_of(system, BTC)
        eventually(lambda: ticks_of(system, BTC) > after_restart + 20, timeout=20,
                   message="BTC to trade on")
        status = system.status()
        first, second = pids(pid_dir)

        assert not alive(first), "the dead child was not reaped"
        assert alive(second)
    [restart] = log.of(PairRestarted)
    assert "exited with code 3 during a tick" in restart.error
    assert status.pair(BTC).generation == 1
    assert status.pair(BTC).strategy.startswith("process(exiter(")
    assert status.pair(ETH).restarts == 0
    assert not alive(second)


def test_a_child_that_hangs_is_killed_and_replaced(tmp_path, pid_dir):
    """BTC's isolated strategy blocks forever on its second live tick; after ``timeout_s``
    (0.5 s) the pair gives up on it: the child is killed and reaped, BTC restarts with a new
    child and trades on."""
    hang = isolated(spec("Stuck", pid_dir, at=2, marker=str(tmp_path / "stuck")), timeout_s=0.5)
    with trading(config_for(tmp_path), chop) as (system, log):
        system.swap_strategy(BTC, hang)
        log.wait_for(restarted(BTC), timeout=20, message="BTC to restart")
        after_restart = ticks_of(system, BTC)
        eventually(lambda: ticks_of(system, BTC) > after_restart + 20, timeout=20,
                   message="BTC to trade on")
        first, second = pids(pid_dir)

        assert not alive(first), "the hung child is still there"
        assert alive(second)
    [restart] = log.of(PairRestarted)
    assert "did not answer a tick within 0.5 s" in restart.error
    assert not alive(second)


def test_swapping_into_and_out_of_isolation_starts_and_ends_the_child(tmp_path, pid_dir):
    """Both pairs start isolated (from the config's ``isolation = "process"``), one child
    each. Swapping BTC to an in-process strategy ends its child and leaves ETH's; swapping it
    back starts a new one; the spec is persisted as swapped. Nothing restarts."""
    config = config_for(tmp_path, {"name": "chaos_strategies:Burner", "isolation": "process",
                                   "params": {"loops": 0, "pid_dir": str(pid_dir)}})
    with trading(config) as (system, log):
        eventually(lambda: len(pids(pid_dir)) == 2, timeout=10, message="two children")
        started = pids(pid_dir)
        assert system.status().pair(BTC).strategy.startswith("process(burner(")

        system.swap_strategy(BTC, StrategySpec.of("ema_cross"))
        log.wait_for(swapped(BTC, "ema_cross"), timeout=10, message="the swap out")
        eventually(lambda: sum(map(alive, started)) == 1, timeout=10,
                   message="BTC's child to end")

        system.swap_strategy(BTC, isolated(spec("Burner", pid_dir, loops=0)))
        log.wait_for(swapped(BTC, "process(burner("), timeout=20, message="the swap back")
        eventually(lambda: ticks_of(system, BTC) > 0, timeout=10, message="BTC to trade")
        status = system.status()
        every = pids(pid_dir)

        assert len(every) == 3
        assert sum(map(alive, every)) == 2
    assert [p.restarts for p in status.pairs] == [0, 0]
    assert not any(map(alive, every))
    with contextlib.closing(sqlite3.connect(config.state_db)) as conn:
        [(persisted,)] = conn.execute("SELECT spec FROM strategies WHERE pair = ?", (BTC,))
    assert spec_from_json(persisted) == isolated(spec("Burner", pid_dir, loops=0))


def test_removing_an_isolated_pair_ends_its_child_only(tmp_path, pid_dir):
    config = config_for(tmp_path, {"name": "chaos_strategies:Burner", "isolation": "process",
                                   "params": {"loops": 0, "pid_dir": str(pid_dir)}})
    with trading(config) as (system, _):
        eventually(lambda: len(pids(pid_dir)) == 2, timeout=10, message="two children")
        both = pids(pid_dir)

        system.remove_pair(BTC)

        eventually(lambda: sum(map(alive, both)) == 1, timeout=10, message="one child to end")
        before = ticks_of(system, ETH)
        eventually(lambda: ticks_of(system, ETH) > before + 10, timeout=10,
                   message="ETH to trade on")
        assert system.status().pair(ETH).restarts == 0  # so the child that ended was BTC's
    assert not any(map(alive, both))


def test_stopping_the_system_while_a_child_hangs_leaves_no_child_behind(tmp_path, pid_dir):
    """The child hangs with a 60 s answer timeout and a 60 s heartbeat timeout, so only the
    stop can end it: ``stop(timeout=2)`` gives up on the stuck pair and the supervisor kills
    its child on the way down."""
    marker = tmp_path / "stuck"
    hang = isolated(spec("Stuck", pid_dir, at=1, marker=str(marker)), timeout_s=60)
    config = config_for(tmp_path, restart={"backoff_initial_s": 0.01,
                                           "heartbeat_timeout_s": 60})
    with trading(config) as (system, log):
        system.swap_strategy(BTC, hang)
        eventually(marker.exists, timeout=20, message="the child to hang")
        [child] = pids(pid_dir)
        assert alive(child)

        began = time.monotonic()
        system.stop(timeout=2)
        took = time.monotonic() - began

    assert not alive(child)
    assert took < 10
    assert not log.of(PairRestarted)


def test_the_threadless_runtime_runs_an_isolated_strategy_to_the_same_fills(tmp_path,
                                                                              pid_dir):
    """A backtest with the strategy in its own process trades exactly as in process, and
    closing the runtime ends the child."""
    from actors.market.scenarios import scenario_ticks

    ticks = scenario_ticks("chop", BTC, seed=3, n=4_000, start_ms=START_MS)
    values = {"pairs": BTC, "speed": "max", "state_db": ":memory:",
              "exits": {"stop_loss": 0.0, "take_profit": 0.0, "trailing_stop": 0.0}}
    plain = SyncRuntime(build_config({}, {**values, "strategy": {"name": "ema_cross"}}), ticks)
    expected = plain.run()
    runtime = SyncRuntime(build_config({}, {**values, "strategy": {
        "name": "ema_cross", "isolation": "process"}}), ticks)
    strategy = runtime.pairs[BTC].strategy
    try:
        got = runtime.run()
    finally:
        runtime.close()  # closes the isolated strategy: its child ends here
        plain.close()

    assert got.fills == expected.fills > 10
    assert got.realized_pnl == expected.realized_pnl
    assert got.pairs[0].strategy == f"process({expected.pairs[0].strategy})"
    assert strategy.process.returncode is not None  # type: ignore[attr-defined]
