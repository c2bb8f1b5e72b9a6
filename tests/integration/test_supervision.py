"""Supervision under fire: crashes, hangs, a crash between order and fill, hot swaps and their
rollback, pairs added, paused and removed at runtime, and a stop under full load.

Every test runs the real actors on an endless source (or the simulator) and waits on events
or on status with timeouts; none sleeps. Restart backoffs are tiny so crash loops end fast.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from loguru import logger

from actors.market.scenarios import scenario_ticks
from actors.messages import (
    ExitReason,
    MarketTick,
    OrderFilled,
    OrderUpdated,
    PairAdded,
    PairFailed,
    PairRemoved,
    PairRestarted,
    PositionClosed,
    StrategyRolledBack,
    StrategySpec,
    StrategySwapped,
)
from actors.state.store import spec_from_json
from supervision import ConfigError, TradingSystem, build_config
from tests.helpers import (
    EventLog,
    db_rows,
    endless_chop,
    eventually,
    gate,
    rising_then_dipping,
    trading,
)

START_MS = 1_700_000_000_000
REPO = Path(__file__).resolve().parents[2]
BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"
THREE = {BTC: 60_000.0, ETH: 3_000.0, SOL: 150.0}
NO_EXITS = {"stop_loss": 0.0, "take_profit": 0.0, "trailing_stop": 0.0}
"""Exit rules off: positions close only by signal or by the supervisor's flatten."""


def config_for(tmp_path, pairs, strategy, *, speed=200.0, restart=None, **overrides):
    values = {"pairs": pairs, "state_db": str(tmp_path / "state.sqlite"), "speed": speed,
              "seed": 7, "strategy": strategy,
              "restart": {"backoff_initial_s": 0.01, **(restart or {})}, **overrides}
    return build_config({}, values)


@contextlib.contextmanager
def fence_warnings() -> Iterator[list[str]]:
    """What the generation fence logs meanwhile (the ``actors`` logs are off in a library;
    only the fence's are switched on here, and off again after)."""
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING",
                      filter=lambda record: record["name"] == "actors.fencing")
    logger.enable("actors.fencing")
    try:
        yield messages
    finally:
        logger.disable("actors.fencing")
        logger.remove(sink)


def chop(prices: dict[str, float]) -> Callable[[threading.Event], Iterable[MarketTick]]:
    return lambda stop: endless_chop(prices, stop, START_MS)


def is_a(kind: type, **fields: object) -> Callable[[list[object]], bool]:
    """An ``EventLog.wait_for`` predicate: some event of ``kind`` with these field values."""
    def match(events: list[object]) -> bool:
        return any(isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())
                   for e in events)
    return match


def ticks_of(system: TradingSystem, pair: str) -> int:
    return system.status().pair(pair).ticks


def rows(db: str, sql: str, *args: object) -> list[tuple]:
    return db_rows(db, sql, *args)


def entry_orders(log: EventLog, pair: str) -> set[str]:
    return {e.order.order_id for e in log.of(OrderUpdated)
            if e.order.pair == pair and e.order.reason is ExitReason.ENTRY}


# -- 1. fault injection ------------------------------------------------------------------------


def test_a_crash_looping_pair_fails_at_its_limit_while_the_others_trade_on(tmp_path):
    """BTC's strategy raises on every tick: restarted (generations 1..3), then failed at the
    limit. ETH and SOL keep processing ticks before, during and after, never restarted."""
    config = config_for(tmp_path, f"{BTC},{ETH},{SOL}",
                        {"name": "tests.helpers:RaiseAbove", "params": {"above": 10_000}},
                        restart={"max_restarts": 3})
    calm = (ETH, SOL)
    with trading(config, chop(THREE)) as (system, log):
        log.wait_for(is_a(PairRestarted, pair=BTC), timeout=5, message="BTC's first restart")
        during = system.status()
        log.wait_for(is_a(PairFailed, pair=BTC), timeout=5, message="BTC to give up")
        at_failure = system.status()
        eventually(lambda: all(ticks_of(system, p) > at_failure.pair(p).ticks + 50
                               for p in calm), timeout=5, message="ETH and SOL to go on")
        after = system.status()

    restarts = log.of(PairRestarted)
    assert [(e.pair, e.generation, e.restarts) for e in restarts] == [
        (BTC, 1, 1), (BTC, 2, 2), (BTC, 3, 3)]
    assert all("exploded on purpose" in e.error for e in restarts)
    [failed] = log.of(PairFailed)
    assert (failed.pair, failed.restarts) == (BTC, 3)
    assert "exploded on purpose" in failed.error
    btc = after.pair(BTC)
    assert (btc.state, btc.restarts, btc.generation, btc.ticks) == ("failed", 3, 3, 0)
    assert "exploded on purpose" in btc.last_error
    for pair in calm:
        assert during.pair(pair).ticks < at_failure.pair(pair).ticks < after.pair(pair).ticks
        p = after.pair(pair)
        assert (p.state, p.restarts, p.generation, p.last_error) == ("running", 0, 0, "")
    final = system.status()
    assert final.pair(BTC).state == "failed"
    assert {final.pair(p).state for p in calm} == {"stopped"}


