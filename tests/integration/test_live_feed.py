"""Live market data through ccxt against the loopback fake Binance: the real ccxt.pro client,
the real actors, paper trading on what the fake streams.

Every wait is on an event, a status figure or the fake's subscription condition, with a
timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from loguru import logger

from actors.market.live_feed import LiveFeed
from actors.messages import (
    RISK,
    ExitReason,
    FeedStale,
    OrderFilled,
    OrderRejected,
    OrderType,
    ProposeOrder,
    Side,
    Signal,
)
from strategies.base import Strategy
from supervision.app.format import format_table
from supervision.config import build_config
from supervision.system import TradingSystem
from tests.fake_exchange import FakeBinance, to_toml
from tests.helpers import EventLog, eventually
from tests.supervision.app.test_cli import LineReader

BTC, ETH = "BTC/USDT", "ETH/USDT"
MARKETS = {BTC: {"price": 60_000}, ETH: {"price": 3_000}}


@attrs.frozen(kw_only=True)
class _Params:
    timeframe_s: float = 0.0


class BuyLive(Strategy):
    """Ignores warm-up history; BUY on the first live tick (risk refuses the rest)."""

    name = "buy_live"
    Params = _Params

    @property
    def warmup(self) -> int:
        return 0

    def warm_up(self, ticks: Any) -> None:
        pass

    def on_price(self, price: float) -> Signal:
        if getattr(self, "_done", False):
            return Signal.HOLD
        self._done = True
        return Signal.BUY


class Hold(BuyLive):
    """Never trades: the feed alone is under test."""

    name = "hold"

    def on_price(self, price: float) -> Signal:
        return Signal.HOLD


def feed_table(fake: FakeBinance, **settings: Any) -> dict[str, Any]:
    """The ``[exchange]`` table pointing ccxt at the fake (its keys left out: the feed is
    public data, and keys never go in the ccxt table)."""
    ccxt_table = {k: v for k, v in fake.ccxt_config(timeout=2000).items()
                  if k not in ("apiKey", "secret")}
    return {"id": "binance", "ccxt": ccxt_table, "reconnect_initial_s": 0.05,
            "reconnect_max_s": 0.2, **settings}


def live_system(fake: FakeBinance, tmp_path: Path, strategy: str = "hold",
                pairs: str = f"{BTC},{ETH}", **settings: Any) -> TradingSystem:
    config = build_config(
        {"exchange": feed_table(fake, **settings), "warmup_ticks": 10},
        {"pairs": pairs, "state_db": str(tmp_path / "state.sqlite"),
         "strategy": {"name": f"tests.integration.test_live_feed:{_classes[strategy]}"}})
    return TradingSystem(config)


_classes = {"hold": "Hold", "buy_live": "BuyLive"}


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(markets=MARKETS) as exchange:
        yield exchange


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """The feed's log messages at INFO and above."""
    lines: list[str] = []
    logger.enable("actors")
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    try:
        yield lines
    finally:
        logger.remove(sink)


def ticks_of(system: TradingSystem, pair: str) -> int:
    return system.status().pair(pair).ticks


