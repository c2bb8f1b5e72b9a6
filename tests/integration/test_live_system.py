"""The whole system in live mode (``--live``) against the loopback fake Binance.

Write-ahead before the create, restart reconciliation (exactly once), keys refused or kept
out of logs and the database. Retry delays are milliseconds; waits are on conditions.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import pytest
from loguru import logger

from actors.messages import (
    Fill,
    MarketTick,
    Order,
    OrderStatus,
    OrderUpdated,
    Side,
    StrategySpec,
)
from actors.state.store import open_store
from supervision import TradingSystem, build_config
from supervision.config import ConfigError
from tests.fake_exchange import FakeBinance
from tests.helpers import EventLog, eventually
from tests.integration.test_live_orders import MARKETS, ORDER_PATH, assert_agrees, ccxt_table

API_KEY = "tcTESTKEY" + "A1b2C3d4" * 6
SECRET = "tcTESTSECRET" + "Z9y8X7w6" * 6


def live_config(fake: FakeBinance, db: str, *, entry: str = "market", **exchange: Any) -> Any:
    return build_config(
        {"exchange": {"id": "binance", "live": True, "ccxt": ccxt_table(fake, 400),
                      "retry_initial_s": 0.01, "retry_max_s": 0.05, "order_retries": 5,
                      **exchange},
         "exits": {"entry_order_type": entry}},
        {"pairs": "BTC/USDT", "strategy": StrategySpec.of("tests.helpers:BuyOnce"),
         "state_db": db})


def ticks(stop: threading.Event, price: float = 60_000.0) -> Iterator[MarketTick]:
    """BTC ticks at ``price`` every 20 ms until ``stop``; market time is wall time."""
    idle = threading.Event()
    while not stop.is_set():
        now = int(time.time() * 1000)
        yield MarketTick(pair="BTC/USDT", ts_ms=now, price=price, bid=price - 0.01,
                         ask=price + 0.01)
        idle.wait(0.02)


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDUCTOR_BINANCE_API_KEY", API_KEY)
    monkeypatch.setenv("CONDUCTOR_BINANCE_SECRET", SECRET)


@contextlib.contextmanager
def running(config: Any, subscriber: Any = None) -> Iterator[TradingSystem]:
    """A started system; ``subscriber`` hears events before the system's own listeners (the
    gateway's wait for a committed intent among them), as it subscribes before the start."""
    stop = threading.Event()
    system = TradingSystem(config, source=ticks(stop))
    if subscriber is not None:
        system.subscribe(subscriber)
    try:
        with system:
            yield system
    finally:
        stop.set()


def db_fills(db: str) -> list[Fill]:
    with open_store(db) as store:
        return store.fills()


def db_orders(db: str) -> list[Order]:
    with open_store(db) as store:
        return store.orders()


def test_live_without_keys_refuses_to_start_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--live with no keys: a ConfigError naming the variables; no database appears."""
    monkeypatch.delenv("CONDUCTOR_BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("CONDUCTOR_BINANCE_SECRET", raising=False)
    db = str(tmp_path / "live.sqlite")
    with FakeBinance(MARKETS, api_key=API_KEY, secret=SECRET) as fake, \
            pytest.raises(ConfigError, match="CONDUCTOR_BINANCE_API_KEY"):
        TradingSystem(live_config(fake, db)).start()
    assert not os.path.exists(db)


@pytest.mark.parametrize(("mode", "expected"), [
    (None, "CONDUCTOR_BINANCE_API_KEY"),
    (0o644, "chmod 600"),
])
def test_the_cli_refuses_live_without_usable_keys(tmp_path: Path, mode: int | None,
                                                  expected: str) -> None:
    """``--live`` with no keys, or keys in a file others can read: exit 2, one clear line,
    no database; nothing reaches the network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUCTOR_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    args = [sys.executable, "-m", "supervision.main", "--exchange", "binance", "--live",
            "--pairs", "BTC/USDT", "--state-db", "s.sqlite", "--log-dir", "logs"]
    if mode is not None:
        secrets = tmp_path / "keys.toml"
        secrets.write_text(f'api_key = "{API_KEY}"\nsecret = "{SECRET}"\n')
        secrets.chmod(mode)
        (tmp_path / "run.toml").write_text('[exchange]\nid = "binance"\n'
                                           'secrets_file = "keys.toml"\n')
        args += ["--config", "run.toml"]
    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert SECRET not in result.stderr
    assert not (tmp_path / "s.sqlite").exists()


