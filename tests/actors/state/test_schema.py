"""The schema's migrations: a database of an older layout (version 1, version 3) migrates in
place on both backends, and keeps every row, in order; the rendered layout is one definition."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from actors.messages import Fill, Order, OrderStatus, OrderType, Side
from actors.state.schema import (
    MIGRATIONS,
    POSTGRESQL,
    SCHEMA_VERSION,
    SQLITE,
    TERMINAL_STATUSES,
    UNFINISHED,
)
from actors.state.store import open_store
from tests.helpers import db_rows

V1_DUMP = Path(__file__).with_name("v1_state.sql")


def make_v1_database(location: str, backend: str) -> None:
    """SQLite: the dump itself (a real file of version 1). PostgreSQL: migration 1 rendered
    for it, then the dump's rows."""
    dump = V1_DUMP.read_text(encoding="utf-8")
    if backend == "sqlite":
        with sqlite3.connect(location) as conn:
            conn.executescript(dump)
        return
    for statement in MIGRATIONS[0].statements(POSTGRESQL):
        db_rows(location, statement)
    db_rows(location, "INSERT INTO schema_version (version) VALUES (1)")
    for line in dump.splitlines():
        if line.startswith("INSERT INTO") and '"schema_version"' not in line:
            db_rows(location, line)


def test_a_database_of_version_1_migrates_in_place_and_keeps_its_state(
        state_db: str, backend: str) -> None:
    """Every row survives; fills and orders get their insertion order as seq (version 2),
    the control tables arrive empty (version 3), SQLite rebuilds fills and orders without a
    rowid (version 4); the next write continues the numbering."""
    make_v1_database(state_db, backend)

    with open_store(state_db) as store:
        assert store.migrated == [2, 3, 4]
        assert store.schema_version == SCHEMA_VERSION == 4
        ledger = store.load()
        store.insert_fill(Fill(fill_id="f-3", order_id="o-1", pair="BTC/USDT", side=Side.SELL,
                               amount=0.01, price=31_000.0, fee=0.3, ts_ms=1_700_000_000_200,
                               maker=False))

    assert ledger.quote == "USDT"
    assert ledger.balances == {"USDT": 6997.0, "BTC": 0.1}
    assert ledger.positions["BTC/USDT"].amount == 0.1
    assert ledger.peak_equity == 10050.5
    assert set(ledger.open_orders) == {"o-2"}
    assert ledger.fill_ids == {"f-1", "f-2"}
    assert ledger.fill_count == 2
    assert ledger.strategies["BTC/USDT"].params_dict() == {"fast": 5, "slow": 20}
    assert db_rows(state_db, "SELECT fill_id, seq FROM fills ORDER BY seq") == [
        ("f-2", 1), ("f-1", 2), ("f-3", 3)]
    assert db_rows(state_db, "SELECT version FROM schema_version ORDER BY version") == [
        (1,), (2,), (3,), (4,)]


def make_v3_database(location: str, backend: str) -> None:
    """Version 1's rows, migrated to version 3 as that release did, then more rows written
    the way version 3 wrote them (seq numbered by the writer, not in key order)."""
    make_v1_database(location, backend)
    dialect = SQLITE if backend == "sqlite" else POSTGRESQL
    for migration in MIGRATIONS[1:3]:
        for statement in migration.statements(dialect):
            db_rows(location, statement)
        db_rows(location, "INSERT INTO schema_version (version) VALUES (?)", migration.version)
    for n, status in ((9, "filled"), (10, "new"), (11, "canceled")):
        db_rows(location, "INSERT INTO orders VALUES (?,'BTC/USDT','sell','market','exit_signal',"
                "0.1,?,?,?,NULL,0.0,0.0,0.0,'',?)", f"o-{n}", status, 1_700_000_002_000 + n,
                1_700_000_002_000 + n, n)
        db_rows(location, "INSERT INTO fills VALUES (?,?,'BTC/USDT','sell',0.01,31000.0,0.3,?,0,?)",
                f"f-{n}", f"o-{n}", 1_700_000_002_000 + n, n)