@contextlib.contextmanager
def pushing(fake: FakeBinance, pair: str) -> Iterator[None]:
    """A trade of ``pair`` every 50 ms on a thread of its own, while the block runs."""
    stop = threading.Event()

    def push() -> None:
        price = 60_000.0
        while not stop.wait(0.05):
            price += 1
            fake.trade(pair, price, 0.01, "buy")

    thread = threading.Thread(target=push, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def publish(fake: FakeBinance, pair: str, prices: list[float]) -> None:
    for price in prices:
        fake.trade(pair, price, 0.01, "buy")


# -- websocket feed ------------------------------------------------------------------------------


def test_streamed_trades_become_ticks_that_are_paper_traded(fake, tmp_path):
    """ws: fake trades reach the pair as ticks; its BUY fills on the paper exchange."""
    events = EventLog()
    with live_system(fake, tmp_path, "buy_live", pairs=BTC) as system:
        system.subscribe(events)
        fake.wait_for_subscription(BTC)
        fake.set_price(BTC, 60_000, spread=2)

        publish(fake, BTC, [60_000.0, 60_001.0, 60_002.0])

        events.wait_for(lambda es: any(isinstance(e, OrderFilled) for e in es),
                        message="a paper fill")
        eventually(lambda: ticks_of(system, BTC) >= 3, message="three ticks")
        status = system.status()
    (fill,) = [e.fill for e in events.of(OrderFilled)]
    assert (fill.pair, fill.side) == (BTC, Side.BUY)
    assert 59_990 < fill.price < 60_010  # at the streamed ask, not a simulator price
    assert status.fills == 1
    assert status.feed is not None
    assert status.feed["exchange"] == "binance"


def test_a_dropped_websocket_reconnects_and_ticks_flow_again_without_duplicates(
        fake, tmp_path, log_lines):
    """ws_drop: one WARNING, a resubscribe, one INFO; each trade is one tick."""
    with live_system(fake, tmp_path, pairs=BTC) as system:
        fake.wait_for_subscription(BTC)
        publish(fake, BTC, [60_000.0, 60_001.0, 60_002.0])
        eventually(lambda: ticks_of(system, BTC) == 3, message="three ticks before the drop")
        feed = system.live_feed

        fake.inject("ws_drop")
        eventually(lambda: feed.stats().disconnects == 1, message="the drop noticed")
        fake.wait_for_subscription(BTC)
        publish(fake, BTC, [60_003.0, 60_004.0])
        eventually(lambda: ticks_of(system, BTC) == 5, message="ticks after the reconnect")
        eventually(lambda: feed.stats().reconnects == 1, message="the reconnect noticed")
        stats = feed.stats()
        history = system._market_core.history(BTC)

    assert [t.price for t in history[-5:]] == [60_000.0, 60_001.0, 60_002.0, 60_003.0,
                                               60_004.0]
    assert stats.dropped_for(BTC)["duplicate"] == 0  # nothing resent: nothing to drop
    assert sum("interrupted" in line for line in log_lines) == 1
    assert sum("flowing again" in line for line in log_lines) == 1


# -- REST feed -----------------------------------------------------------------------------------


def test_rest_polling_drops_and_counts_malformed_replies_and_never_ticks_on_them(
        fake, tmp_path):
    """A 200 reply that is not JSON becomes a ticker of Nones in ccxt: counted, not traded."""
    fake.set_price(BTC, 60_000, spread=2)
    fake.inject("malformed_json", path="/api/v3/ticker/24hr", times=3)
    with live_system(fake, tmp_path, pairs=BTC, feed="rest", poll_interval_s=0.05) as system:
        feed = system.live_feed
        eventually(lambda: sum(feed.stats().dropped_for(BTC).values()) >= 3,
                   message="three malformed replies counted")
        eventually(lambda: ticks_of(system, BTC) >= 2, message="ticks from good replies")
        history = system._market_core.history(BTC)
        status = system.status()

    assert feed.stats().dropped_for(BTC)["missing_field"] >= 3
    assert all(t.is_sane() for t in history)
    assert all(t.price == 60_000.0 for t in history if t.ts_ms > 0)
    assert dict(status.ticks_dropped)["missing_field"] >= 3
    assert status.pair(BTC).ticks_dropped >= 3


def test_rest_polling_backs_off_on_server_errors_and_recovers(fake, tmp_path, log_lines):
    """5xx and 429 replies: the poller waits and retries; one outage is logged once."""
    fake.set_price(BTC, 60_000, spread=2)
    fake.inject("http_5xx", path="/api/v3/ticker/24hr", times=2, status=502, body="html")
    fake.inject("http_429", path="/api/v3/ticker/24hr", times=1, retry_after=0)
    with live_system(fake, tmp_path, pairs=BTC, feed="rest", poll_interval_s=0.05) as system:
        feed = system.live_feed
        eventually(lambda: feed.stats().reconnects == 1, message="the outage ended")
        eventually(lambda: ticks_of(system, BTC) >= 1, message="ticks after the outage")

    assert feed.stats().disconnects == 1
    assert sum("interrupted" in line for line in log_lines) == 1


def test_an_exchange_without_recent_trades_is_polled_by_its_ticker_alone(fake, tmp_path,
                                                                          log_lines):
    """fetch_trades refused (an endpoint the exchange lacks): said once, tickers still tick."""
    fake.set_price(BTC, 60_000, spread=2)
    ccxt_table = feed_table(fake)["ccxt"]
    ccxt_table["options"]["fetchTradesMethod"] = "publicGetHistoricalTrades"  # not served
    with live_system(fake, tmp_path, pairs=BTC, feed="rest", poll_interval_s=0.05,
                     ccxt=ccxt_table) as system:
        eventually(lambda: ticks_of(system, BTC) >= 3, message="ticker ticks")
        stats = system.live_feed.stats()

    assert sum("does not serve recent trades" in line for line in log_lines) == 1
    assert stats.disconnects == 0


def test_closing_the_feed_ends_its_ticks_and_is_safe_twice(fake):
    """close() stops the loop thread and ends ticks(); before start it only marks closed."""
    settings = build_config({"exchange": feed_table(fake)}, {"pairs": BTC}).exchange_settings
    never_started = LiveFeed("binance", settings, [BTC]).open()
    never_started.close()
    assert list(never_started.ticks()) == []

    feed = LiveFeed("binance", settings, [BTC]).open()
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.extend(feed.ticks()), daemon=True)
    reader.start()
    fake.wait_for_subscription(BTC)
    publish(fake, BTC, [60_000.0])
    eventually(lambda: len(got) == 1, message="one tick")

    feed.close()
    feed.close()
    reader.join(5)

    assert not reader.is_alive()
    assert not feed.stats().running
    assert got[0].price == 60_000.0


# -- staleness -----------------------------------------------------------------------------------


