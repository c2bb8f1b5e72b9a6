"""Recorded market data through the real actors (``TradingSystem``, replay at speed "max").

The recorded files live in ../shared/data; every test that reads one skips cleanly where it is
absent (``tests.helpers.shared_file``). The corrupted-rows test writes its own file.

The month of BTC/USDT 1m candles (42,915 rows, 171,660 ticks) runs whole, once per module, in
about 5 s through the actors (2 s threadless), so no slice is needed for it. It trades
``rsi_reversion`` on 5-minute closes: a dip buyer is in the market when the 2021-05-19 crash
hits. The default ``ema_cross`` on every tick churns ~570 fee-losing round trips in five days
and meets the 15 % drawdown kill switch on 2021-04-25, long before the crash.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import attrs
import pytest

from actors.messages import ExitReason, OrderFilled, PositionClosed, Side, StrategySpec
from supervision import SystemConfig, SystemStatus, TradingSystem, build_config
from supervision.runtime.threadless import SyncRuntime
from tests.helpers import EventLog, shared_file

MONTH = "binance_btcusdt_1m_2021-04-20_2021-05-20.csv"
BTC_TAPE = "binance_btcusdt_trades_2024-08-08T2354_2024-08-09T0005.csv"
ETH_TAPE = "binance_ethusdt_trades_2024-08-08T2354_2024-08-09T0005.csv"
CRASH_DAY = dt.date(2021, 5, 19)
CRASH_WEEK_FROM = dt.datetime(2021, 5, 13, tzinfo=dt.UTC)
DIP_BUYER = StrategySpec.of("rsi_reversion", timeframe_s=300)
START_MS = 1_700_000_000_000


def replay_config(db: str, replay: tuple[tuple[str, str], ...], **overrides: object
                  ) -> SystemConfig:
    return build_config({}, {"replay": replay, "speed": "max", "state_db": db, **overrides})


def run_actors(config: SystemConfig, timeout: float = 60.0) -> tuple[SystemStatus, EventLog]:
    """Run the actor system until the replay ends by itself; the final status and events."""
    log = EventLog()
    system = TradingSystem(config)
    system.subscribe(log)
    with system:
        assert system.wait(timeout), f"the replay did not end within {timeout} s"
    return system.status(), log


def run_threadless(config: SystemConfig) -> list[object]:
    """The same config through ``SyncRuntime``; its events, in order."""
    runtime = SyncRuntime(config)
    events: list[object] = []
    runtime.on_event = events.append
    try:
        runtime.run()
    finally:
        runtime.close()
    return events


def fills_of(events: list[object]) -> list[tuple[int, Side, float, float]]:
    return [(e.fill.ts_ms, e.fill.side, e.fill.price, e.fill.amount)
            for e in events if isinstance(e, OrderFilled)]


def rows_in(path: str | Path) -> int:
    with open(path, encoding="utf-8") as fh:
        return sum(1 for _ in fh) - 1


def utc_day(ts_ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).date()


def fills_in_db(db: str) -> int:
    with sqlite3.connect(db) as conn:
        count: int = conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    return count


@attrs.frozen
class MonthRun:
    path: str
    config: SystemConfig
    status: SystemStatus
    log: EventLog


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> MonthRun:
    """The whole month of BTC/USDT candles through the actors, once for the tests below."""
    path = shared_file(MONTH)
    db = str(tmp_path_factory.mktemp("month") / "state.sqlite")
    config = replay_config(db, (("BTC/USDT", path),), strategy=DIP_BUYER)
    status, log = run_actors(config)
    return MonthRun(path, config, status, log)


@pytest.mark.shared_data
def test_a_month_of_candles_runs_to_the_end_with_four_ticks_per_candle(month):
    """The replay ends by itself after open, low/high, high/low and close of every row."""
    rows = rows_in(month.path)

    btc = month.status.pair("BTC/USDT")

    assert month.status.state == "finished"
    assert month.status.ticks_accepted == btc.ticks == 4 * rows
    assert (btc.ticks_dropped, btc.ticks_shed) == (0, 0)
    assert month.status.fills > 0


@pytest.mark.shared_data
def test_the_state_database_holds_every_fill_of_the_month(month):
    """The fills table counts exactly the fills the final status reports."""
    assert fills_in_db(month.config.state_db) == month.status.fills


@pytest.mark.shared_data
def test_the_2021_05_19_crash_is_stopped_out(month):
    """A dip bought during the crash day is closed by the stop-loss, not held down."""
    stops = [c for c in month.log.of(PositionClosed)
             if c.reason is ExitReason.STOP_LOSS and utc_day(c.ts_ms) == CRASH_DAY]

    assert stops, "no stop-loss closed a position on 2021-05-19"


@pytest.mark.shared_data
def test_no_round_trip_of_the_month_loses_a_tenth_of_its_stake(month):
    """Stops and fees bound every loss: none reaches 10 % of the 1,000 USDT stake."""
    config = month.config
    stake = config.risk.stake_fraction * config.funding[config.quote]
    closed = month.log.of(PositionClosed)

    worst = min(c.pnl for c in closed)

    assert len(closed) == month.status.pair("BTC/USDT").trades
    assert worst > -0.1 * stake, f"a round trip lost {worst:.2f} {config.quote}"


@pytest.mark.shared_data
def test_two_recorded_trade_tapes_run_as_two_pairs_and_every_row_is_processed(tmp_path):
    """BTC and ETH trades of the same 11 minutes, merged in time: both pairs see every row."""
    btc, eth = shared_file(BTC_TAPE), shared_file(ETH_TAPE)
    config = replay_config(str(tmp_path / "state.sqlite"),
                           (("BTC/USDT", btc), ("ETH/USDT", eth)))

    status, _ = run_actors(config)

    assert status.state == "finished"
    for pair, path in (("BTC/USDT", btc), ("ETH/USDT", eth)):
        figures = status.pair(pair)
        assert (figures.ticks, figures.ticks_shed, figures.ticks_dropped) == (rows_in(path), 0, 0)
        assert figures.trades > 0, f"{pair} never traded"
    assert status.ticks_accepted == rows_in(btc) + rows_in(eth)


@pytest.mark.shared_data
def test_the_actors_fill_exactly_as_the_threadless_core_through_the_crash_week(tmp_path):
    """2021-05-13..20 (11,321 candles): the same fills, in order, from actors and SyncRuntime."""
    week = tmp_path / "crash_week.csv"
    since_ms = int(CRASH_WEEK_FROM.timestamp() * 1000)
    with open(shared_file(MONTH), encoding="utf-8") as src, week.open("w") as dst:
        dst.write(next(src))
        dst.writelines(row for row in src if int(row.split(",", 1)[0]) >= since_ms)
    replay = (("BTC/USDT", str(week)),)

    expected = fills_of(run_threadless(replay_config(":memory:", replay, strategy=DIP_BUYER)))
    _, log = run_actors(replay_config(str(tmp_path / "state.sqlite"), replay,
                                      strategy=DIP_BUYER))

    assert len(expected) > 20
    assert fills_of(log.events) == expected


@pytest.mark.shared_data
def test_the_actors_fill_exactly_as_the_threadless_core_over_the_whole_month(month):
    """The month's fills from the actors equal SyncRuntime's, trailing stops included."""
    replay = (("BTC/USDT", month.path),)

    expected = fills_of(run_threadless(replay_config(":memory:", replay, strategy=DIP_BUYER)))

    assert fills_of(month.log.events) == expected


def test_corrupted_rows_are_dropped_counted_and_never_traded(tmp_path):
    """NaN, zero, non-numeric and backwards rows: dropped by reason, counted, never traded."""
    t = START_MS
    rows = [
        f"{t},nan,0.1,buy",             # NaN price
        f"{t + 1000},0,0.1,sell",       # zero price
        f"{t + 2000},abc,0.1,buy",      # non-numeric price
        f"{t + 3000},60000,0.1,buy",    # good: BuyOnce buys here, at the ask
        f"{t + 4000},60010,0.1,buy",    # good
        f"{t + 1500},1.0,0.1,sell",     # backwards: traded, it would fire the stop-loss
        f"{t + 5000},60020,0.1,sell",   # good
        f"{t + 4500},30000,0.1,sell",   # backwards again
        "soon,60000,0.1,buy",           # non-numeric timestamp
        f"{t + 6000},60030,0.1,buy",    # good
    ]
    path = tmp_path / "corrupted.csv"
    path.write_text("timestamp_ms,price,amount,side\n" + "\n".join(rows) + "\n")
    config = replay_config(str(tmp_path / "state.sqlite"), (("BTC/USDT", str(path)),),
                           strategy={"name": "tests.helpers:BuyOnce"})

    status, log = run_actors(config, timeout=30)

    btc = status.pair("BTC/USDT")
    assert dict(status.ticks_dropped) == {"bad_price": 4, "time_backwards": 2,
                                          "unknown_pair": 0}
    assert (btc.ticks, btc.ticks_dropped) == (4, 6)
    assert [(side, price) for _, side, price, _ in fills_of(log.events)] == [
        (Side.BUY, pytest.approx(60_000, rel=1e-3))]
    assert log.of(PositionClosed) == []
    assert btc.position > 0