def test_a_failed_pair_is_flattened_under_the_flatten_policy(tmp_path):
    """Every pair buys; BTC then crash-loops. With on_failure = flatten, the failed BTC's
    position is sold at market (PositionClosed by flatten); ETH and SOL keep theirs."""
    config = config_for(tmp_path, f"{BTC},{ETH},{SOL}",
                        {"name": "tests.helpers:BuyThenRaise",
                         "params": {"above": 10_000, "after": 5}},
                        restart={"max_restarts": 2, "on_failure": "flatten"}, exits=NO_EXITS)
    with trading(config, chop(THREE)) as (system, log):
        log.wait_for(is_a(PairFailed, pair=BTC), timeout=5, message="BTC to give up")
        log.wait_for(is_a(PositionClosed, pair=BTC), timeout=5, message="BTC's flatten")
        eventually(lambda: system.status().pair(BTC).position == 0, timeout=5,
                   message="the flattened position to show")
        status = system.status()

    assert [e.pair for e in log.of(PairRestarted)] == [BTC, BTC]
    [closed] = log.of(PositionClosed)
    assert (closed.pair, closed.reason) == (BTC, ExitReason.FLATTEN)
    btc = status.pair(BTC)
    assert (btc.state, btc.position, btc.trades, btc.open_orders) == ("failed", 0, 1, 0)
    assert status.pair(ETH).position > 0
    assert status.pair(SOL).position > 0
    db = config.state_db
    assert rows(db, "SELECT reason, status FROM orders WHERE pair = ? ORDER BY created_ms",
                BTC) == [("entry", "filled"), ("flatten", "filled")]
    assert rows(db, "SELECT pair FROM positions WHERE amount > 0 ORDER BY pair") == [
        (ETH,), (SOL,)]


# -- 2. hang -----------------------------------------------------------------------------------


def test_a_forced_exit_asked_of_a_hung_pair_is_carried_out_by_its_next_generation(tmp_path):
    """BTC holds a position, then hangs inside its strategy; the exit asked for by hand
    waits in the hung generation's inbox, which the restart throws away. The next
    generation sells anyway (its strategy only holds and every exit rule is off): the
    request lives on the pair's handle until the pair is flat."""
    token = uuid.uuid4().hex
    config = config_for(tmp_path, BTC, {"name": "tests.helpers:BuyThenHangOnce",
                                        "params": {"token": token}}, exits=NO_EXITS,
                        restart={"heartbeat_interval_s": 0.1, "heartbeat_timeout_s": 0.5})
    release = gate(token)
    try:
        with trading(config, chop({BTC: 60_000.0})) as (system, log):
            log.wait_for(is_a(OrderFilled), timeout=5, message="BTC's entry")
            assert gate(token + ":hung").wait(5), "generation 0 to hang"
            stale = system.router.pairs[BTC].ref
            assert stale is not None
            assert system.force_exit(BTC) > 0
            log.wait_for(is_a(PairRestarted, pair=BTC), timeout=5, message="BTC replaced")
            log.wait_for(lambda evs: any(isinstance(e, PositionClosed) and e.pair == BTC
                                         and e.reason is ExitReason.FLATTEN for e in evs),
                         timeout=5, message="generation 1 to sell by hand's request")
            eventually(lambda: not system.router.pairs[BTC].exit_requested, timeout=5,
                       message="the request to end with the position")
            release.set()
            eventually(lambda: not stale.is_alive(), timeout=5,
                       message="the stale actor to process its queued stop")
    finally:
        release.set()  # pykka threads are not daemons: never leave one blocked



