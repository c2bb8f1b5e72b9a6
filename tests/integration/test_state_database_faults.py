"""A PostgreSQL state database that goes away mid-run: a dropped connection, a COMMIT whose
answer is lost, the server stopped and started while five pairs trade. No fill is lost or
doubled, entries are refused meanwhile, /health says so, trading resumes by itself, and the
database password shows nowhere."""

from __future__ import annotations

import collections
import json
import os
from typing import Any

import psycopg
import pytest
from loguru import logger

from actors.messages import (
    EVENTS,
    Fill,
    OrderFilled,
    OrderRejected,
    ServiceRestarted,
    Side,
    StateAvailabilityChanged,
)
from actors.router import Router
from actors.state.actor import StateActor
from actors.state.core import StateCore
from actors.state.postgres import _Connection
from actors.state.schema import TABLES
from actors.state.store import open_store
from supervision import build_config
from supervision.app.cli import run
from tests.helpers import db_rows, endless_chop, eventually, trading
from tests.postgres_server import SECRET_PASSWORD, SECRET_USER, PostgresServer

START_MS = 1_700_000_000_000
FIVE = {"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0, "SOL/USDT": 150.0, "BNB/USDT": 550.0,
        "XRP/USDT": 0.6}
PAIR = "BTC/USDT"


class Recorder(Router):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, object]] = []

    def tell(self, to: str, message: object) -> None:
        self.sent.append((to, message))

    def kinds(self, to: str) -> list[str]:
        return [type(m).__name__ for t, m in self.sent if t == to]


def _fill(n: int) -> OrderFilled:
    return OrderFilled(fill=Fill(fill_id=f"f-{n}", order_id=f"o-{n}", pair=PAIR, side=Side.BUY,
                                 amount=0.01, price=100.0 + n, fee=0.0, ts_ms=1_000 * n))


def _actor(url: str, router: Router) -> StateActor:
    core = StateCore.open(url, "USDT", {"USDT": 10_000.0})
    return StateActor(core, router, reopen=lambda: StateCore.open(url, "USDT", {}, existing=True),
                      may_restart=lambda now: False, batch_s=60.0)


@pytest.fixture
def pg_db(postgres_server: PostgresServer) -> Any:
    name = postgres_server.new_database()
    yield name, postgres_server.url(name)
    postgres_server.drop_database(name)


def test_a_connection_cut_mid_batch_is_reopened_and_the_batch_written_once(pg_db, postgres_server):
    """Durable first, the inbox busy so the batch stays open: the server cuts the session
    after the first fill; the second fill finds the connection gone, the actor reopens at
    once, handles the batch again, and each fill is stored and answered once. A lost server
    is no failure: no restart is counted."""
    name, url = pg_db
    router = Recorder()
    actor = _actor(url, router)
    actor.actor_inbox.put(object())  # not drained: nothing commits on its own
    actor.on_receive(_fill(1))

    assert postgres_server.end_sessions(name) == 1
    actor.on_receive(_fill(2))
    actor.flush()
    actor.on_stop()

    assert db_rows(url, "SELECT fill_id FROM fills ORDER BY fill_id") == [("f-1",), ("f-2",)]
    assert router.kinds(PAIR) == ["PositionChanged", "PositionChanged"]
    assert router.kinds(EVENTS) == ["OrderFilled", "OrderFilled"]
    assert actor.restarts == 0
    assert actor.reconnects == 0  # reopened at once: never unavailable
    assert not any(isinstance(m, ServiceRestarted) for _, m in router.sent)


def test_a_commit_that_landed_before_its_answer_was_lost_is_not_handled_again(
        pg_db, monkeypatch):
    """The server commits the batch, then the connection breaks before COMMIT returns: the
    reopened database's batch number shows the batch landed, so its held answers go out as
    they were and nothing is handled twice."""
    _, url = pg_db
    router = Recorder()
    actor = _actor(url, router)
    actor.actor_inbox.put(object())
    actor.on_receive(_fill(1))
    actor.on_receive(_fill(2))
    real_execute = _Connection.execute
    cut = {"left": 1}

    def commit_then_lose(self: _Connection, sql: str, params: Any = None) -> Any:
        result = real_execute(self, sql, params)
        if sql == "COMMIT" and cut["left"]:
            cut["left"] -= 1
            raise psycopg.errors.AdminShutdown("terminating connection (injected after COMMIT)")
        return result

    monkeypatch.setattr(_Connection, "execute", commit_then_lose)
    actor.flush()
    actor.on_stop()

    assert cut["left"] == 0
    assert db_rows(url, "SELECT fill_id FROM fills ORDER BY fill_id") == [("f-1",), ("f-2",)]
    assert router.kinds(PAIR) == ["PositionChanged", "PositionChanged"]
    assert router.kinds(EVENTS) == ["OrderFilled", "OrderFilled"]
    assert db_rows(url, "SELECT value FROM meta WHERE key = 'commit_seq'") == [("1",)]


