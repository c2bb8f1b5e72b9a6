"""The state database, on SQLite and on PostgreSQL: round trips through a reopened database,
transactions (one per change or one per group), the schema and its migrations, SQLite's WAL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.messages import (
    ExitReason,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    StrategySpec,
)
from actors.state.ledger import Ledger
from actors.state.schema import SCHEMA_VERSION
from actors.state.store import (
    StateStore,
    StateStoreError,
    open_store,
    spec_from_json,
    spec_to_json,
)
from tests.helpers import db_rows

BTC = "BTC/USDT"
ETH = "ETH/USDT"
FUNDING = {"USDT": 10_000.0}


def an_order(order_id: str, status: OrderStatus, *, updated_ms: int = 1_000) -> Order:
    return Order(
        order_id=order_id,
        pair=BTC,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        reason=ExitReason.ENTRY,
        amount=0.5,
        status=status,
        created_ms=1_000,
        updated_ms=updated_ms,
        limit_price=20_000.0,
        filled=0.25,
        average_price=19_990.5,
        fee=0.75,
        reject_reason="",
    )


def a_fill(fill_id: str = "f-1", *, side: Side = Side.BUY, ts_ms: int = 2_000) -> Fill:
    return Fill(
        fill_id=fill_id,
        order_id="o-1",
        pair=BTC,
        side=side,
        amount=0.25,
        price=19_990.5,
        fee=0.75,
        ts_ms=ts_ms,
        maker=True,
    )


POSITION = Position(
    pair=BTC,
    amount=0.25,
    entry_price=19_990.5,
    cost=4_998.375,
    opened_ms=2_000,
    peak_price=20_500.0,
)
BALANCES = {"USDT": 5_001.625, "BTC": 0.25}

AGGREGATE = StrategySpec(
    path="aggregate",
    params=(("mode", "weighted"), ("threshold", 0.5)),
    members=(
        (StrategySpec.of("ema_cross", fast=5, slow=20, source="close"), 0.7),
        (
            StrategySpec(
                path="aggregate",
                params=(("mode", "vote"),),
                members=((StrategySpec.of("rsi_reversion", bands=(30, 70), smooth=None), 1.0),),
            ),
            0.3,
        ),
    ),
)


@pytest.fixture
def db(state_db: str) -> str:
    """A fresh database on each backend (``tests/conftest.py``)."""
    return state_db


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    return str(tmp_path / "state.sqlite")


def fresh(path: str) -> StateStore:
    store = open_store(path)
    store.initialize("USDT", FUNDING)
    return store


def reopened(path: str) -> StateStore:
    return open_store(path)


# -- opening ---------------------------------------------------------------------------------------


def test_a_file_database_runs_in_wal_mode_with_normal_sync(sqlite_db: str) -> None:
    """WAL journal and synchronous=NORMAL are set on every connection."""
    with open_store(sqlite_db) as store:
        assert store.journal_mode == "wal"
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_a_new_database_records_its_schema_version(db: str) -> None:
    """The schema_version table holds the layout the code writes."""
    with open_store(db) as store:
        assert store.schema_version == SCHEMA_VERSION

    assert db_rows(db, "SELECT MAX(version) FROM schema_version") == [(SCHEMA_VERSION,)]


def test_an_in_memory_database_works_without_a_file() -> None:
    """':memory:' gives a throwaway store with the same behaviour."""
    with fresh(":memory:") as store:
        assert store.load().balances == FUNDING


def test_a_path_in_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    """The caller creates the directory; the store says which path it could not open."""
    path = str(tmp_path / "missing" / "state.sqlite")

    with pytest.raises(StateStoreError, match="cannot open state database"):
        open_store(path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    """A text file in the database's place raises StateStoreError, not sqlite3 errors."""
    path = tmp_path / "state.sqlite"
    path.write_text("these are not the bytes you are looking for" * 100)

    with pytest.raises(StateStoreError, match="cannot open"):
        open_store(str(path))


def test_another_programs_database_is_refused(db: str) -> None:
    """A database with tables but no schema_version is not ours to write into."""
    db_rows(db, "CREATE TABLE customers (id INTEGER)")

    with pytest.raises(StateStoreError, match="not a trade-conductor state database"):
        open_store(db)


def test_a_database_from_a_newer_schema_is_refused(db: str) -> None:
    """Opening a layout this code does not know raises instead of misreading it."""
    open_store(db).close()
    db_rows(db, "INSERT INTO schema_version (version) VALUES (?)", SCHEMA_VERSION + 1)

    with pytest.raises(StateStoreError, match="schema version"):
        open_store(db)