@pytest.mark.parametrize("workers", [1, 0], ids=["one pool worker", "a thread per pair"])
def test_a_hung_pair_is_replaced_and_its_stale_generation_can_never_trade(tmp_path, workers):
    """BTC's generation 0 blocks inside the strategy; the watchdog reports it hung and the
    supervisor starts generation 1, which trades. Released at last, the stale thread answers
    BUY, but the fence drops its proposal: no order of generation 0 exists. With one pool
    worker, nothing else runs until the pool replaces the stuck worker."""
    token = uuid.uuid4().hex
    config = config_for(tmp_path, f"{BTC},{ETH}",
                        {"name": "tests.helpers:HangOnce",
                         "params": {"token": token, "above": 10_000}},
                        restart={"heartbeat_interval_s": 0.1, "heartbeat_timeout_s": 0.5},
                        pair_workers=workers)
    release = gate(token)
    try:
        with fence_warnings() as fenced, \
                trading(config, chop({BTC: 60_000.0, ETH: 3_000.0})) as (system, log):
            stale = system.router.pairs[BTC].ref
            assert stale is not None
            started = time.monotonic()
            log.wait_for(is_a(PairRestarted, pair=BTC), timeout=5, message="BTC replaced")
            replaced_after = time.monotonic() - started
            log.wait_for(lambda evs: any(isinstance(e, OrderFilled) and e.fill.pair == BTC
                                         for e in evs), timeout=5,
                         message="generation 1 to trade")
            assert stale.is_alive(), "the hung actor cannot be stopped while it is stuck"
            release.set()
            assert gate(token + ":woke").wait(5), "the stale thread woke up and said BUY"
            eventually(lambda: not stale.is_alive(), timeout=5,
                       message="the stale actor to process its queued stop")
            ticks = ticks_of(system, BTC)
            eventually(lambda: ticks_of(system, BTC) > ticks + 20, timeout=5,
                       message="generation 1 to go on")
            status = system.status()
    finally:
        release.set()  # pykka threads are not daemons: never leave one blocked

    [restart] = log.of(PairRestarted)
    assert (restart.pair, restart.generation) == (BTC, 1)
    assert "hung" in restart.error
    assert replaced_after < 3.0
    btc = status.pair(BTC)
    assert (btc.state, btc.generation, btc.restarts, btc.position > 0) == (
        "running", 1, 1, True)
    assert status.pair(ETH).restarts == 0
    orders = [order_id for (order_id,) in rows(config.state_db,
                                               "SELECT order_id FROM orders WHERE pair = ?",
                                               BTC)]
    assert orders, "generation 1 placed its entry"
    assert not [o for o in orders if "-g0-" in o], orders
    assert all("-g1-" in o for o in orders), orders
    assert "BTC/USDT: dropped ProposeOrder from stale generation 0 (current 1)" in fenced


# -- 3. crash between order submission and fill ------------------------------------------------


