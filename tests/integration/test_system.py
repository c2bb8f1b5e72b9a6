"""The real actors, the simulator or scripted scenarios, and the paper exchange."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from actors.market.scenarios import scenario_ticks
from actors.messages import (
    ExitReason,
    MarketTick,
    OrderFilled,
    PairFailed,
    PairRestarted,
    PositionClosed,
    StrategySpec,
)
from supervision import TradingSystem, build_config
from tests.helpers import EventLog, endless_chop, eventually

START_MS = 1_700_000_000_000


def config_for(tmp_path, pairs="BTC/USDT,ETH/USDT", **overrides):
    values = {"pairs": pairs, "state_db": str(tmp_path / "state.sqlite"), "speed": "max",
              "seed": 7, **overrides}
    return build_config({}, values)


def run_to_end(config, source, timeout=60.0):
    log = EventLog()
    system = TradingSystem(config, source=source)
    system.subscribe(log)
    with system:
        assert system.wait(timeout), "the finite source should end the run by itself"
    return system.status(), log


def fills_both_ways(tmp_path, ticks, extra):
    """BTC/USDT at full speed with no price exits, threadless and through the actors:
    (the actors' final status, their fills, the threadless fills) as (ts, side, price)."""
    from supervision.runtime.threadless import SyncRuntime

    values = {"pairs": "BTC/USDT", "speed": "max", "seed": 1,
              "exits": {"stop_loss": 0.0, "take_profit": 0.0, "trailing_stop": 0.0}, **extra}
    reference = SyncRuntime(build_config({}, {**values, "state_db": ":memory:"}), ticks)
    expected: list[object] = []
    reference.on_event = expected.append
    reference.run()
    status, log = run_to_end(build_config({}, {**values, "state_db": str(tmp_path / "s.db")}),
                             ticks)

    def fills(events):
        return [(e.fill.ts_ms, e.fill.side, e.fill.price) for e in events
                if isinstance(e, OrderFilled)]

    return status, fills(log.events), fills(expected)


def test_both_pairs_trade_on_the_simulator_at_speed(tmp_path):
    """The default set-up (simulator, ema_cross, paper) fills orders on both pairs."""
    config = config_for(tmp_path, speed=20.0)
    log = EventLog()
    with TradingSystem(config) as system:
        system.subscribe(log)
        log.wait_for(lambda evs: {e.fill.pair for e in evs if isinstance(e, OrderFilled)}
                     >= {"BTC/USDT", "ETH/USDT"}, timeout=60, message="fills on both pairs")
        status = system.status()
    assert all(p.ticks > 0 and p.state == "running" for p in status.pairs)
    assert status.fills >= 2
    final = system.status()
    assert final.state == "stopped"
    with sqlite3.connect(config.state_db) as db:
        assert db.execute("SELECT COUNT(*) FROM fills").fetchone()[0] == final.fills


@pytest.mark.parametrize("kind", ["uptrend", "downtrend", "chop", "flash_crash", "gap"])
def test_scenarios_run_to_the_end_with_bounded_losses(tmp_path, kind):
    """Every scenario ends by itself; no round trip loses more than a gap's worth."""
    config = config_for(tmp_path, pairs="BTC/USDT")
    ticks = scenario_ticks(kind, "BTC/USDT", seed=3, n=1500, start_ms=START_MS)

    status, log = run_to_end(config, ticks)

    assert status.pair("BTC/USDT").ticks == len(ticks)
    stake = 0.1 * 10_000
    for closed in log.of(PositionClosed):
        assert closed.pnl > -0.1 * stake, f"{kind}: a round trip lost {closed.pnl:.2f}"


def test_a_flash_crash_fires_the_stop_loss_and_bounds_the_loss(tmp_path):
    """An open position through a -30 % crash is stopped out, losing far less than 30 %."""
    config = config_for(tmp_path, pairs="BTC/USDT",
                        strategy={"name": "tests.helpers:BuyOnce"})
    ticks = scenario_ticks("flash_crash", "BTC/USDT", seed=1, n=600, start_ms=START_MS)

    status, log = run_to_end(config, ticks)

    stops = [c for c in log.of(PositionClosed) if c.reason is ExitReason.STOP_LOSS]
    assert len(stops) == 1
    stake = 0.1 * 10_000
    assert -0.1 * stake < stops[0].pnl < 0
    assert status.pair("BTC/USDT").position == 0


def test_an_uptrend_makes_money_for_the_breakout_strategy(tmp_path):
    """A steady rise is a trend follower's best case: realized PnL is positive."""
    config = config_for(tmp_path, pairs="BTC/USDT",
                        strategy={"name": "donchian_breakout"})
    ticks = scenario_ticks("uptrend", "BTC/USDT", seed=2, n=2000, start_ms=START_MS)

    status, _ = run_to_end(config, ticks)

    assert status.fills >= 2
    assert status.realized_pnl + status.pair("BTC/USDT").unrealized_pnl > 0


def test_malformed_ticks_are_dropped_counted_and_never_traded(tmp_path):
    """NaN, zero, negative prices and time going backwards: dropped, counted, no order."""
    config = config_for(tmp_path, pairs="BTC/USDT",
                        strategy={"name": "tests.helpers:BuyOnce"})
    good = MarketTick(pair="BTC/USDT", ts_ms=START_MS + 10_000, price=100.0, bid=99.9,
                      ask=100.1)
    bad = [
        MarketTick(pair="BTC/USDT", ts_ms=START_MS, price=float("nan"), bid=1, ask=1),
        MarketTick(pair="BTC/USDT", ts_ms=START_MS + 1, price=0.0, bid=0.0, ask=0.0),
        MarketTick(pair="BTC/USDT", ts_ms=START_MS + 2, price=-5.0, bid=-5.1, ask=-4.9),
    ]
    backwards = MarketTick(pair="BTC/USDT", ts_ms=START_MS + 5_000, price=1.0, bid=0.9,
                           ask=1.1)

    status, log = run_to_end(config, [*bad, good, backwards])

    assert sum(n for _, n in status.ticks_dropped) == 4
    assert status.pair("BTC/USDT").ticks == 1
    fills = log.of(OrderFilled)
    assert [f.fill.price for f in fills] == [pytest.approx(100.1, rel=1e-3)]


def test_a_second_run_continues_with_the_open_position(tmp_path, state_db):
    """Run 1 leaves a position open; run 2 on the same database (SQLite or PostgreSQL)
    manages (stops) it."""
    config = config_for(tmp_path, pairs="BTC/USDT", state_db=state_db,
                        strategy={"name": "tests.helpers:BuyOnce"},
                        exits={"stop_loss": 0.05, "take_profit": 0.5, "trailing_stop": 0.0})
    calm = scenario_ticks("chop", "BTC/USDT", seed=4, n=200, start_ms=START_MS,
                          start_price=60_000.0)
    first, _ = run_to_end(config, calm)
    position = first.pair("BTC/USDT").position
    assert position > 0

    crash = [MarketTick(pair="BTC/USDT", ts_ms=START_MS + 10_000_000 + i * 1000,
                        price=p, bid=p - 0.01, ask=p + 0.01)
             for i, p in enumerate([60_000.0, 58_000.0, 55_000.0, 54_000.0])]
    second, log = run_to_end(config_for(tmp_path, pairs="BTC/USDT", state_db=state_db,
                                        strategy={"name": "tests.helpers:BuyOnce"},
                                        exits={"stop_loss": 0.05}), crash)

    [closed] = log.of(PositionClosed)
    assert closed.reason is ExitReason.STOP_LOSS
    assert second.pair("BTC/USDT").position == 0
    assert second.pair("BTC/USDT").trades == first.pair("BTC/USDT").trades + 1


def test_a_halt_made_by_hand_holds_across_a_restart_until_resumed(tmp_path, state_db):
    """The kill switch by hand is kept in the state database (SQLite or PostgreSQL): the next
    run starts with entries halted, and refuses an entry; once resumed, the run after that
    starts free."""
    config = config_for(tmp_path, pairs="BTC/USDT", state_db=state_db, speed=1.0)
    with TradingSystem(config) as system:
        assert not system.risk().status.halted
        system.halt_entries("exchange maintenance")

    with TradingSystem(config) as system:
        status = system.risk().status
        assert status.halted and status.halt_reason == "by hand: exchange maintenance"
        system.resume_entries()

    with TradingSystem(config) as system:
        assert not system.risk().status.halted


def test_a_start_that_fails_half_way_stops_the_actors_it_started(tmp_path, monkeypatch):
    """State and execution are running when risk cannot be made: the error reaches the
    caller and no actor is left behind (one would keep the process from exiting)."""
    import pykka

    import supervision.system as system_module

    def broken(*args, **kwargs):
        raise RuntimeError("no risk today")

    monkeypatch.setattr(system_module, "make_risk", broken)
    before = set(pykka.ActorRegistry.get_all())
    with pytest.raises(RuntimeError, match="no risk today"):
        TradingSystem(config_for(tmp_path, pairs="BTC/USDT")).start()
    assert set(pykka.ActorRegistry.get_all()) == before


def test_a_crashing_pair_restarts_then_fails_while_the_other_keeps_trading(tmp_path):
    """BTC's strategy raises on every tick: restarts to its limit, then failed; ETH trades on."""
    config = config_for(tmp_path, speed=200.0,
                        strategy={"name": "tests.helpers:RaiseAbove",
                                  "params": {"above": 10_000}},
                        restart={"backoff_initial_s": 0.01, "max_restarts": 3})
    stop = threading.Event()
    ticks = endless_chop({"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0}, stop, START_MS)
    log = EventLog()
    system = TradingSystem(config, source=ticks)
    system.subscribe(log)
    with system:
        log.wait_for(lambda evs: any(isinstance(e, PairFailed) for e in evs), timeout=30,
                     message="BTC/USDT to exhaust its restarts")
        eth_ticks_at_failure = system.status().pair("ETH/USDT").ticks
        eventually(lambda: system.status().pair("ETH/USDT").ticks > eth_ticks_at_failure + 20,
                   message="ETH/USDT to keep processing ticks")
        status = system.status()
        stop.set()
    btc, eth = status.pair("BTC/USDT"), status.pair("ETH/USDT")
    assert [e.pair for e in log.of(PairRestarted)] == ["BTC/USDT"] * 3
    assert (btc.state, btc.restarts, btc.generation) == ("failed", 3, 3)
    assert (eth.state, eth.restarts, eth.generation) == ("running", 0, 0)


def test_strategy_swap_is_refused_when_invalid(tmp_path):
    """A bad spec raises before anything is sent; the pair keeps its strategy."""
    from supervision import ConfigError

    config = config_for(tmp_path, pairs="BTC/USDT", speed=1.0)
    with TradingSystem(config) as system:
        before = system.status().pair("BTC/USDT").strategy
        with pytest.raises(ConfigError, match="unknown"):
            system.swap_strategy("BTC/USDT", StrategySpec.of("no_such_strategy"))
        assert system.status().pair("BTC/USDT").strategy == before


def test_a_busy_replay_longer_than_the_hold_limit_still_decides_like_the_threadless_core(
        tmp_path, monkeypatch):
    """Ticks held across many answered orders are progress, not a lost answer: with a
    0.5 s hold limit, a replay that keeps ticks held for seconds still fills identically.
    (The limit is far above a normal pause, a commit or a scheduling gap on a busy 2-core
    machine, and far below the run, which holds ticks almost all the time.)"""
    import actors.pair.actor

    monkeypatch.setattr(actors.pair.actor, "HOLD_LIMIT_S", 0.5)
    ticks = scenario_ticks("chop", "BTC/USDT", seed=8, n=60_000, start_ms=START_MS)

    _, through_actors, threadless = fills_both_ways(tmp_path, ticks, {})

    assert len(threadless) > 200
    assert through_actors == threadless


def test_the_gil_switch_interval_is_set_while_the_system_runs_and_put_back_after(tmp_path):
    import sys

    before = sys.getswitchinterval()
    config = build_config({"gil_switch_ms": 0.25}, {
        "pairs": "BTC/USDT", "state_db": str(tmp_path / "s.sqlite"), "speed": 20.0})
    with TradingSystem(config):
        during = sys.getswitchinterval()
    assert during == pytest.approx(0.00025)
    assert sys.getswitchinterval() == before


def test_a_full_speed_replay_of_hourly_candles_decides_like_the_threadless_core(tmp_path):
    """Every tick an hour of market time: the pair still waits for each order's answer (not
    30 s of market time), and its marks, one per tick, never flood the state actor."""
    ticks = scenario_ticks("chop", "BTC/USDT", seed=5, n=20_000, start_ms=START_MS,
                           interval_ms=3_600_000)
    # Loss halts depend on equity, i.e. on when marks arrive, which threads do not fix.
    status, through_actors, threadless = fills_both_ways(
        tmp_path, ticks, {"risk": {"daily_loss_limit": 1.0, "max_drawdown": 1.0}})

    assert status.state == "finished" and status.ticks_accepted == 20_000
    assert len(threadless) > 200
    assert through_actors == threadless