@pytest.mark.usefixtures("keys")
def test_a_live_entry_is_recorded_ahead_filled_once_and_agrees_with_the_exchange(
        state_db: str) -> None:
    """The order reaches the exchange only after its intent is in the database (SQLite or
    PostgreSQL); afterwards the database's order and fills are the exchange's."""
    db = state_db
    with FakeBinance(MARKETS, {"USDT": 10_000}, API_KEY, SECRET, fee_rate=0.001) as fake:
        seen_new: list[bool] = []

        def on_event(event: object) -> None:
            if isinstance(event, OrderUpdated) and event.order.status is OrderStatus.NEW:
                seen_new.append(not fake.orders())

        # Subscribed first: it sees the committed NEW before the gateway is let go to send
        # the create (subscribed after the start, a busy machine let the create win the race).
        with running(live_config(fake, db), on_event) as system:
            eventually(lambda: len(fake.my_trades()) == 1, 10, "the entry to fill")
            eventually(lambda: system.status().pairs[0].position > 0, 5, "the position")
        assert seen_new == [True], "the NEW intent must be committed before the create"
        orders = db_orders(db)
        assert [o.status for o in orders] == [OrderStatus.FILLED]
        assert_agrees(fake, orders[0].order_id, db_fills(db))


@pytest.mark.usefixtures("keys")
def test_live_market_data_and_live_orders_run_end_to_end(tmp_path: Path) -> None:
    """No custom source: ticks come from the fake's websocket trades through the live feed,
    and the entry they trigger is filled at the fake and booked once."""
    db = str(tmp_path / "live.sqlite")
    with FakeBinance(MARKETS, {"USDT": 10_000}, API_KEY, SECRET) as fake, \
            TradingSystem(live_config(fake, db)) as system:
        fake.wait_for_subscription("BTC/USDT", "trade", timeout=10)
        fake.set_price("BTC/USDT", 60_000, spread=0.02)
        fake.trade("BTC/USDT", 60_000, 0.01)
        eventually(lambda: system.status().pairs[0].position > 0, 10, "the entry")
        [order] = fake.orders()
    gateways = [t for t in threading.enumerate() if t.name == "ccxt-gateway"]
    assert gateways == [], "the execution actor's stop closes the gateway and its loop"
    assert [o.status for o in db_orders(db)] == [OrderStatus.FILLED]
    assert_agrees(fake, order.client_order_id, db_fills(db))


@pytest.mark.usefixtures("keys")
def test_a_round_trip_with_the_fee_taken_in_base_leaves_no_position(tmp_path: Path) -> None:
    """Binance takes a buy's fee in the base: the exit sells what is left, floored to the
    lot, and the dust below the lot does not keep the position open."""
    db = str(tmp_path / "live.sqlite")
    with FakeBinance(MARKETS, {"USDT": 10_000}, API_KEY, SECRET, fee_rate=0.001) as fake:
        config = build_config(
            {"exchange": {"id": "binance", "live": True, "ccxt": ccxt_table(fake, 400),
                          "retry_initial_s": 0.01, "retry_max_s": 0.05}},
            {"pairs": "BTC/USDT", "state_db": db,
             "strategy": StrategySpec.of("tests.helpers:Flip", period=5)})
        with running(config) as system:
            eventually(lambda: len(fake.my_trades()) >= 2, 10, "a buy and a sell")
            eventually(lambda: system.status().pairs[0].trades >= 1, 5, "the round trip")
            assert system.status().pairs[0].position == 0
        orders = db_orders(db)
        assert [o.side for o in orders][:2] == [Side.BUY, Side.SELL]
        assert orders[1].status is OrderStatus.FILLED
        for order in orders:
            assert_agrees(fake, order.order_id,
                          [f for f in db_fills(db) if f.order_id == order.order_id])


@pytest.mark.usefixtures("keys")
@pytest.mark.parametrize(("fault", "options"), [
    ("http_429", {"retry_after": 0}),
    ("http_418", {"retry_after": 0}),
    ("http_5xx", {"process": True}),
    ("malformed_json", {"process": True}),
    ("accept_then_timeout", {"delay": 2.0}),
])
def test_the_database_agrees_with_the_exchange_after_a_failing_create(
        tmp_path: Path, fault: str, options: dict[str, Any]) -> None:
    """Through the whole system: one order at the exchange, FILLED in the database, the
    database's fills are the exchange's trades."""
    db = str(tmp_path / "live.sqlite")
    with FakeBinance(MARKETS, {"USDT": 10_000}, API_KEY, SECRET, fee_rate=0.001) as fake:
        fake.inject(fault, ORDER_PATH, method="POST", **options)
        with running(live_config(fake, db)) as system:
            eventually(lambda: system.status().pairs[0].position > 0, 10, "the entry")
        [placed] = fake.orders()
        assert [o.status for o in db_orders(db)] == [OrderStatus.FILLED]
        assert_agrees(fake, placed.client_order_id, db_fills(db))