def test_a_crash_while_a_limit_entry_rests_never_duplicates_the_order(tmp_path):
    """Generation 0 places a limit entry at the bid and crashes while it rests. Generation 1
    finds it in its book (and does not enter again); the market then crosses the limit and
    it fills exactly once."""
    token = uuid.uuid4().hex
    config = config_for(tmp_path, BTC,
                        {"name": "tests.helpers:BuyThenCrashOnce", "params": {"token": token}},
                        speed=10.0, exits={**NO_EXITS, "entry_order_type": "limit"})
    dip = threading.Event()
    with trading(config, lambda stop: rising_then_dipping(BTC, 60_000.0, stop, dip,
                                                          START_MS)) as (system, log):
        log.wait_for(is_a(PairRestarted, pair=BTC), timeout=5, message="the crash")
        resting = system.status().pair(BTC)
        assert not log.of(OrderFilled), "the limit must still rest when the pair crashes"
        ticks = resting.ticks
        eventually(lambda: ticks_of(system, BTC) > ticks + 5, timeout=5,
                   message="generation 1 to process ticks (and its own BUY)")
        dip.set()
        log.wait_for(lambda evs: any(isinstance(e, OrderFilled) for e in evs), timeout=5,
                     message="the resting limit to fill")
        system.drain()
        status = system.status()

    assert (resting.open_orders, resting.position) == (1, 0)
    assert "crashed between submitting and filling" in log.of(PairRestarted)[0].error
    btc = status.pair(BTC)
    assert (btc.generation, btc.open_orders, btc.position > 0) == (1, 0, True)
    assert status.rejections == (), "generation 1 never even proposed a second entry"
    db = config.state_db
    orders = rows(db, "SELECT order_id, reason, order_type, status FROM orders")
    assert len(orders) == 1, orders
    [(order_id, reason, order_type, order_status)] = orders
    assert (reason, order_type, order_status) == ("entry", "limit", "filled")
    assert "-g0-" in order_id
    fills = rows(db, "SELECT fill_id, order_id, maker FROM fills")
    assert len(fills) == 1, fills
    assert fills[0][1:] == (order_id, 1)
    assert [e.fill.order_id for e in log.of(OrderFilled)] == [order_id]


# -- 4. hot swap -------------------------------------------------------------------------------


def test_a_swap_keeps_the_open_position_and_the_new_strategy_manages_it(tmp_path):
    """BTC buys and holds; swapped to a strategy that sells on cue, the position stays open
    across the swap and is then closed by the new strategy's exit signal."""
    token = uuid.uuid4().hex
    config = config_for(tmp_path, f"{BTC},{ETH}", {"name": "tests.helpers:BuyOnce"},
                        exits=NO_EXITS)
    with trading(config, chop({BTC: 60_000.0, ETH: 3_000.0})) as (system, log):
        eventually(lambda: all(p.position > 0 for p in system.status().pairs), timeout=5,
                   message="both pairs to buy")
        before = system.status().pair(BTC)
        system.swap_strategy(BTC, StrategySpec.of("tests.helpers:SellOnGate", token=token))
        log.wait_for(is_a(StrategySwapped, pair=BTC), timeout=5, message="the swap")
        eventually(lambda: ticks_of(system, BTC) > before.ticks + 50, timeout=5,
                   message="BTC to trade on under the new strategy")
        swapped = system.status().pair(BTC)
        gate(token).set()
        log.wait_for(is_a(PositionClosed, pair=BTC), timeout=5, message="the new exit")
        eventually(lambda: system.status().pair(BTC).position == 0, timeout=5,
                   message="the closed position to show")
        after = system.status()

    [event] = log.of(StrategySwapped)
    assert event.error == ""
    assert event.description == f"sell_on_gate(token={token})"
    assert before.strategy == "buy_once()"
    assert swapped.strategy == event.description
    assert (swapped.position, swapped.entry_price, swapped.trades) == (
        before.position, before.entry_price, 0)
    [closed] = log.of(PositionClosed)
    assert (closed.pair, closed.reason) == (BTC, ExitReason.EXIT_SIGNAL)
    btc, eth = after.pair(BTC), after.pair(ETH)
    assert (btc.position, btc.trades, btc.restarts, btc.generation) == (0, 1, 0, 0)
    assert (eth.strategy, eth.restarts, eth.position > 0) == ("buy_once()", 0, True)
    [(spec,)] = rows(config.state_db, "SELECT spec FROM strategies WHERE pair = ?", BTC)
    assert spec_from_json(spec) == StrategySpec.of("tests.helpers:SellOnGate", token=token)