def test_a_database_is_initialized_once(db: str) -> None:
    """initialize twice raises; an uninitialized database cannot be loaded."""
    with open_store(db) as store:
        assert not store.initialized
        with pytest.raises(StateStoreError, match="not initialized"):
            store.load()
        store.initialize("USDT", FUNDING)
        with pytest.raises(StateStoreError, match="already initialized"):
            store.initialize("USDT", FUNDING)

    with reopened(db) as store:
        assert store.initialized
        assert store.quote == "USDT"
        assert store.initial_balances() == FUNDING


def test_a_store_opened_on_one_thread_can_be_handed_to_another(db: str) -> None:
    """The system opens the store at start; the state actor's thread then uses it alone."""
    store = fresh(db)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            store.record_order(an_order("o-1", OrderStatus.OPEN))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=write)
    worker.start()
    worker.join(timeout=10)

    assert not worker.is_alive()
    assert errors == []
    assert [o.order_id for o in store.orders()] == ["o-1"]
    store.close()


# -- round trips -----------------------------------------------------------------------------------


def test_orders_round_trip_through_a_reopened_file(db: str) -> None:
    """Every order is stored, terminal ones too; load keeps only the open ones open."""
    open_order = an_order("o-1", OrderStatus.OPEN)
    filled = an_order("o-2", OrderStatus.FILLED)
    rejected = attrs.evolve(
        an_order("o-3", OrderStatus.REJECTED), limit_price=None, reject_reason="min notional"
    )
    with fresh(db) as store:
        for order in (open_order, filled, rejected):
            store.record_order(order)

    with reopened(db) as store:
        assert store.orders() == [open_order, filled, rejected]
        ledger = store.load()

    assert ledger.open_orders == {"o-1": open_order}
    assert ledger.known_order("o-2") == filled
    assert ledger.order_count == 3


def test_a_terminal_order_is_never_overwritten_by_a_later_update(db: str) -> None:
    """After FILLED, a late OPEN for the same id leaves the row as it was."""
    filled = an_order("o-1", OrderStatus.FILLED, updated_ms=3_000)
    with fresh(db) as store:
        store.record_order(an_order("o-1", OrderStatus.OPEN, updated_ms=1_000))
        store.record_order(filled)
        store.record_order(an_order("o-1", OrderStatus.PARTIALLY_FILLED, updated_ms=4_000))

        assert store.orders() == [filled]


def test_an_older_order_update_does_not_replace_a_newer_one(db: str) -> None:
    """Updates carry updated_ms; the newest wins whatever the arrival order."""
    newer = an_order("o-1", OrderStatus.PARTIALLY_FILLED, updated_ms=2_000)
    with fresh(db) as store:
        store.record_order(newer)
        store.record_order(an_order("o-1", OrderStatus.OPEN, updated_ms=1_500))

        assert store.orders() == [newer]


def test_a_fill_with_its_position_balances_and_pnl_round_trips(db: str) -> None:
    """record_fill's fill, position, balances, realized PnL and peak survive a reopen."""
    with fresh(db) as store:
        written = store.record_fill(
            a_fill(), POSITION, BALANCES, 12.5, 3, trip_pnl=-1.25, peak_equity=10_250.0
        )

    assert written
    with reopened(db) as store:
        assert store.fills() == [a_fill()]
        assert store.balances() == BALANCES
        ledger = store.load()

    assert ledger.positions == {BTC: POSITION}
    assert ledger.trip_pnl == {BTC: -1.25}
    assert ledger.realized == {BTC: 12.5}
    assert ledger.trades == {BTC: 3}
    assert ledger.balances == BALANCES
    assert ledger.fill_ids == {"f-1"}
    assert ledger.peak_equity == 10_250.0


def test_fills_are_filtered_by_pair_time_and_order_in_the_database(db: str) -> None:
    """Start-up reconciliation reads only the fills it needs: since a time, or of some
    orders; each filter keeps time order, and no order ids selects nothing."""
    early = a_fill("f-1", ts_ms=1_000)
    late = a_fill("f-2", ts_ms=3_000)
    other = attrs.evolve(a_fill("f-3", ts_ms=2_000), order_id="o-2", pair="ETH/USDT")
    with fresh(db) as store:
        store.begin()
        for fill in (late, other, early):
            store.insert_fill(fill)
        store.commit()

        assert store.fills() == [early, other, late]
        assert store.fills(since_ms=2_000) == [other, late]
        assert store.fills(BTC, since_ms=2_000) == [late]
        assert store.fills(order_ids=["o-2"]) == [other]
        assert store.fills(order_ids=["o-1", "o-2"]) == [early, other, late]
        assert store.fills(order_ids=[]) == []


