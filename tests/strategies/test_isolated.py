"""Process isolation: ``ProcessStrategy`` against the in-process strategy, and its failures.

Each test starts real child processes (a fresh interpreter each, about 0.25 s) and checks
that every one it started has been reaped by the end: its ``Popen`` has a return code, and
``os.waitpid`` finds no such child. No test sleeps: the proxy's own timeouts bound each wait.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.messages import MarketTick, Side, Signal, StrategySpec
from strategies.base import StrategyError
from strategies.isolated import (
    ProcessStrategy,
    RemoteStrategyError,
    StrategyProcessError,
    inner_spec,
    isolated,
)
from strategies.registry import build_strategy, check_strategy
from supervision.config import ConfigError, strategy_spec_from

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START_MS = 1_700_000_000_000


@pytest.fixture(autouse=True)
def chaos_strategies_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """``chaos_strategies:...`` imports in the children too: they get this ``sys.path``."""
    monkeypatch.syspath_prepend(str(EXAMPLES))


@pytest.fixture
def started() -> Iterator[list[ProcessStrategy]]:
    """Proxies a test builds; closed afterwards, and each child checked to be reaped."""
    proxies: list[ProcessStrategy] = []
    yield proxies
    for proxy in proxies:
        proxy.close()
        assert_reaped(proxy)


def assert_reaped(proxy: ProcessStrategy) -> None:
    assert proxy.process.returncode is not None, "the child was not waited for"
    with pytest.raises(ChildProcessError):
        os.waitpid(proxy.pid, os.WNOHANG)


def seeded_ticks(n: int, seed: int = 11, pair: str = "BTC/USDT") -> list[MarketTick]:
    rng = random.Random(seed)
    price = 100.0
    ticks = []
    for i in range(n):
        price *= 1.0 + rng.gauss(0.0, 0.004)
        ticks.append(MarketTick(pair=pair, ts_ms=START_MS + 700 * i, price=price,
                                bid=price - 0.01, ask=price + 0.01, amount=0.5 + i % 3,
                                side=(Side.BUY, Side.SELL, None)[i % 3], recv_ns=i))
    return ticks


def build(spec: StrategySpec, started: list[ProcessStrategy]) -> ProcessStrategy:
    proxy = build_strategy(spec)
    assert isinstance(proxy, ProcessStrategy)
    started.append(proxy)
    return proxy


@pytest.mark.parametrize("inner", [
    StrategySpec.of("ema_cross", fast=5, slow=13),
    StrategySpec.of("rsi_reversion", period=7, timeframe_s=3.0),
    StrategySpec(path="aggregate", params=(("rule", "majority"),), members=(
        (StrategySpec.of("ema_cross", fast=4, slow=9), 1.0),
        (StrategySpec.of("donchian_breakout", entry_period=8, exit_period=5), 1.0),
        (StrategySpec.of("rsi_reversion", period=5), 1.0))),
], ids=["ema_cross", "rsi_candles", "aggregate"])
def test_the_isolated_strategy_signals_exactly_as_the_same_strategy_in_process(inner, started):
    """Warm-up, then 1,500 seeded ticks: the same signal on every tick, the same warm state,
    the same description and warm-up length."""
    ticks = seeded_ticks(1_700)
    local = build_strategy(inner)
    proxy = build(isolated(inner), started)

    local.warm_up(ticks[:200])
    proxy.warm_up(ticks[:200])
    local_signals = [local.on_tick(t) for t in ticks[200:]]
    proxy_signals = [proxy.on_tick(t) for t in ticks[200:]]

    assert proxy_signals == local_signals
    assert {Signal.BUY, Signal.SELL} <= set(local_signals)
    assert proxy.is_warm == local.is_warm
    assert proxy.warmup == local.warmup
    assert proxy.describe() == f"process({local.describe()})"


def test_prices_fed_directly_reach_the_strategy_in_its_process(started):
    """``feed_price`` and ``on_price`` are forwarded as they are, without candle logic."""
    inner = StrategySpec.of("ema_cross", fast=3, slow=6)
    local = build_strategy(inner)
    proxy = build(isolated(inner), started)
    prices = [t.price for t in seeded_ticks(300, seed=3)]

    assert [proxy.feed_price(p) for p in prices] == [local.feed_price(p) for p in prices]
    assert proxy.on_price(90.0) == local.on_price(90.0)


def test_a_strategy_that_raises_in_its_process_raises_in_the_pair_with_the_child_traceback(
        started):
    """The exception's type and text come back; the child's traceback is the cause; the
    child is killed and reaped."""
    proxy = build(isolated(StrategySpec.of("chaos_strategies:Crasher", every=2)), started)
    proxy.warm_up(seeded_ticks(40))
    proxy.on_tick(seeded_ticks(1)[0])

    with pytest.raises(StrategyProcessError,
                       match="raised RuntimeError during a tick: crasher: deliberate") as caught:
        proxy.on_tick(seeded_ticks(1)[0])

    assert isinstance(caught.value.__cause__, RemoteStrategyError)
    assert "chaos_strategies.py" in str(caught.value.__cause__)
    assert proxy.closed
    assert_reaped(proxy)


def test_a_child_that_exits_is_reported_with_its_exit_code_and_reaped(started):
    """``os._exit(3)`` inside the strategy: the next answer never comes, the pair hears why."""
    proxy = build(isolated(StrategySpec.of("chaos_strategies:Exiter", at=2)), started)
    proxy.warm_up(seeded_ticks(40))
    proxy.on_tick(seeded_ticks(1)[0])

    with pytest.raises(StrategyProcessError, match="exited with code 3 during a tick"):
        proxy.on_tick(seeded_ticks(1)[0])

    assert proxy.process.returncode == 3
    assert_reaped(proxy)
    with pytest.raises(StrategyProcessError, match="was closed"):
        proxy.on_tick(seeded_ticks(1)[0])


def test_a_child_that_does_not_answer_in_time_is_killed_and_reported_as_hung(started):
    proxy = build(isolated(StrategySpec.of("chaos_strategies:Stuck", at=1), timeout_s=0.3),
                  started)
    proxy.warm_up(seeded_ticks(40))

    with pytest.raises(StrategyProcessError, match=r"did not answer a tick within 0\.3 s"):
        proxy.on_tick(seeded_ticks(1)[0])

    assert proxy.process.returncode is not None
    assert_reaped(proxy)


def test_closing_from_another_thread_wakes_a_pair_stuck_on_a_hung_child(started):
    """The supervisor's case: the pair's thread waits on a hung child (with a long timeout);
    ``close`` from another thread kills the child, and the waiting call fails at once."""
    proxy = build(isolated(StrategySpec.of("chaos_strategies:Stuck", at=1), timeout_s=60),
                  started)
    proxy.warm_up(seeded_ticks(40))
    failures: list[BaseException] = []
    done = threading.Event()

    def pair_thread() -> None:
        try:
            proxy.on_tick(seeded_ticks(1)[0])
        except StrategyProcessError as exc:
            failures.append(exc)
        done.set()

    thread = threading.Thread(target=pair_thread, daemon=True)
    thread.start()
    assert not done.wait(0.3), "the stuck strategy answered"

    proxy.close()

    assert done.wait(5), "the waiting call did not wake up"
    assert len(failures) == 1
    assert "was killed by SIGTERM" in str(failures[0])
    assert_reaped(proxy)
    proxy.close()  # idempotent


def test_a_spec_the_child_cannot_build_fails_the_first_call_and_leaves_no_child(
        tmp_path, monkeypatch, started):
    """Parent and child disagree only if the import path changed. Building does not wait for
    the child; the first call that does names the problem, and the child that tried is gone;
    ``describe`` (shown when a pair starts) still answers."""
    (tmp_path / "only_here.py").write_text(
        "from strategies.ema_cross import EmaCross\nclass Mine(EmaCross):\n    name = 'mine'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = isolated(StrategySpec.of("only_here:Mine"))
    check_strategy(spec)  # importable here
    monkeypatch.setattr("sys.path", [p for p in os.sys.path if p != str(tmp_path)])
    proxy = build(spec, started)
    proxy.warm_up(seeded_ticks(10))

    with pytest.raises(StrategyProcessError, match="raised StrategyError during a start: "
                                                   "cannot import module 'only_here'"):
        proxy.ready()

    assert_reaped(proxy)
    assert proxy.describe() == "process(only_here:Mine: not running)"
    with pytest.raises(StrategyProcessError, match=r"was closed after: .* cannot import"):
        proxy.on_tick(seeded_ticks(1)[0])


def test_checking_an_isolated_spec_validates_it_in_this_process_without_a_child(monkeypatch):
    def no_child() -> None:
        raise AssertionError("check_strategy started a child process")

    monkeypatch.setattr("strategies.isolated._Child.start", no_child)
    check_strategy(isolated(StrategySpec.of("ema_cross", fast=12)))
    with pytest.raises(StrategyError, match="fast=0 is invalid"):
        check_strategy(isolated(StrategySpec.of("ema_cross", fast=0)))
    with pytest.raises(StrategyError, match=r"timeout_s=-1\.0 is invalid"):
        check_strategy(isolated(StrategySpec.of("ema_cross"), timeout_s=-1))
    with pytest.raises(StrategyError, match="priority='high' is invalid: must be one of "
                                            "normal, low, idle"):
        check_strategy(isolated(StrategySpec.of("ema_cross"), priority="high"))
    with pytest.raises(StrategyError, match="unknown parameter 'fast'"):
        check_strategy(StrategySpec(path="process", params=(("fast", 3),),
                                    members=((StrategySpec.of("ema_cross"), 1.0),)))


@pytest.mark.parametrize(("spec", "message"), [
    (StrategySpec(path="process"), "isolates exactly one strategy"),
    (StrategySpec(path="process", members=((StrategySpec.of("ema_cross"), 1.0),) * 2),
     "isolates exactly one strategy"),
    (isolated(isolated(StrategySpec.of("ema_cross"))), "cannot isolate another 'process'"),
    (StrategySpec(path="aggregate", members=(
        (isolated(StrategySpec.of("ema_cross")), 1.0), (StrategySpec.of("ema_cross"), 1.0))),
     "isolate the aggregate instead"),
])
def test_malformed_isolation_specs_are_refused_with_the_valid_form(spec, message):
    with pytest.raises(StrategyError, match=message):
        check_strategy(spec)


@pytest.mark.parametrize(("priority", "nice", "policy"), [
    ("normal", os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0)),
    ("low", 19, os.SCHED_OTHER),
    ("idle", os.getpriority(os.PRIO_PROCESS, 0), os.SCHED_IDLE),
])
def test_the_child_runs_at_the_cpu_priority_asked_for(priority, nice, policy, started):
    proxy = build(isolated(StrategySpec.of("ema_cross"), priority=priority), started)
    proxy.ready()  # the child sets its priority before it builds the strategy

    assert os.getpriority(os.PRIO_PROCESS, proxy.pid) == nice
    assert os.sched_getscheduler(proxy.pid) == policy
    assert proxy.describe() == (
        "process(ema_cross(fast=10, slow=30))" if priority == "normal"
        else f"process(priority={priority}; ema_cross(fast=10, slow=30))")


def test_the_config_turns_isolation_on_for_the_whole_strategy():
    spec = strategy_spec_from({"name": "ema_cross", "params": {"fast": 12},
                               "isolation": "process", "isolation_timeout_s": 1.5,
                               "isolation_priority": "low"})
    assert spec == isolated(StrategySpec.of("ema_cross", fast=12), timeout_s=1.5,
                            priority="low")
    assert inner_spec(spec) == StrategySpec.of("ema_cross", fast=12)
    assert strategy_spec_from({"name": "ema_cross", "isolation": "thread"}) == \
        StrategySpec.of("ema_cross")
    aggregate = strategy_spec_from({"name": "aggregate", "isolation": "process",
                                    "members": [{"name": "ema_cross"}]})
    assert inner_spec(aggregate).path == "aggregate"


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "ema_cross", "isolation": "subprocess"},
     "isolation = 'subprocess' is invalid: expected one of thread, process"),
    ({"name": "ema_cross", "isolation_timeout_s": 2},
     'isolation_timeout_s needs isolation = "process"'),
    ({"name": "aggregate", "members": [{"name": "ema_cross", "isolation": "process"}]},
     "isolation applies to the whole"),
])
def test_bad_isolation_settings_name_the_valid_choices(data, message):
    with pytest.raises(ConfigError, match=message):
        strategy_spec_from(data)