def test_a_database_of_version_3_migrates_in_place_keeping_its_rows_and_their_order(
        state_db: str, backend: str) -> None:
    """Version 4 keeps every fill and order with its seq (SQLite copies them into tables
    without a rowid); only unfinished orders are in orders_by_status, and loading still
    finds the open ones."""
    make_v3_database(state_db, backend)
    columns = {t: ", ".join(name for name, *_ in db_rows(
        state_db, f"SELECT * FROM {t} WHERE 1 = 0") or ()) for t in ("fills", "orders")}
    before = {t: db_rows(state_db, f"SELECT * FROM {t} ORDER BY seq") for t in columns}

    with open_store(state_db) as store:
        assert store.migrated == [4]
        ledger = store.load()
        store.record_order(Order(order_id="o-12", pair="BTC/USDT", side=Side.BUY,
                                 order_type=OrderType.MARKET, reason=ledger.recent_orders[
                                     "o-9"].reason, amount=0.1, status=OrderStatus.NEW,
                                 created_ms=1_700_000_003_000, updated_ms=1_700_000_003_000))

    after = {t: db_rows(state_db, f"SELECT * FROM {t} ORDER BY seq") for t in before}
    assert after["fills"] == before["fills"]
    assert after["orders"][:-1] == before["orders"]
    assert after["orders"][-1][0] == "o-12" and after["orders"][-1][-1] == 12
    assert set(ledger.open_orders) == {"o-2", "o-10"}
    assert ledger.fill_ids == {"f-1", "f-2", "f-9", "f-10", "f-11"}
    assert [i for i, in db_rows(state_db, f"SELECT order_id FROM orders WHERE {UNFINISHED}"
                                          " ORDER BY seq")] == ["o-2", "o-10", "o-12"]
    if backend == "sqlite":
        layout = dict(db_rows(state_db, "SELECT name, sql FROM sqlite_master"))
        assert layout["fills"].endswith("WITHOUT ROWID")
        assert layout["orders"].endswith("WITHOUT ROWID")
        assert layout["orders_by_status"].endswith(f"WHERE {UNFINISHED}")
        assert {"fills_by_seq", "fills_by_time", "orders_by_time"} <= set(layout)
        plan = " ".join(str(row) for row in db_rows(
            state_db, f"EXPLAIN QUERY PLAN SELECT order_id FROM orders WHERE {UNFINISHED}"))
        assert "orders_by_status" in plan
    else:
        (index,), = db_rows(state_db, "SELECT indexdef FROM pg_indexes"
                                      " WHERE indexname = 'orders_by_status'")
        assert "WHERE" in index and "filled" in index


def test_the_partial_index_names_exactly_the_statuses_that_are_not_terminal() -> None:
    """The index's condition is written out for the planners; it must match the enum."""
    assert tuple(s.value for s in OrderStatus if s.is_terminal) == TERMINAL_STATUSES
    assert UNFINISHED == "status <> 'filled' AND status <> 'canceled' AND status <> 'rejected'"


def test_a_current_database_runs_no_migration(state_db: str) -> None:
    open_store(state_db).close()

    with open_store(state_db) as again:
        assert again.migrated == []


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL])
def test_every_table_is_created_by_one_definition_rendered_per_dialect(dialect: str) -> None:
    """The same tables and columns on both; PostgreSQL gets 8-byte numbers (its REAL is 4
    bytes, and millisecond timestamps overflow INTEGER)."""
    ddl = " ".join(s for m in MIGRATIONS for s in m.statements(dialect))
    # SQLite's rebuild (version 4) creates its tables under a passing name first.
    tables = [t for t in re.findall(r"CREATE TABLE (\w+)", ddl) if not t.endswith("_rebuilt")]

    assert tables == ["schema_version", "meta", "balances", "positions", "orders", "fills",
                      "pnl", "strategies", "equity", "trades", "audit"]
    if dialect == POSTGRESQL:
        assert " REAL" not in ddl
        assert "INTEGER" not in ddl
        assert "ts_ms BIGINT NOT NULL" in ddl
