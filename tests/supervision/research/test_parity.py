"""Parity: a backtest and a ``--replay --speed max`` run through the actors make the same
fills on the same data (one pair), fill for fill."""

from __future__ import annotations

import pytest

from actors.messages import OrderFilled, StrategySpec
from supervision import TradingSystem, build_config
from supervision.research import from_files, run_backtest
from supervision.research.recorder import fills_digest
from supervision.research.timeframes import TimeRange
from tests.helpers import EventLog, shared_file
from tests.supervision.research.data import write_candles


def actor_fills(path: str, spec: StrategySpec, db: str) -> list:
    config = build_config({}, {"replay": (("BTC/USDT", path),), "speed": "max",
                               "state_db": db, "strategy": spec})
    log = EventLog()
    system = TradingSystem(config)
    system.subscribe(log)
    with system:
        assert system.wait(90), "the replay did not end"
    return [e.fill for e in log.of(OrderFilled)]


def assert_same_fills(path: str, spec: StrategySpec, db: str) -> None:
    run = run_backtest(build_config({}, {"pairs": "BTC/USDT", "strategy": spec}),
                       from_files([("BTC/USDT", path)], TimeRange()))
    fills = actor_fills(path, spec, db)
    assert len(fills) == run.recording.fills > 10
    assert fills_digest(fills) == run.recording.digest


def test_backtest_and_the_actors_fill_alike_on_a_random_walk(tmp_path):
    """3,000 minutes, ema_cross on every tick: the same fills, by time, side, price, size."""
    path = write_candles(tmp_path / "walk.csv", 3000, seed=11)
    assert_same_fills(str(path), StrategySpec.of("ema_cross"), str(tmp_path / "state.db"))


@pytest.mark.shared_data
def test_backtest_and_the_actors_fill_alike_on_a_recorded_month(tmp_path):
    """A month of Binance BTC/USDT minutes with the dip buyer on 5-minute closes."""
    path = shared_file("binance_btcusdt_1m_2021-04-20_2021-05-20.csv")
    assert_same_fills(path, StrategySpec.of("rsi_reversion", timeframe_s=300),
                      str(tmp_path / "state.db"))