def test_the_server_restarting_while_five_pairs_trade_loses_and_doubles_no_fill(
        pg_db, postgres_server):
    """Five pairs enter and exit all the time. The server stops: /health says the state
    database is unavailable, entries are refused with state_unavailable. It starts again:
    the state actor reconnects by itself and trading resumes. Every fill is in the database
    once, was published once, and the books reload to what the system reported."""
    _, url = pg_db
    config = build_config({}, {
        "pairs": ",".join(FIVE), "state_db": url, "speed": 50.0, "seed": 7,
        "strategy": {"name": "tests.helpers:Flip", "params": {"period": 3}}})
    with trading(config, lambda stop: endless_chop(FIVE, stop, START_MS)) as (system, log):
        eventually(lambda: system.status().fills >= 20, timeout=20, message="trading")
        try:
            postgres_server.stop("fast")
            eventually(lambda: "state database unavailable" in " ".join(
                system.health().problems), timeout=15, message="/health to see the outage")
            log.wait_for(lambda events: any(
                isinstance(e, OrderRejected) and e.reason == "state_unavailable"
                for e in events), timeout=15, message="an entry refused as state_unavailable")
            outage = system.health().as_dict()
        finally:
            postgres_server.start()
        log.wait_for(lambda events: any(isinstance(e, StateAvailabilityChanged) and e.available
                                        for e in events), timeout=20,
                     message="the state actor to reconnect")
        resumed_from = system.status().fills
        eventually(lambda: system.status().fills >= resumed_from + 10, timeout=20,
                   message="trading to resume")
        assert system.health().healthy, system.health().problems
        final = system.stop()

    assert outage["status"] == "unhealthy"
    assert outage["state_database"]["available"] is False
    published = collections.Counter(e.fill.fill_id for e in log.of(OrderFilled))
    stored = [fill_id for (fill_id,) in db_rows(url, "SELECT fill_id FROM fills")]
    assert max(published.values()) == 1
    assert sorted(stored) == sorted(published)
    assert final.fills == len(stored)
    with open_store(url) as store:
        reloaded = store.load()
    assert reloaded.cash == pytest.approx(final.cash)
    assert reloaded.fill_count == final.fills


def test_the_database_password_never_reaches_logs_errors_health_or_the_database(
        postgres_server, monkeypatch, capsys):
    """The password login, a cut connection, a wrong password: the password appears in no log
    line, error, /health answer or row."""
    name = postgres_server.new_database(owner=SECRET_USER)
    url = postgres_server.url(name, user=SECRET_USER)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    logger.enable("actors")
    logger.enable("supervision")
    monkeypatch.setenv("CONDUCTOR_DB_PASSWORD", SECRET_PASSWORD)
    try:
        config = build_config({}, {"pairs": ",".join(FIVE), "state_db": url, "speed": 50.0,
                                   "strategy": {"name": "tests.helpers:Flip",
                                                "params": {"period": 3}}})
        with trading(config, lambda stop: endless_chop(FIVE, stop, START_MS)) as (system, _):
            eventually(lambda: system.status().fills >= 5, timeout=20, message="trading")
            postgres_server.end_sessions(name)
            health = [json.dumps(system.health().as_dict())]
            eventually(lambda: system.status().fills >= 10, timeout=20, message="more fills")
            final = system.stop()
        admin = postgres_server.url(name)
        rows = [str(db_rows(admin, f"SELECT * FROM {table}")) for table in TABLES]
        monkeypatch.setenv("CONDUCTOR_DB_PASSWORD", SECRET_PASSWORD + "-wrong")
        # The CLI's process-wide logging set-up would outlive the test; our sink hears all.
        monkeypatch.setattr("supervision.app.cli.configure_logging", lambda *a, **k: None)
        code = run(["--pairs", "BTC/USDT", "--state-db", url, "--duration", "1"])
    finally:
        logger.remove(sink)
        logger.disable("actors")
        logger.disable("supervision")
        postgres_server.drop_database(name)

    err = capsys.readouterr().err
    assert code == 2
    assert "refused the login of tc_secret" in err
    assert final.fills >= 10
    everything = "\n".join([*lines, err, *health, repr(final), *rows])
    assert SECRET_PASSWORD not in everything
    assert os.environ["CONDUCTOR_DB_PASSWORD"] not in everything


@pytest.mark.parametrize(("answer_first", "setting"), [(True, "off"), (False, "on")])
def test_paper_commits_do_not_wait_for_the_server_s_flush_and_live_ones_do(
        pg_db, answer_first, setting):
    """Answer first (paper) promises what SQLite's synchronous=NORMAL does; durable first
    (live orders) waits until the server has the commit on disk."""
    _, url = pg_db
    core = StateCore.open(url, "USDT", {"USDT": 10_000.0})
    actor = StateActor(core, Recorder(), reopen=lambda: core, may_restart=lambda now: False,
                       answer_first=answer_first)

    shown = actor.core.store._conn.execute("SHOW synchronous_commit").fetchone()[0]
    core.close()

    assert shown == setting