def test_a_fill_without_a_position_deletes_the_positions_row(db: str) -> None:
    """A closing fill passes None and the pair has no position after reopening."""
    with fresh(db) as store:
        store.record_fill(a_fill("f-1"), POSITION, BALANCES, 0.0, 0)
        store.record_fill(a_fill("f-2", side=Side.SELL), None, FUNDING, 4.0, 1)

    with reopened(db) as store:
        ledger = store.load()

    assert ledger.positions == {}
    assert ledger.realized == {BTC: 4.0}
    assert ledger.trades == {BTC: 1}


def test_a_duplicate_fill_is_a_no_op(db: str) -> None:
    """The second record_fill for a fill_id returns False and writes nothing at all."""
    with fresh(db) as store:
        store.record_fill(a_fill(), POSITION, BALANCES, 0.0, 0)

        again = store.record_fill(a_fill(), None, {"USDT": 0.0}, 99.0, 9)

        assert not again
        assert store.fills() == [a_fill()]
        assert store.balances() == BALANCES
        assert store.load().positions == {BTC: POSITION}


def test_deferred_fill_rows_go_before_a_delete_and_a_stored_id_fails_the_commit(
        db: str) -> None:
    """With ``defer_inserts`` (paper state on a server), a fill's row waits for the commit,
    but a statement sent at once (a delete) finds the rows deferred before it; an id that is
    stored already fails the commit and leaves nothing of the batch."""
    kept = attrs.evolve(a_fill(), fill_id="f-kept")
    with fresh(db) as store:
        store.autocommit = False
        store.defer_inserts = True
        store.begin()
        assert store.insert_fill(a_fill())
        assert store.insert_fill(kept)
        assert store.delete_fill(a_fill().fill_id)
        store.commit()
        assert [f.fill_id for f in store.fills()] == ["f-kept"]

        store.begin()
        assert store.insert_fill(attrs.evolve(a_fill(), fill_id="f-new"))
        assert store.insert_fill(kept)
        with pytest.raises(StateStoreError):
            store.commit()
        assert [f.fill_id for f in store.fills()] == ["f-kept"]


def test_strategy_specs_round_trip_exactly_including_aggregate_members(db: str) -> None:
    """Nested members, weights and tuple params come back equal (and hashable)."""
    simple = StrategySpec.of("ema_cross", fast=5, slow=20)
    with fresh(db) as store:
        store.record_strategy(BTC, AGGREGATE, generation=2)
        store.record_strategy(ETH, StrategySpec.of("donchian_breakout"))
        store.record_strategy(ETH, simple, generation=3)

    with reopened(db) as store:
        strategies = store.load().strategies

    assert strategies == {BTC: AGGREGATE, ETH: simple}
    assert hash(strategies[BTC]) == hash(AGGREGATE)


def test_a_param_json_cannot_hold_is_refused_with_its_name() -> None:
    """Storing an object parameter raises StateStoreError naming the key."""
    spec = StrategySpec(path="x", params=(("clock", object()),))

    with pytest.raises(StateStoreError, match="'clock'"):
        spec_to_json(spec)


def test_equity_points_and_the_peak_round_trip(db: str) -> None:
    """Equity history comes back in time order; the peak is kept in meta."""
    with fresh(db) as store:
        store.record_equity(60_000, 10_100.0, peak_equity=10_100.0)
        store.record_equity(120_000, 9_900.0)
        store.record_equity(None, 0.0, peak_equity=10_400.0)

    with reopened(db) as store:
        assert store.equity_history() == [(60_000, 10_100.0), (120_000, 9_900.0)]
        assert store.equity_history(since_ms=100_000) == [(120_000, 9_900.0)]
        assert store.last_equity_ms() == 120_000
        assert store.load().peak_equity == 10_400.0


def test_peak_prices_round_trip(db: str) -> None:
    """record_peak_price updates the open position's trailing-stop peak."""
    with fresh(db) as store:
        store.record_fill(a_fill(), POSITION, BALANCES, 0.0, 0)
        store.record_peak_price(BTC, 21_000.0)

    with reopened(db) as store:
        assert store.load().positions[BTC].peak_price == 21_000.0