def test_an_invalid_swap_is_refused_and_the_old_strategy_keeps_trading(tmp_path):
    """Bad specs raise ConfigError before anything is sent; a spec that builds but cannot
    warm up in the pair is refused there (an event with the error). Either way the old
    strategy goes on: same description, ticks growing, no restart."""
    config = config_for(tmp_path, f"{BTC},{ETH}", {"name": "ema_cross"})
    with trading(config, chop({BTC: 60_000.0, ETH: 3_000.0})) as (system, log):
        eventually(lambda: ticks_of(system, BTC) > 10, timeout=5, message="BTC to trade")
        before = system.status().pair(BTC)
        with pytest.raises(ConfigError, match="unknown strategy"):
            system.swap_strategy(BTC, StrategySpec.of("no_such_strategy"))
        with pytest.raises(ConfigError, match="fast=50"):
            system.swap_strategy(BTC, StrategySpec.of("ema_cross", fast=50, slow=10))
        with pytest.raises(ConfigError, match="cannot import"):
            system.swap_strategy(BTC, StrategySpec.of("no.such.module:Thing"))
        with pytest.raises(KeyError):
            system.swap_strategy("XRP/USDT", StrategySpec.of("ema_cross"))
        system.swap_strategy(BTC, StrategySpec.of("tests.helpers:BadWarmUp"))
        log.wait_for(is_a(StrategySwapped, pair=BTC), timeout=5, message="the refusal")
        eventually(lambda: ticks_of(system, BTC) > before.ticks + 100, timeout=5,
                   message="the old strategy to keep trading")
        after = system.status().pair(BTC)

    [refused] = log.of(StrategySwapped)
    assert "warm-up failed on purpose" in refused.error
    assert before.strategy == after.strategy == "ema_cross(fast=10, slow=30)"
    assert (after.state, after.restarts, after.generation) == ("running", 0, 0)
    [(spec,)] = rows(config.state_db, "SELECT spec FROM strategies WHERE pair = ?", BTC)
    assert spec_from_json(spec) == StrategySpec.of("ema_cross")


def test_a_swapped_in_strategy_that_keeps_crashing_is_rolled_back(tmp_path):
    """BTC is swapped to a strategy that raises at once. After ``rollback_after`` = 2
    crashes before it ran ``clean_ticks`` ticks, the pair is restarted with its old strategy,
    runs again, and the database records the old strategy."""
    config = config_for(tmp_path, f"{BTC},{ETH}", {"name": "ema_cross"},
                        restart={"rollback_after": 2, "max_restarts": 5})
    with trading(config, chop({BTC: 60_000.0, ETH: 3_000.0})) as (system, log):
        eventually(lambda: ticks_of(system, BTC) > 10, timeout=5, message="BTC to trade")
        before = system.status().pair(BTC)
        system.swap_strategy(BTC, StrategySpec.of("tests.helpers:RaiseAbove", above=0.0))
        log.wait_for(is_a(StrategyRolledBack, pair=BTC), timeout=5, message="the rollback")
        log.wait_for(is_a(PairRestarted, pair=BTC, restarts=2), timeout=5,
                     message="the restart with the old strategy")
        ticks = ticks_of(system, BTC)
        eventually(lambda: ticks_of(system, BTC) > ticks + 50, timeout=5,
                   message="BTC to run again")
        after = system.status()

    [swapped] = log.of(StrategySwapped)
    assert swapped.description == "raise_above(above=0)"
    [rolled] = log.of(StrategyRolledBack)
    assert (rolled.spec, rolled.crashes) == (StrategySpec.of("ema_cross"), 2)
    assert [(e.generation, e.restarts) for e in log.of(PairRestarted)] == [(1, 1), (2, 2)]
    assert not log.of(PairFailed)
    btc = after.pair(BTC)
    assert (btc.state, btc.strategy, btc.generation) == ("running", before.strategy, 2)
    assert after.pair(ETH).restarts == 0
    [(spec,)] = rows(config.state_db, "SELECT spec FROM strategies WHERE pair = ?", BTC)
    assert spec_from_json(spec) == StrategySpec.of("ema_cross")


# -- 5. pairs at runtime -----------------------------------------------------------------------