@pytest.mark.usefixtures("keys")
def test_a_stop_between_accept_and_answer_is_reconciled_exactly_once(
        state_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exchange accepted the entry but the reply never came, and no look-up could say
    so, before the stop (its settling gave up): the next start finds the NEW intent by its
    client id in the database (SQLite or PostgreSQL), adopts it and books its fill once."""
    db = state_db
    monkeypatch.setattr("actors.execution.gateway.SETTLE_S", 0.5)
    with FakeBinance(MARKETS, {"USDT": 10_000}, API_KEY, SECRET) as fake:
        fake.inject("accept_then_timeout", ORDER_PATH, method="POST", times=None, delay=30)
        fake.inject("http_5xx", ORDER_PATH, method="GET", times=None)  # look-ups fail
        with running(live_config(fake, db)):
            eventually(lambda: len(fake.orders()) == 1, 10, "the create to reach the exchange")
        fake.clear_faults()
        order_id = fake.orders()[0].client_order_id
        assert [(o.order_id, o.status) for o in db_orders(db)] == [(order_id, OrderStatus.NEW)]
        assert db_fills(db) == []
        with running(live_config(fake, db)) as system:
            report = system.reconcile_report
            assert report is not None
            assert report.closed == ((order_id, "filled"),)
            assert len(report.missed_fills) == 1
            eventually(lambda: system.status().pairs[0].position > 0, 5, "the position")
        with running(live_config(fake, db)) as system:
            assert system.reconcile_report is not None
            assert system.reconcile_report.checked == 0
            assert system.reconcile_report.clean  # its trade is booked: nothing unaccounted
        assert len(fake.orders()) == 1
        assert [o.status for o in db_orders(db)] == [OrderStatus.FILLED]
        assert_agrees(fake, order_id, db_fills(db))


@pytest.mark.usefixtures("keys")
def test_a_resting_order_filled_while_stopped_is_booked_once_at_the_next_start(
        state_db: str) -> None:
    """A limit entry rests at the exchange when the system stops and fills meanwhile; the
    next start (on SQLite or PostgreSQL) closes it as FILLED with its fill, exactly once,
    and holds the position."""
    db = state_db
    with FakeBinance(MARKETS, {"USDT": 10_000}, API_KEY, SECRET) as fake:
        fake.set_price("BTC/USDT", 60_100, spread=1)  # above our ticks: the bid limit rests
        with running(live_config(fake, db, entry="limit")):
            eventually(lambda: [o.status for o in fake.orders()] == ["NEW"], 10,
                       "the limit to rest at the exchange")
        [resting] = fake.orders()
        assert [o.status for o in db_orders(db)] == [OrderStatus.OPEN]
        fake.set_price("BTC/USDT", 59_900, spread=1)  # crosses it: filled while we are away
        # someone else trades on the account meanwhile: a market buy and a resting limit
        other = ccxt.binance(fake.ccxt_config(apiKey=API_KEY, secret=SECRET, timeout=2000))
        other.create_order("BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": "hand"})
        other.create_order("BTC/USDT", "limit", "buy", 0.001, 50_000, {"clientOrderId": "hand2"})
        with running(live_config(fake, db, entry="limit")) as system:
            report = system.reconcile_report
            assert report is not None
            assert report.closed == ((resting.client_order_id, "filled"),)
            [hand, hand2] = fake.orders()[1:]
            assert report.foreign_orders == (str(hand2.order_id),)
            assert [(xid, amount) for _, xid, amount in report.unbooked_trades] == [
                (str(hand.order_id), 0.001)]
            eventually(lambda: system.status().pairs[0].position > 0, 5, "the position")
        with running(live_config(fake, db, entry="limit")) as system:
            assert system.reconcile_report is not None
            assert system.reconcile_report.missed_fills == ()
            assert len(system.reconcile_report.unbooked_trades) == 1  # the hand trade only
        assert len(fake.orders()) == 3
        assert_agrees(fake, resting.client_order_id, db_fills(db))


@pytest.mark.usefixtures("keys")
def test_keys_and_signatures_never_reach_logs_errors_or_the_database(tmp_path: Path) -> None:
    """With a 5xx and a rejection on the way, no log line, reason or database byte holds the
    API key, the secret or a signature."""
    db = str(tmp_path / "live.sqlite")
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message}")
    logger.enable("actors")
    logger.enable("supervision")
    try:
        with FakeBinance(MARKETS, {"USDT": 10_000}, API_KEY, SECRET) as fake:
            fake.inject("http_5xx", ORDER_PATH, method="POST", status=502, body="html")
            fake.inject("http_5xx", ORDER_PATH, method="GET", status=503)  # the signed look-up
            fake.inject("insufficient_balance", ORDER_PATH)
            events = EventLog()
            with running(live_config(fake, db)) as system:
                system.subscribe(events)
                events.wait_for(lambda evs: any(
                    isinstance(e, OrderUpdated) and e.order.status is OrderStatus.REJECTED
                    for e in evs), 10, "the rejected entry")
    finally:
        logger.disable("actors")
        logger.disable("supervision")
        logger.remove(sink)
    text = "\n".join(lines)
    assert "rejected" in text
    assert "looking up order" in text
    for secret in (API_KEY, SECRET, API_KEY[-12:], SECRET[-12:], "signature="):
        assert secret not in text
    [order] = db_orders(db)
    assert order.reject_reason.startswith("InsufficientFunds: Account has insufficient")
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("live"))
    assert b"insufficient balance" in raw
    for secret in (API_KEY, SECRET):
        assert secret.encode() not in raw
        assert secret[-12:].encode() not in raw


@pytest.mark.usefixtures("keys")
def test_a_graceful_stop_closes_an_order_still_waiting_to_be_sent_as_not_sent(
        tmp_path: Path) -> None:
    """The exchange refuses the create with a 429 and a Retry-After longer than the run: the
    stop wakes the waiting create, and the intent is closed as not sent instead of staying
    NEW in the database (the next start would otherwise find it open)."""
    db = str(tmp_path / "live.sqlite")
    with FakeBinance(MARKETS, {"USDT": 10_000}, API_KEY, SECRET) as fake:
        fake.inject("http_429", ORDER_PATH, method="POST", times=None, retry_after=30)
        with running(live_config(fake, db)):
            eventually(lambda: any(r.method == "POST" and r.path == ORDER_PATH
                                   for r in fake.requests), 10, "the refused create")
        assert fake.orders() == []
        [order] = db_orders(db)
        assert order.status is OrderStatus.REJECTED
        assert order.reject_reason.startswith("not_sent")
        creates = [r for r in fake.requests if r.method == "POST" and r.path == ORDER_PATH]
        assert [r.handled for r in creates] == [False]


@pytest.mark.usefixtures("keys")
def test_a_position_whose_trades_come_late_is_booked_at_once_and_counted_once(
        tmp_path: Path) -> None:
    """Through the whole system: the entry's trades are hidden, so the position is booked
    from an inferred fill after the grace period; the trades, once listed, replace it, and the
    database's fills and balances are the exchange's."""
    db = str(tmp_path / "live.sqlite")
    with FakeBinance(MARKETS, {"USDT": 10_000}, API_KEY, SECRET, fee_rate=0.001) as fake:
        fake.inject("hide_trades", times=None)
        with running(live_config(fake, db, infer_fill_after_s=0.3)) as system:
            eventually(lambda: system.status().pairs[0].position > 0, 10, "the position")
            assert [f.fill_id for f in db_fills(db)] == [f"{db_orders(db)[0].order_id}-inferred"]
            fake.clear_faults()
            eventually(lambda: not db_fills(db)[0].fill_id.endswith("-inferred"), 10,
                       "the trades to replace the inferred fill")
        [order] = db_orders(db)
        assert order.status is OrderStatus.FILLED
        assert_agrees(fake, order.order_id, db_fills(db))
        with open_store(db) as store:
            held = store.balances()
        at_exchange = fake.balances()
        assert held["BTC"] == pytest.approx(float(at_exchange["BTC"].total), abs=1e-12)
        assert held["USDT"] == pytest.approx(float(at_exchange["USDT"].total), abs=1e-6)


@pytest.mark.usefixtures("keys")
def test_trades_that_come_while_the_system_is_stopped_replace_the_inferred_fill_at_start(
        tmp_path: Path) -> None:
    """Booked from an inferred fill, then stopped before the trades were listed: the next
    start's reconciliation finds them and replaces the fill, once; the start after finds
    nothing left to do."""
    db = str(tmp_path / "live.sqlite")
    with FakeBinance(MARKETS, {"USDT": 10_000}, API_KEY, SECRET, fee_rate=0.001) as fake:
        fake.inject("hide_trades", times=None)
        with running(live_config(fake, db, infer_fill_after_s=0.3)) as system:
            eventually(lambda: system.status().pairs[0].position > 0, 10, "the position")
        [order] = db_orders(db)
        assert [f.fill_id for f in db_fills(db)] == [f"{order.order_id}-inferred"]
        fake.clear_faults()
        with running(live_config(fake, db)) as system:
            report = system.reconcile_report
            assert report is not None
            assert report.inferred_replaced == (order.order_id,)
            assert report.unbooked_trades == ()
            assert report.balance_differences == ()
        assert_agrees(fake, order.order_id, db_fills(db))
        with running(live_config(fake, db)) as system:
            assert system.reconcile_report is not None
            assert system.reconcile_report.clean
        assert_agrees(fake, order.order_id, db_fills(db))