@pytest.mark.parametrize("reason", ["maintenance", ""])
def test_a_halt_made_by_hand_outlives_the_store_until_lifted(db: str, reason: str) -> None:
    """None before any halt; a halt (with or without a reason) reads back after reopening;
    lifting it reads back as None."""
    with fresh(db) as store:
        assert store.manual_halt() is None
        store.keep_manual_halt(reason)

    with reopened(db) as store:
        assert store.manual_halt() == reason
        store.keep_manual_halt(None)

    with reopened(db) as store:
        assert store.manual_halt() is None


def test_a_whole_ledger_round_trips_through_the_file(db: str) -> None:
    """A ledger built by fills and orders equals the one loaded from what was stored."""
    ledger = Ledger("USDT", FUNDING)
    with fresh(db) as store:
        for n, (side, amount) in enumerate([(Side.BUY, 0.2), (Side.BUY, 0.1), (Side.SELL, 0.15)]):
            f = attrs.evolve(a_fill(f"f-{n}", side=side), amount=amount, ts_ms=1_000 + n)
            result = ledger.apply_fill(f)
            assert result is not None
            book = result[0]
            store.record_fill(
                f,
                book.position,
                ledger.balances,
                book.realized_pnl,
                book.trades,
                trip_pnl=ledger.trip_pnl.get(BTC, 0.0),
                peak_equity=ledger.peak_equity,
            )
        order = an_order("o-9", OrderStatus.OPEN)
        ledger.apply_order(order)
        store.record_order(order)

    with reopened(db) as store:
        loaded = store.load()

    assert loaded.snapshot() == ledger.snapshot()
    assert loaded.balances == ledger.balances
    assert loaded.trip_pnl == ledger.trip_pnl
    assert loaded.fill_ids == ledger.fill_ids


# -- atomicity -------------------------------------------------------------------------------------


class FailAfterWrites:
    """A connection stand-in that lets ``allowed`` data-changing statements through, then raises."""

    def __init__(self, conn: Any, allowed: int) -> None:
        self.conn = conn
        self.allowed = allowed

    def _count(self, sql: str) -> None:
        keyword = sql.lstrip().split(None, 1)[0].upper()
        if keyword in {"INSERT", "UPDATE", "DELETE"}:
            if self.allowed == 0:
                raise RuntimeError("power cut mid-transaction")
            self.allowed -= 1

    def execute(self, sql: str, *args: Any) -> Any:
        self._count(sql)
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        self._count(sql)
        return self.conn.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:  # anything else (PostgreSQL's pipeline) as is
        return getattr(self.conn, name)


@pytest.mark.parametrize("allowed", [1, 2, 3])
def test_a_fill_that_fails_mid_write_leaves_nothing_behind(db: str, allowed: int) -> None:
    """A failure after the first statements of record_fill rolls all of it back."""
    store = fresh(db)
    real = store._conn
    store._conn = FailAfterWrites(real, allowed)  # type: ignore[assignment]

    with pytest.raises(RuntimeError, match="power cut"):
        store.record_fill(a_fill(), POSITION, BALANCES, 5.0, 1, peak_equity=11_000.0)

    store._conn = real
    store.close()
    with reopened(db) as store:
        assert store.fills() == []
        assert store.balances() == FUNDING
        ledger = store.load()
    assert ledger.positions == {}
    assert ledger.realized == {}
    assert ledger.peak_equity == FUNDING["USDT"]


REFUSE_BALANCES = {
    "sqlite": (("CREATE TRIGGER full BEFORE INSERT ON balances"
                " BEGIN SELECT RAISE(ABORT, 'full'); END"), "DROP TRIGGER full"),
    "postgresql": ("ALTER TABLE balances ADD CONSTRAINT balances_full CHECK (amount < 0) NOT VALID",
                   "ALTER TABLE balances DROP CONSTRAINT balances_full"),
}


def test_a_database_error_mid_write_rolls_back_and_the_store_stays_usable(
        db: str, backend: str) -> None:
    """A failing statement raises StateStoreError; the next write works."""
    store = fresh(db)
    refuse, allow = REFUSE_BALANCES[backend]
    store._conn.execute(refuse)

    with pytest.raises(StateStoreError, match="full"):
        store.record_fill(a_fill(), POSITION, BALANCES, 5.0, 1)

    assert store.fills() == []
    store._conn.execute(allow)
    assert store.record_fill(a_fill(), POSITION, BALANCES, 5.0, 1)
    store.close()
    with reopened(db) as store:
        assert store.fills() == [a_fill()]