def test_pairs_are_added_paused_resumed_and_removed_while_the_others_trade(tmp_path):
    """On the simulator: SOL is added; BTC (which enters every 40 ticks) is paused, enters
    nothing while its ticks go on, and resumes; ETH is removed with flatten (its position is
    sold), SOL with hold (its position stays in the database, and is there again when SOL
    is added back). Bad requests raise."""
    config = config_for(tmp_path, f"{BTC},{ETH}",
                        {"name": "tests.helpers:Flip",
                         "params": {"period": 20, "hold_below": 10_000}},
                        speed=50.0, exits=NO_EXITS)
    with trading(config) as (system, log):
        eventually(lambda: entry_orders(log, BTC) and system.status().pair(ETH).position > 0,
                   timeout=5, message="BTC to enter and ETH to buy")

        system.add_pair(SOL)
        log.wait_for(is_a(PairAdded, pair=SOL), timeout=5, message="SOL added")
        eventually(lambda: system.status().pair(SOL).position > 0, timeout=5,
                   message="SOL to trade")
        added = system.status()

        with pytest.raises(ValueError, match="already trading"):
            system.add_pair(BTC)
        with pytest.raises(ConfigError, match="USDT"):
            system.add_pair("SOL/BTC")
        with pytest.raises(ConfigError):
            system.add_pair("not a pair")
        with pytest.raises(KeyError, match="XRP/USDT"):
            system.remove_pair("XRP/USDT")
        with pytest.raises(KeyError, match="XRP/USDT"):
            system.pause("XRP/USDT")
        with pytest.raises(ConfigError, match="policy"):
            system.remove_pair(ETH, policy="sell_everything")

        system.pause(BTC)
        assert system.status().pair(BTC).state == "paused"
        system.drain()  # an entry proposed just before the pause settles now
        entries_at_pause, ticks_at_pause = entry_orders(log, BTC), ticks_of(system, BTC)
        eventually(lambda: ticks_of(system, BTC) > ticks_at_pause + 120, timeout=5,
                   message="BTC's ticks to go on while paused (three flip cycles)")
        eventually(lambda: system.status().pair(BTC).position == 0, timeout=5,
                   message="BTC's exit to still run while paused")
        system.drain()
        assert entry_orders(log, BTC) == entries_at_pause
        paused = system.status()

        system.resume(BTC)
        assert system.status().pair(BTC).state == "running"
        eventually(lambda: len(entry_orders(log, BTC)) > len(entries_at_pause), timeout=5,
                   message="BTC to enter again after resuming")

        eth_position = system.status().pair(ETH).position
        system.remove_pair(ETH, policy="flatten")
        log.wait_for(is_a(PairRemoved, pair=ETH, policy="flatten"), timeout=5,
                     message="ETH removed")
        log.wait_for(is_a(PositionClosed, pair=ETH), timeout=5, message="ETH flattened")
        sol_position = system.status().pair(SOL).position
        system.remove_pair(SOL, policy="hold")
        log.wait_for(is_a(PairRemoved, pair=SOL, policy="hold"), timeout=5,
                     message="SOL removed")
        remaining = system.status()

        system.add_pair(SOL)  # back again: the next generation, the held position resumed
        eventually(lambda: ticks_of(system, SOL) > 20, timeout=5, message="SOL to be back")
        readded = system.status().pair(SOL)
        btc_ticks = ticks_of(system, BTC)
        eventually(lambda: ticks_of(system, BTC) > btc_ticks + 20, timeout=5,
                   message="BTC to trade on")

    assert added.pair(SOL).state == "running"
    assert added.pair(SOL).strategy == "flip(period=20, hold_below=10000)"
    assert paused.pair(BTC).state == "paused"
    assert [p.pair for p in remaining.pairs] == [BTC]
    assert (readded.state, readded.generation, readded.restarts) == ("running", 1, 0)
    assert readded.position == pytest.approx(sol_position)
    assert len(entry_orders(log, SOL)) == 1, "the re-added SOL found its position: no entry"
    assert eth_position > 0
    assert sol_position > 0
    closed = [(e.pair, e.reason) for e in log.of(PositionClosed) if e.pair != BTC]
    assert closed == [(ETH, ExitReason.FLATTEN)]
    assert {e.reason for e in log.of(PositionClosed) if e.pair == BTC} == {
        ExitReason.EXIT_SIGNAL}
    assert all(p.restarts == 0 for p in (*added.pairs, *remaining.pairs))
    db = config.state_db
    positions = dict(rows(db, "SELECT pair, amount FROM positions"))
    assert ETH not in positions
    assert positions[SOL] == pytest.approx(sol_position)
    assert rows(db, "SELECT COUNT(*) FROM orders WHERE pair = ? AND reason = 'flatten'",
                ETH) == [(1,)]


# -- 6. shutdown under load --------------------------------------------------------------------


