"""The schema's migrations: a database of today's layout (version 1) migrates in place on
both backends, and keeps every row, in order; the rendered layout is one definition."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from actors.messages import Fill, Side
from actors.state.schema import MIGRATIONS, POSTGRESQL, SCHEMA_VERSION, SQLITE
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
    the control tables arrive empty (version 3); the next write continues the numbering."""
    make_v1_database(state_db, backend)

    with open_store(state_db) as store:
        assert store.migrated == [2, 3]
        assert store.schema_version == SCHEMA_VERSION == 3
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
        (1,), (2,), (3,)]


def test_a_current_database_runs_no_migration(state_db: str) -> None:
    open_store(state_db).close()

    with open_store(state_db) as again:
        assert again.migrated == []


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL])
def test_every_table_is_created_by_one_definition_rendered_per_dialect(dialect: str) -> None:
    """The same tables and columns on both; PostgreSQL gets 8-byte numbers (its REAL is 4
    bytes, and millisecond timestamps overflow INTEGER)."""
    ddl = " ".join(s for m in MIGRATIONS for s in m.statements(dialect))
    tables = re.findall(r"CREATE TABLE (\w+)", ddl)

    assert tables == ["schema_version", "meta", "balances", "positions", "orders", "fills",
                      "pnl", "strategies", "equity", "trades", "audit"]
    if dialect == POSTGRESQL:
        assert " REAL" not in ddl
        assert "INTEGER" not in ddl
        assert "ts_ms BIGINT NOT NULL" in ddl