# -- property: spec JSON -------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False),
    st.text(max_size=8),
)
_values = st.recursive(_scalars, lambda inner: st.tuples(inner, inner) | st.tuples(inner))
_params = st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=4).map(
    lambda d: tuple(sorted(d.items()))
)
_specs = st.recursive(
    st.builds(StrategySpec, path=st.text(min_size=1, max_size=12), params=_params),
    lambda inner: st.builds(
        StrategySpec,
        path=st.just("aggregate"),
        params=_params,
        members=st.lists(st.tuples(inner, st.floats(0.0, 1.0)), max_size=3).map(tuple),
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(_specs)
def test_any_spec_survives_a_json_round_trip(spec: StrategySpec) -> None:
    """Whatever its nesting, a spec decodes equal to what was encoded."""
    assert spec_from_json(spec_to_json(spec)) == spec


# -- group commit ----------------------------------------------------------------------------------


def committed_fills(path: str) -> int:
    return int(db_rows(path, "SELECT COUNT(*) FROM fills")[0][0])


def test_without_autocommit_writes_stay_invisible_until_commit(db: str) -> None:
    """Group commit: other connections see a batch only once it is committed, all at once."""
    store = fresh(db)
    store.autocommit = False

    store.record_fill(a_fill("f-1"), POSITION, BALANCES, 5.0, 1)
    store.record_fill(a_fill("f-2", ts_ms=3_000), POSITION, BALANCES, 5.0, 1)
    invisible = committed_fills(db)
    store.commit()

    assert invisible == 0
    assert committed_fills(db) == 2
    assert not store.pending
    store.close()


def test_a_rolled_back_batch_leaves_nothing_and_the_store_stays_usable(db: str) -> None:
    """rollback() drops every write of the open batch; the next batch commits normally."""
    store = fresh(db)
    store.autocommit = False
    store.record_fill(a_fill("f-1"), POSITION, BALANCES, 5.0, 1)
    store.record_order(an_order("o-1", OrderStatus.OPEN))

    store.rollback()
    store.record_fill(a_fill("f-2"), POSITION, BALANCES, 5.0, 1)
    store.commit()

    assert [f.fill_id for f in store.fills()] == ["f-2"]
    assert store.orders() == []
    store.close()


def test_closing_with_an_open_batch_drops_it(db: str) -> None:
    """Uncommitted writes are not durable: a reopened file has none of them."""
    store = fresh(db)
    store.autocommit = False
    store.record_fill(a_fill("f-1"), POSITION, BALANCES, 5.0, 1)
    store.close()

    with reopened(db) as again:
        assert again.fills() == []
        assert again.balances() == FUNDING


def test_insert_fill_refuses_an_id_already_stored(db: str) -> None:
    """The primary key is the exactly-once backstop: a stored id is refused, nothing written."""
    store = fresh(db)
    assert store.insert_fill(a_fill("f-1"))

    again = store.insert_fill(attrs.evolve(a_fill("f-1"), amount=9.0))

    assert again is False
    assert store.fills() == [a_fill("f-1")]
    store.close()


def test_write_books_keeps_a_stored_terminal_order(db: str) -> None:
    """Bulk order writes follow record_order's rule: a terminal row is never overwritten."""
    store = fresh(db)
    store.record_order(an_order("o-1", OrderStatus.FILLED, updated_ms=2_000))

    store.write_books(orders=[an_order("o-1", OrderStatus.OPEN, updated_ms=3_000)])

    assert [o.status for o in store.orders()] == [OrderStatus.FILLED]
    store.close()


def test_load_remembers_only_the_latest_fill_ids_but_counts_all(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart reloads a bounded window of ids (newest), and the true number of fills."""
    monkeypatch.setattr("actors.state.store.RECENT_FILLS", 2)
    monkeypatch.setattr("actors.state.ledger.RECENT_FILLS", 2)
    store = fresh(db)
    for n in range(1, 5):
        store.record_fill(a_fill(f"f-{n}", ts_ms=1_000 + n), POSITION, BALANCES, 5.0, 1)

    ledger = store.load()

    assert ledger.fill_ids == {"f-3", "f-4"}
    assert ledger.fill_count == 4
    store.close()


def test_balances_rewritten_after_a_rollback_are_stored(db: str) -> None:
    """Only changed balances are written; a rolled-back write is not taken as stored, so the
    same amounts written again after the rollback reach the table."""
    store = fresh(db)
    store.autocommit = False
    changed = {**FUNDING, "BTC": 0.5}
    store.write_books(balances=changed)
    store.rollback()
    store.write_books(balances=changed)
    store.commit()
    store.write_books(balances={**changed, "USDT": 1.0})  # one asset changed
    store.commit()
    store.close()

    with reopened(db) as again:
        assert again.balances() == {**changed, "USDT": 1.0}