TEN = {"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0, "SOL/USDT": 150.0, "BNB/USDT": 550.0,
       "XRP/USDT": 0.5, "ADA/USDT": 0.45, "DOGE/USDT": 0.12, "AVAX/USDT": 30.0,
       "DOT/USDT": 6.5, "LINK/USDT": 14.0}


def test_stop_under_full_load_is_quick_and_loses_no_fill(tmp_path, state_db):
    """Ten pairs entering and exiting every few ticks at speed max on an endless feed: stop
    returns within seconds, stopped, and the database (SQLite or PostgreSQL) holds exactly
    the fills it reports."""
    config = config_for(tmp_path, ",".join(TEN), {"name": "tests.helpers:Flip",
                                                  "params": {"period": 3}}, speed="max",
                        state_db=state_db)
    with trading(config, chop(TEN)) as (system, _log):
        eventually(lambda: system.status().fills >= 50, timeout=5, message="heavy trading")
        started = time.monotonic()
        final = system.stop()
        took = time.monotonic() - started

    assert took < 3.0, f"stop took {took:.2f} s"
    assert final.state == "stopped"
    assert {p.state for p in final.pairs} == {"stopped"}
    assert final.fills >= 50
    db = config.state_db
    assert rows(db, "SELECT COUNT(*) FROM fills") == [(final.fills,)]
    assert rows(db, "SELECT COUNT(*) FROM orders") == [(final.orders,)]
    assert rows(db, "SELECT COUNT(*) FROM orders WHERE status IN ('new', 'open')") == [(0,)]


# -- 7. the chaos example ----------------------------------------------------------------------


def test_the_chaos_example_survives_its_crashes_hangs_and_swaps(tmp_path):
    """``examples/chaos.py`` as a user runs it: the crashing pair restarts then fails, the
    hung one is replaced and trades again, the swap lands, the calm pairs never restart."""
    done = subprocess.run(
        [sys.executable, "examples/chaos.py", "--seconds", "6",
         "--state-db", str(tmp_path / "chaos.sqlite")],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "restart  ETH/USDT generation 1" in out
    assert "FAILED   ETH/USDT" in out
    assert "restart  SOL/USDT generation 1" in out and "hung" in out
    assert "swapped  BNB/USDT -> rsi_reversion(" in out
    assert out.count("pair      state") >= 2
    assert "final status: stopped" in out
    final = out[out.index("final status"):]
    assert "ETH/USDT  failed" in final
    assert "BTC/USDT  stopped" in final
    assert "trading  SOL/USDT generation 1 again" in out
    assert re.search(r"^crash -> trading again .*: 4 restarts, median [\d.]+ ms", out,
                     re.MULTILINE), "3 restarts of ETH and one of SOL, each trading again"
    assert re.search(r"^calm pairs' tick latency .*: calm phase median [\d.]+ ms.*; chaos "
                     r"phase median [\d.]+ ms", out, re.MULTILINE)


@pytest.mark.parametrize("service", ["risk", "execution"])
def test_risk_or_execution_failing_on_the_pair_pool_stops_the_system(tmp_path, monkeypatch,
                                                                      service):
    """Risk and paper execution run on the pairs' workers (a thread each before): a core that
    raises on an order still kills its actor, and the supervisor escalates."""
    from actors.execution import ExecutionCore
    from actors.risk import RiskBook

    def broken(self, message):
        raise RuntimeError(f"{service} bug (injected)")

    if service == "risk":
        monkeypatch.setattr(RiskBook, "check", broken)
    else:
        monkeypatch.setattr(ExecutionCore, "_submit", broken)
    ticks = scenario_ticks("chop", "BTC/USDT", seed=11, n=1500, start_ms=1_700_000_000_000)

    def endless():  # only the escalation can end this run
        yield from ticks
        last = ticks[-1]
        for i in itertools.count(1):
            yield MarketTick(pair=last.pair, ts_ms=last.ts_ms + i, price=last.price,
                             bid=last.bid, ask=last.ask)

    config = build_config({}, {"pairs": "BTC/USDT", "speed": "max",
                               "state_db": str(tmp_path / "s.sqlite")})
    assert config.pair_workers > 0
    system = TradingSystem(config, source=endless())
    with system:
        assert system.wait(30)

    assert system.status().state == "failed"
    assert f"{service} actor failed" in system.error
    assert "injected" in system.error