def test_a_silent_feed_goes_stale_refuses_entries_then_fresh_data_allows_them(
        fake, tmp_path, log_lines):
    """No data for stale_after_s: FeedStale, health says so, an entry is refused with
    stale_feed; a fresh trade lifts it and the pair's BUY fills."""
    events = EventLog()
    with live_system(fake, tmp_path, "buy_live", pairs=BTC, stale_after_s=0.3) as system:
        system.subscribe(events)
        events.wait_for(lambda es: any(isinstance(e, FeedStale) and e.stale for e in es),
                        message="the pair going stale")
        health = system.health()
        handle = system.router.pairs[BTC]
        # A decision made on data that arrived before the silence, still in flight:
        system.router.tell(RISK, ProposeOrder(
            proposal_id="late", pair=BTC, generation=handle.generation, side=Side.BUY,
            order_type=OrderType.MARKET, reason=ExitReason.ENTRY, price=60_000.0,
            bid=59_999.0, ask=60_001.0, ts_ms=1))
        events.wait_for(lambda es: any(isinstance(e, OrderRejected) for e in es),
                        message="the late entry refused")
        stale_status = system.status()
        scrape = system.metrics.exposition().decode()

        fake.wait_for_subscription(BTC)
        fake.set_price(BTC, 60_000, spread=2)
        with pushing(fake, BTC):  # fresh data keeps coming, however slow the machine is
            events.wait_for(lambda es: any(isinstance(e, OrderFilled) for e in es),
                            message="an entry once data is fresh")

    (rejected,) = events.of(OrderRejected)
    assert (rejected.reason, rejected.pair) == ("stale_feed", BTC)
    assert not health.healthy
    assert health.stale_pairs == (BTC,)
    assert health.as_dict()["stale_pairs"] == [BTC]
    assert stale_status.pair(BTC).stale
    table = format_table(stale_status)
    assert "running (stale)" in table
    assert "STALE FEED: BTC/USDT" in table
    assert 'trade_conductor_feed_stale{pair="BTC/USDT"} 1.0' in scrape
    notices = [(e.stale, e.pair) for e in events.of(FeedStale)]
    assert notices[:2] == [(True, BTC), (False, BTC)]
    # one log line per change, each way
    assert sum("no market data" in line for line in log_lines) == notices.count((True, BTC))
    assert sum("market data is back" in line for line in log_lines) == notices.count(
        (False, BTC))


def test_strategies_warm_up_on_the_exchanges_last_closed_one_minute_candles(fake, tmp_path):
    """fetch_ohlcv 1m: four ticks per closed candle, about warmup_ticks of them, oldest first."""
    minute = 60_000
    now_bar = int(time.time() * 1000) // minute * minute
    rows = [[now_bar - (5 - i) * minute, 100.0 + i, 102.0 + i, 99.0 + i, 101.0 + i, 1.0]
            for i in range(5)]  # five closed candles, rising
    fake.seed_klines(BTC, "1m", rows)

    with live_system(fake, tmp_path, pairs=BTC) as system:
        history = system._market_core.history(BTC)

    assert len(history) == 10  # warmup_ticks
    assert [t.price for t in history[-4:]] == [104.0, 103.0, 106.0, 105.0]
    assert history[-1].ts_ms == rows[-1][0] + 45_000
    assert all(t.is_sane() for t in history)


def test_a_pair_the_exchange_does_not_list_is_refused_before_anything_starts(fake, tmp_path):
    """Bad input: the error names the pair and the close matches; no database is made."""
    from supervision.config import ConfigError

    system = live_system(fake, tmp_path, pairs="BTC/USDC")
    with pytest.raises(ConfigError, match=r"BTC/USDC is not a market at binance.*BTC/USDT"):
        system.start()
    assert not (tmp_path / "state.sqlite").exists()


# -- the command line ------------------------------------------------------------------------------


def test_the_cli_paper_trades_live_data_from_a_config_file(fake, tmp_path):
    """``--exchange binance`` with a config file whose ccxt table points at the fake: ticks
    show in the table, SIGINT stops it with exit 0, and --summary-json has the pair's ticks."""
    config = tmp_path / "live.toml"
    config.write_text(to_toml({"exchange": feed_table(fake)}))
    summary = tmp_path / "summary.json"
    with open(tmp_path / "stderr.log", "w", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "supervision.main", "--pairs", f"{BTC},{ETH}",
             "--exchange", "binance", "--config", str(config), "--status-interval", "0.3",
             "--state-db", str(tmp_path / "s.sqlite"), "--summary-json", str(summary),
             "--log-dir", str(tmp_path / "logs")],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        lines = LineReader(proc.stdout)
        with pushing(fake, BTC):  # trades pushed before the subscription are simply lost
            lines.wait_for(re.compile(r"\bticks [1-9]\d*\s+dropped"), timeout=60)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()

    stderr = (tmp_path / "stderr.log").read_text(encoding="utf-8")
    assert code == 0, stderr
    result = json.loads(summary.read_text())
    btc = next(p for p in result["pairs"] if p["pair"] == BTC)
    assert btc["ticks"] > 0
    assert result["feed"]["exchange"] == "binance"
    assert "live market data from binance" in stderr
