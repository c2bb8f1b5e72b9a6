"""The trading state's database, one interface over SQLite and PostgreSQL; the only code
that writes it.

``StateStore`` holds every query, written once with ``?`` placeholders; a backend subclass
(``actors.state.sqlite.SqliteStore``, ``actors.state.postgres.PostgresStore``) only connects,
names its errors and its transaction start, and ``open_store`` picks one from the location
(``actors.state.location``). The layout and its migrations are ``actors.state.schema``.

A store belongs to the state actor. It is opened by the thread that starts the system (so a
bad path, URL or password fails there, with a clear error) and then used only by the state
actor's thread: one user at a time, never two threads at once — the connection does not lock.

Durability: every commit is durable on the backend's terms (SQLite: WAL with
``synchronous=NORMAL``, a commit survives a crash of the process; PostgreSQL: the server's WAL,
fsynced at commit). By default every state change is one transaction (``record_fill`` writes
the fill, the position, the balances, the realized PnL and the peak equity together, or
nothing). With ``autocommit = False`` (group commit) the changes join one open transaction
until ``commit()``: a batch is committed together or not at all, a failed write rolls back the
whole uncommitted batch, and each committed batch raises ``commit_seq`` (stored in ``meta``)
so that a writer whose connection died during COMMIT can tell, after reconnecting, whether the
batch landed. ``load`` rebuilds the ``Ledger`` (with only the most recent fill ids: the
``fills`` primary key is what refuses older duplicates), so a second run continues where the
first stopped.

Layout: enums are stored by value, floats as REAL (DOUBLE PRECISION), strategy specs as JSON
(tuples restored on the way back), ``meta`` values as text; ``seq`` numbers fills and orders
in the order they were first written.

Failure: ``StateStoreError`` when the database cannot be opened or is not a state database,
and for any database error while writing (the transaction is rolled back first);
``StateUnavailableError``, its subclass, when the server cannot be reached or the connection
was lost: the same call may work once the server is back. Messages never hold a password.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from actors.messages import (
    AuditRecord,
    ClosedTrade,
    ExitReason,
    Fill,
    GetAudit,
    GetEquity,
    GetFills,
    GetOrders,
    GetTrades,
    HistoryQuery,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    StrategySpec,
)
from actors.state.ledger import RECENT_FILLS, RECENT_ORDERS, Ledger
from actors.state.location import StateLocation, StateLocationError, parse_location
from actors.state.schema import SCHEMA_VERSION, UNFINISHED, migrate, unfinished

_T = TypeVar("_T")
_TERMINAL = tuple(s.value for s in OrderStatus if s.is_terminal)
_ORDER_COLUMNS = (
    "order_id, pair, side, order_type, reason, amount, status, created_ms, updated_ms,"
    " limit_price, filled, average_price, fee, reject_reason"
)
_FILL_COLUMNS = "fill_id, order_id, pair, side, amount, price, fee, ts_ms, maker"
_INSERT_NEW_FILL = f"INSERT INTO fills ({_FILL_COLUMNS}, seq) VALUES (?,?,?,?,?,?,?,?,?,?)"
"""A fill whose id must be new: a stored one fails (deferred rows, checked at the commit)."""
_INSERT_FILL = f"{_INSERT_NEW_FILL} ON CONFLICT (fill_id) DO NOTHING"
_ORDER_CONFLICT = (
    " ON CONFLICT (order_id) DO UPDATE SET"
    " pair = excluded.pair, side = excluded.side, order_type = excluded.order_type,"
    " reason = excluded.reason, amount = excluded.amount, status = excluded.status,"
    " created_ms = excluded.created_ms, updated_ms = excluded.updated_ms,"
    " limit_price = excluded.limit_price, filled = excluded.filled,"
    " average_price = excluded.average_price, fee = excluded.fee,"
    " reject_reason = excluded.reject_reason"
    f" WHERE {unfinished('orders.status')} AND excluded.updated_ms >= orders.updated_ms"
)
_UPSERT_ORDER = (f"INSERT INTO orders ({_ORDER_COLUMNS}, seq)"
                 f" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?){_ORDER_CONFLICT}")
_UPSERT_UNPRICED_ORDER = (f"INSERT INTO orders ({_ORDER_COLUMNS}, seq)"
                          f" VALUES (?,?,?,?,?,?,?,?,?,NULL,?,?,?,?,?){_ORDER_CONFLICT}")
"""A market order's row: its ``limit_price`` NULL written out, not bound. sqlite3 binds None
through its adapter lookup (``__adapt__``, ``__conform__``): 3,300 instructions a row."""


def _upsert(table: str, key: str, columns: Sequence[str]) -> str:
    """Insert a row or replace the one with the same ``key`` (both dialects' syntax)."""
    names = (key, *columns)
    return (f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
            f" ON CONFLICT ({key}) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in columns))


_UPSERT_POSITION = _upsert("positions", "pair",
                           ("amount", "entry_price", "cost", "opened_ms", "peak_price", "trip_pnl"))
_UPSERT_BALANCE = _upsert("balances", "asset", ("amount",))
_UPSERT_PNL = _upsert("pnl", "pair", ("realized", "trades"))
_UPSERT_META = _upsert("meta", "key", ("value",))
_UPSERT_EQUITY = _upsert("equity", "ts_ms", ("equity",))
_UPSERT_STRATEGY = _upsert("strategies", "pair", ("spec", "generation"))


def _reads(method: Callable[..., _T]) -> Callable[..., _T]:
    """A read whose driver errors become ``StateStoreError`` (or ``StateUnavailableError``)."""

    @functools.wraps(method)
    def read(self: StateStore, *args: Any, **kwargs: Any) -> _T:
        try:
            return method(self, *args, **kwargs)
        except self.errors as exc:
            raise self._error(f"cannot read {self.path!r}", exc) from exc

    return read


class StateStoreError(RuntimeError):
    """The state database cannot be opened, is not ours, or a write failed."""


class StateUnavailableError(StateStoreError):
    """The database server cannot be reached, or the connection to it was lost; nothing of the
    open transaction is stored, and the same work may succeed once it is back."""


def open_store(location: str | StateLocation, password: str | None = None) -> StateStore:
    """Open (creating or migrating as needed) the state database at ``location``: a path,
    ``:memory:`` or a ``postgresql://`` URL; ``password`` is for PostgreSQL (None: libpq's
    ``~/.pgpass``, or none).

    Raises:
        StateStoreError: the location is malformed, or see the backends.
    """
    if isinstance(location, str):
        try:
            location = parse_location(location)
        except StateLocationError as exc:
            raise StateStoreError(f"state database {exc}") from None
    if location.is_postgresql:
        from actors.state.postgres import PostgresStore

        return PostgresStore(location, password)
    from actors.state.sqlite import SqliteStore

    return SqliteStore(location)


class StateStore:
    """The state database at ``location``; built by ``open_store`` through a backend.

    Raises:
        StateStoreError: the database cannot be opened, is not a trade-conductor state
            database, or has a newer schema.
    """

    dialect: ClassVar[str]
    errors: tuple[type[Exception], ...]
    """The driver's exceptions, turned into ``StateStoreError`` by ``_error``."""
    begin_sql: ClassVar[str] = "BEGIN"
    on_server: ClassVar[bool] = False
    """The database is a server's: each statement waited on is a round trip."""
    journal_mode = ""
    """SQLite's journal mode (``wal`` for files); empty on a server."""

    def __init__(self, location: StateLocation) -> None:
        self.location = location
        self.path = location.display
        """Where the database is, fit to print (a URL never holds a password)."""
        self.autocommit = True
        """False: writes join one transaction until ``commit()`` (group commit)."""
        self._open = False
        # Balances as the table holds them (committed) and as the open transaction wrote them:
        # a write sends only the assets whose amount changed. With 200 pairs the table has 201
        # rows, a fill changes two, and each row is a statement that lets go of the GIL.
        self._balances_committed: dict[str, float] = {}
        self._balances_pending: dict[str, float] = {}
        self.commit_seq = 0
        """Group-commit batches committed over the database's life (see the module doc)."""
        self.defer_inserts = False
        """True: fill and trade rows are sent with the COMMIT, not one round trip each, and
        ``insert_fill`` trusts the caller that the id is new (the state actor's answer-first
        mode on a server, where the ledger's memory of recent ids and our own paper exchange
        are the guard). A stored id then fails the commit, and the state actor handles the
        batch again with a check per fill."""
        self._deferred_fills: list[tuple[Any, ...]] = []
        self._deferred_trades: list[tuple[Any, ...]] = []
        self._seq = 0
        self._conn: Any = self._connect()
        self._write: Callable[[str, tuple[Any, ...]], Any] = self._conn.execute
        """Runs the per-fill statements (a backend may keep one cursor for them)."""
        try:
            self._prepare()
            self._migrate()
            self._seq = max(int(self._conn.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {t}")
                                .fetchone()[0]) for t in ("fills", "orders", "trades", "audit"))
            self.commit_seq = int(self._meta("commit_seq") or 0)
        except self.errors as exc:
            self._disconnect()
            raise self._error(f"cannot open state database {self.path!r}", exc) from exc
        except BaseException:
            self._disconnect()
            raise

    # -- what a backend provides ---------------------------------------------------------------

    def _connect(self) -> Any:
        """A connection with sqlite3's ``execute``/``executemany`` and ``?`` placeholders, in
        autocommit mode (``begin_sql`` opens transactions)."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Settings for the new connection (SQLite's journal)."""

    def _table_names(self) -> set[str]:
        raise NotImplementedError

    def _pipeline(self) -> AbstractContextManager[Any]:
        """Statements sent together, their results read at the end (a server's round trips;
        errors surface when the block ends)."""
        return nullcontext()

    def _disconnect(self) -> None:
        with suppress(*self.errors):
            self._conn.close()

    def _error(self, context: str, exc: BaseException) -> StateStoreError:
        """``exc`` (one of ``errors``) as a ``StateStoreError`` that says ``context``."""
        return StateStoreError(f"{context}: {exc}")

    # -- schema ----------------------------------------------------------------------------------

    def _migrate(self) -> None:
        tables = self._table_names()
        if "schema_version" not in tables:
            if tables:
                raise StateStoreError(
                    f"{self.path!r} is a database but not a trade-conductor state database "
                    "(it has tables but no schema_version table); give an empty or new one")
            current = 0
        else:
            current = int(self._conn.execute("SELECT MAX(version) FROM schema_version")
                          .fetchone()[0] or 0)
        if current > SCHEMA_VERSION:
            raise StateStoreError(
                f"state database {self.path!r} has schema version {current}, "
                f"this code reads versions up to {SCHEMA_VERSION}; run a newer trade-conductor")
        self.migrated = migrate(current, self.dialect, self._apply)
        """The schema versions this open applied (empty: the database was current)."""

    def _apply(self, statements: Sequence[str], version: int) -> None:
        with self.transaction():
            for statement in statements:
                self._conn.execute(statement)
            self._conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    # -- transactions --------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write: commit at the end, roll back on any exception.

        With ``autocommit`` off, the write joins the open batch (opening it if needed) and
        stays uncommitted until ``commit()``; an exception rolls back the whole batch.
        """
        self.begin()
        try:
            yield
        except self.errors as exc:
            self.rollback()
            raise self._error(f"write to {self.path!r} failed", exc) from exc
        except BaseException:
            self.rollback()
            raise
        if self.autocommit:
            self.commit()

    def begin(self) -> None:
        """Open a transaction unless one is open already."""
        if self._open:
            return
        try:
            self._conn.execute(self.begin_sql)
        except self.errors as exc:
            raise self._error(f"cannot write {self.path!r}", exc) from exc
        self._open = True

    def commit(self) -> None:
        """Commit the open transaction, if any (a failed commit is rolled back and raised).

        With ``autocommit`` off the batch also raises ``commit_seq``, inside the transaction.
        """
        if not self._open:
            return
        batch = self.commit_seq + 1 if not self.autocommit else None
        try:
            with self._pipeline():
                self._send_deferred()
                if batch is not None:
                    self._write_meta("commit_seq", batch)
                self._conn.execute("COMMIT")
        except self.errors as exc:
            self.rollback()
            raise self._error(f"cannot commit to {self.path!r}", exc) from exc
        self._open = False
        if batch is not None:
            self.commit_seq = batch
        if self._balances_pending:
            self._balances_committed.update(self._balances_pending)
            self._balances_pending.clear()

    def rollback(self) -> None:
        """Drop every uncommitted write (idempotent; the connection stays usable)."""
        was_open, self._open = self._open, False
        self._balances_pending.clear()
        self._deferred_fills.clear()
        self._deferred_trades.clear()
        if was_open:
            # The database may have rolled back already (SQLite on a full disk, a server
            # that went away): nothing left to drop.
            with suppress(*self.errors):
                self._conn.execute("ROLLBACK")

    @property
    def pending(self) -> bool:
        """True while a transaction is open, i.e. writes are not yet committed."""
        return self._open

    # -- lifecycle -----------------------------------------------------------------------------

    def wait_for_flush(self, wait: bool) -> None:
        """Whether COMMIT returns only once the server has flushed it to disk (PostgreSQL's
        ``synchronous_commit``). Without the wait a crash of the server (not of this process)
        may lose the last commits, never half of one: SQLite's ``synchronous=NORMAL``, which
        SQLite always runs with, so this changes nothing there."""

    def hand_off_checkpoints(self) -> bool:
        """Stop checkpointing SQLite's WAL inside this connection's commits (another thread
        does, see ``actors.state.wal_checkpointer``); False where there is no such log."""
        return False

    def truncate_wal(self) -> bool:
        """Empty SQLite's WAL between two transactions (see ``actors.state.wal_checkpointer``);
        False where the log still had a reader, or there is none."""
        return False

    def close(self) -> None:
        """Close the connection (idempotent).

        Uncommitted writes are dropped: whoever uses group commit commits first.
        """
        self._open = False
        self._balances_pending.clear()
        self._disconnect()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def initialized(self) -> bool:
        """True once ``initialize`` ran on this database (in this run or an earlier one)."""
        return self._meta("quote") is not None

    def initialize(self, quote: str, balances: Mapping[str, float]) -> None:
        """Give a fresh database its quote currency and starting balances.

        Raises:
            StateStoreError: the database was initialized before.
        """
        if self.initialized:
            raise StateStoreError(f"state database {self.path!r} is already initialized")
        with self.transaction():
            self._write_meta("quote", quote)
            self._write_meta("initial_balances", json.dumps(dict(balances), sort_keys=True))
            self._write_balances(balances)
            # no positions yet, so the starting equity is the quote balance
            self._write_meta("peak_equity", float(balances.get(quote, 0.0)))

    # -- writes --------------------------------------------------------------------------------

    def record_order(self, order: Order) -> None:
        """Insert or update an order; a terminal row or a newer ``updated_ms`` is kept."""
        with self.transaction():
            self._conn.execute(*self._order_write(order))

    def record_fill(
        self,
        fill: Fill,
        position: Position | None,
        balances: Mapping[str, float],
        realized: float,
        trades: int,
        *,
        trip_pnl: float = 0.0,
        peak_equity: float | None = None,
    ) -> bool:
        """Write a fill and everything it changed in one transaction.

        Args:
            position: the pair's position after the fill; None deletes the row.
            balances: all balances after the fill.
            realized: the pair's realized PnL after the fill; ``trades`` its round trips.
            trip_pnl: realized PnL of the open position's round trip so far.
            peak_equity: the new peak equity, if it is to be written.

        Returns:
            False, writing nothing, when ``fill.fill_id`` is already stored.
        """
        with self.transaction():
            if not self.insert_fill(fill):
                return False
            self.write_books(
                positions=((fill.pair, position, trip_pnl),),
                balances=balances,
                pnl=((fill.pair, realized, trades),),
                peak_equity=peak_equity,
            )
        return True

    def insert_fill(self, fill: Fill) -> bool:
        """Insert the fill row unless its id is stored; False (nothing written) if it is.

        The ``fills`` primary key is the exactly-once backstop for ids the ledger no longer
        remembers. Call inside ``transaction()`` (or after ``begin()``) to keep it atomic with
        the changes it causes; a failure rolls the open transaction back.

        Raises:
            StateStoreError: the insert failed.
        """
        self._seq += 1
        row = (fill.fill_id, fill.order_id, fill.pair, fill.side._value_, fill.amount,
               fill.price, fill.fee, fill.ts_ms, int(fill.maker), self._seq)
        if self.defer_inserts:
            self._deferred_fills.append(row)
            return True
        return self._write_one(_INSERT_FILL, row)

    def delete_fill(self, fill_id: str) -> bool:
        """Delete a fill row (an inferred fill giving way to the real trades); False if there
        is none. Call inside the transaction that inserts what replaces it.

        Raises:
            StateStoreError: the delete failed.
        """
        return self._write_one("DELETE FROM fills WHERE fill_id = ?", (fill_id,))

    def _send_deferred(self) -> None:
        """Write the deferred fill and trade rows (a stored fill id raises the driver's
        unique-key error)."""
        if self._deferred_fills:
            self._conn.executemany(_INSERT_NEW_FILL, self._deferred_fills)
            self._deferred_fills.clear()
        if self._deferred_trades:
            self._conn.executemany(_INSERT_TRADE, self._deferred_trades)
            self._deferred_trades.clear()

    def _write_one(self, sql: str, row: tuple[Any, ...]) -> bool:
        """One statement inside the open transaction; True if it changed a row. The deferred
        rows go first, so statements keep their order (a fill deleted in the batch that
        inserted it). A failure rolls the transaction back and raises ``StateStoreError``."""
        try:
            if self.defer_inserts:
                self._send_deferred()
            cursor = self._write(sql, row)
        except self.errors as exc:
            self.rollback()
            raise self._error(f"write to {self.path!r} failed", exc) from exc
        return bool(cursor.rowcount == 1)

    def write_books(
        self,
        *,
        positions: Iterable[tuple[str, Position | None, float]] = (),
        balances: Mapping[str, float] | None = None,
        pnl: Iterable[tuple[str, float, int]] = (),
        peak_equity: float | None = None,
        orders: Iterable[Order] = (),
    ) -> None:
        """Write the latest values of many rows at once (group commit flushes through here).

        Args:
            positions: ``(pair, position or None to delete, trip_pnl)`` per pair.
            balances: all balances, or None to leave them.
            pnl: ``(pair, realized, trades)`` per pair.
            peak_equity: the new peak equity, or None to leave it.
            orders: orders to upsert, with ``record_order``'s rule (a terminal row or a newer
                ``updated_ms`` in the table is kept).
        """
        conn = self._conn
        with self.transaction(), self._pipeline():
            kept: list[tuple[Any, ...]] = []
            gone: list[tuple[str]] = []
            for pair, position, trip in positions:
                if position is None:
                    gone.append((pair,))
                else:
                    kept.append((pair, position.amount, position.entry_price, position.cost,
                                 position.opened_ms, position.peak_price, trip))
            if gone:
                conn.executemany("DELETE FROM positions WHERE pair = ?", gone)
            if kept:
                conn.executemany(_UPSERT_POSITION, kept)
            if balances is not None:
                self._write_balances(balances)
            # Each statement lets go of the GIL and may wait to get it back behind busy
            # threads: an empty one is skipped, not sent.
            pnl_rows = list(pnl)
            if pnl_rows:
                conn.executemany(_UPSERT_PNL, pnl_rows)
            if peak_equity is not None:
                self._write_meta("peak_equity", peak_equity)
            priced: list[tuple[Any, ...]] = []
            unpriced: list[tuple[Any, ...]] = []
            for order in orders:
                sql, row = self._order_write(order)
                (unpriced if sql is _UPSERT_UNPRICED_ORDER else priced).append(row)
            if priced:
                conn.executemany(_UPSERT_ORDER, priced)
            if unpriced:
                conn.executemany(_UPSERT_UNPRICED_ORDER, unpriced)

    def record_peak_price(self, pair: str, price: float) -> None:
        """Store a raised trailing-stop peak of the pair's open position."""
        with self.transaction():
            self._conn.execute("UPDATE positions SET peak_price = ? WHERE pair = ?", (price, pair))

    def record_strategy(self, pair: str, spec: StrategySpec, generation: int = 0) -> None:
        with self.transaction():
            self._conn.execute(_UPSERT_STRATEGY, (pair, spec_to_json(spec), generation))

    def record_equity(
        self, ts_ms: int | None, equity: float, peak_equity: float | None = None
    ) -> None:
        """Append an equity point (``ts_ms`` None: none) and store the peak, together."""
        with self.transaction():
            if ts_ms is not None:
                self._conn.execute(_UPSERT_EQUITY, (ts_ms, equity))
            if peak_equity is not None:
                self._write_meta("peak_equity", peak_equity)

    def insert_trade(self, trade: ClosedTrade) -> None:
        """Record a finished round trip: inside the fill's transaction, like ``insert_fill``.

        Raises:
            StateStoreError: the insert failed.
        """
        self._seq += 1
        row = (trade.pair, trade.opened_ms, trade.closed_ms, trade.amount, trade.entry_price,
               trade.exit_price, trade.pnl, trade.reason._value_, self._seq)
        if self.defer_inserts:
            self._deferred_trades.append(row)
        else:
            self._write_one(_INSERT_TRADE, row)

    def insert_audit(self, record: AuditRecord) -> None:
        with self.transaction():
            self._seq += 1
            self._conn.execute(
                f"INSERT INTO audit ({_AUDIT_COLUMNS}, seq) VALUES (?,?,?,?,?,?,?)",
                (record.ts_ms, record.actor, record.action, record.target, record.detail,
                 record.outcome, self._seq))

    def keep_manual_halt(self, reason: str | None) -> None:
        """Keep the halt made by hand (``reason``, "" for none given), or None: lifted."""
        with self.transaction():
            self._write_meta("manual_halt", json.dumps(reason))

    def manual_halt(self) -> str | None:
        """The halt made by hand that was in force when the last run ended (its reason), or
        None."""
        raw = self._meta("manual_halt")
        reason = None if raw is None else json.loads(raw)
        return reason if isinstance(reason, str) else None

    def _write_balances(self, balances: Mapping[str, float]) -> None:
        """Write the assets whose amount differs from what the table holds."""
        pending, committed = self._balances_pending, self._balances_committed
        rows = []
        for asset, value in balances.items():
            amount = float(value)
            if pending.get(asset, committed.get(asset)) != amount:
                rows.append((asset, amount))
                pending[asset] = amount
        if rows:
            self._conn.executemany(_UPSERT_BALANCE, rows)

    def _write_meta(self, key: str, value: str | float) -> None:
        """Meta values are text on every backend (SQLite's untyped column holds older REALs,
        which read back the same through ``float``)."""
        self._conn.execute(_UPSERT_META, (key, value if isinstance(value, str) else repr(value)))

    def _order_write(self, order: Order) -> tuple[str, tuple[Any, ...]]:
        """The statement and parameters that upsert ``order``'s row (numbered by ``seq``)."""
        self._seq += 1
        if order.limit_price is None:
            return _UPSERT_UNPRICED_ORDER, _order_row(order, self._seq)
        return _UPSERT_ORDER, _order_row(order, self._seq, priced=True)

    # -- reads ---------------------------------------------------------------------------------

    @_reads
    def _meta(self, key: str) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    @property
    def quote(self) -> str | None:
        value = self._meta("quote")
        return None if value is None else str(value)

    def initial_balances(self) -> dict[str, float]:
        raw = self._meta("initial_balances")
        return {} if raw is None else dict(json.loads(raw))

    @_reads
    def balances(self) -> dict[str, float]:
        return dict(self._conn.execute("SELECT asset, amount FROM balances ORDER BY asset"))

    @_reads
    def orders(self, pair: str | None = None) -> list[Order]:
        """Every stored order (terminal ones too), oldest first."""
        where, args = ("WHERE pair = ?", (pair,)) if pair is not None else ("", ())
        rows = self._conn.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders {where} ORDER BY created_ms, order_id", args
        )
        return [_order(row) for row in rows]

    @_reads
    def fills(self, pair: str | None = None, *, since_ms: int | None = None,
              order_ids: Iterable[str] | None = None) -> list[Fill]:
        """The stored fills, in time order: every one, or those of ``pair``, from ``since_ms``
        on, of ``order_ids`` (filtered here, so a long history never becomes objects)."""
        clauses: list[str] = []
        args: list[Any] = []
        if pair is not None:
            clauses.append("pair = ?")
            args.append(pair)
        if since_ms is not None:
            clauses.append("ts_ms >= ?")
            args.append(since_ms)
        if order_ids is not None:
            ids = list(order_ids)
            if not ids:
                return []
            clauses.append(f"order_id IN ({', '.join('?' * len(ids))})")
            args.extend(ids)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn.execute(
            f"SELECT {_FILL_COLUMNS} FROM fills {where} ORDER BY ts_ms, seq", args
        )
        return [_fill(row) for row in rows]

    @_reads
    def equity_history(self, since_ms: int = 0) -> list[tuple[int, float]]:
        """Equity points ``(ts_ms, equity)`` from ``since_ms`` on, oldest first."""
        rows = self._conn.execute(
            "SELECT ts_ms, equity FROM equity WHERE ts_ms >= ? ORDER BY ts_ms", (since_ms,)
        )
        return [(int(ts), float(eq)) for ts, eq in rows]

    @_reads
    def page(self, query: HistoryQuery) -> tuple[Any, ...]:
        """One page of history, newest first: orders, fills, closed trades, equity points or
        audit records, as ``query``'s type says (``actors.messages.HistoryQuery``)."""
        table, columns, time_column, pair_column, build = _PAGES[type(query)]
        order = time_column if table == "equity" else f"{time_column} DESC, seq"
        clauses: list[str] = []
        args: list[Any] = []
        if query.pair is not None and pair_column:
            clauses.append(f"{pair_column} = ?")
            args.append(query.pair)
        if query.since_ms is not None:
            clauses.append(f"{time_column} >= ?")
            args.append(query.since_ms)
        if query.until_ms is not None:
            clauses.append(f"{time_column} <= ?")
            args.append(query.until_ms)
        if isinstance(query, GetOrders) and query.open_only:
            clauses.append(UNFINISHED)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn.execute(
            f"SELECT {columns} FROM {table} {where} ORDER BY {order} DESC"
            " LIMIT ? OFFSET ?", (*args, query.limit, query.offset))
        return tuple(build(row) for row in rows)

    @_reads
    def last_equity_ms(self) -> int | None:
        row = self._conn.execute("SELECT MAX(ts_ms) FROM equity").fetchone()
        return None if row[0] is None else int(row[0])

    @_reads
    def load(self, *, lots: Mapping[str, float] | None = None) -> Ledger:
        """Rebuild the in-memory ledger from the database.

        Open orders are the non-terminal ones; the latest ``RECENT_ORDERS`` terminal orders and
        the latest ``RECENT_FILLS`` fill ids are remembered too. Marks are market data and are
        not stored: equity counts positions at their entry price until the first
        ``MarkPrices`` of the new run.

        Raises:
            StateStoreError: the database was never initialized.
        """
        quote = self.quote
        if quote is None:
            raise StateStoreError(f"state database {self.path!r} is not initialized")
        conn = self._conn
        placeholders = ", ".join("?" for _ in _TERMINAL)
        positions: list[Position] = []
        trip_pnl: dict[str, float] = {}
        for pair, amount, entry, cost, opened, peak, trip in conn.execute(
            "SELECT pair, amount, entry_price, cost, opened_ms, peak_price, trip_pnl"
            " FROM positions ORDER BY pair"
        ):
            positions.append(
                Position(
                    pair=pair,
                    amount=amount,
                    entry_price=entry,
                    cost=cost,
                    opened_ms=opened,
                    peak_price=peak,
                )
            )
            trip_pnl[pair] = trip
        open_orders = [
            _order(row)
            for row in conn.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE {UNFINISHED}"
                " ORDER BY created_ms, order_id"
            )
        ]
        recent = [
            _order(row)
            for row in conn.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status IN ({placeholders})"
                " ORDER BY updated_ms DESC, seq DESC LIMIT ?",
                (*_TERMINAL, RECENT_ORDERS),
            )
        ]
        realized: dict[str, float] = {}
        trades: dict[str, int] = {}
        for pair, pnl, count in conn.execute("SELECT pair, realized, trades FROM pnl"):
            realized[pair] = pnl
            trades[pair] = count
        strategies = {
            pair: spec_from_json(raw)
            for pair, raw in conn.execute("SELECT pair, spec FROM strategies")
        }
        pairs = [
            row[0]
            for row in conn.execute(
                "SELECT pair FROM orders UNION SELECT pair FROM fills"
                " UNION SELECT pair FROM strategies"
            )
        ]
        peak = self._meta("peak_equity")
        return Ledger.restore(
            quote=quote,
            balances=self.balances(),
            positions=positions,
            trip_pnl=trip_pnl,
            open_orders=open_orders,
            recent_orders=reversed(recent),
            realized=realized,
            trades=trades,
            strategies=strategies,
            fill_ids=[
                row[0]
                for row in conn.execute(
                    "SELECT fill_id FROM fills ORDER BY seq DESC LIMIT ?", (RECENT_FILLS,)
                )
            ][::-1],
            fill_count=int(conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0]),
            order_count=int(conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]),
            pairs=pairs,
            peak_equity=None if peak is None else float(peak),
            lots=lots,
        )


# -- rows ------------------------------------------------------------------------------------


def _order_row(order: Order, seq: int, *, priced: bool = False) -> tuple[Any, ...]:
    """The row's values in ``_ORDER_COLUMNS`` order, then ``seq``; ``limit_price`` only where
    ``priced`` (see ``_UPSERT_UNPRICED_ORDER``)."""
    # ``_value_``, the enum's documented attribute for a member's value, is a plain attribute;
    # ``.value`` is a Python-level property in 3.11, and a map keyed by the member would call
    # Enum's Python-level ``__hash__`` (84 and 61 ns against 7 ns, five times per order).
    head = (order.order_id, order.pair, order.side._value_, order.order_type._value_,
            order.reason._value_, order.amount, order.status._value_, order.created_ms,
            order.updated_ms)
    tail = (order.filled, order.average_price, order.fee, order.reject_reason, seq)
    return (*head, order.limit_price, *tail) if priced else (*head, *tail)


def _order(row: tuple[Any, ...]) -> Order:
    (
        order_id,
        pair,
        side,
        order_type,
        reason,
        amount,
        status,
        created,
        updated,
        limit_price,
        filled,
        average_price,
        fee,
        reject_reason,
    ) = row
    return Order(
        order_id=order_id,
        pair=pair,
        side=Side(side),
        order_type=OrderType(order_type),
        reason=ExitReason(reason),
        amount=amount,
        status=OrderStatus(status),
        created_ms=created,
        updated_ms=updated,
        limit_price=limit_price,
        filled=filled,
        average_price=average_price,
        fee=fee,
        reject_reason=reject_reason,
    )


def _fill(row: tuple[Any, ...]) -> Fill:
    fill_id, order_id, pair, side, amount, price, fee, ts_ms, maker = row
    return Fill(
        fill_id=fill_id,
        order_id=order_id,
        pair=pair,
        side=Side(side),
        amount=amount,
        price=price,
        fee=fee,
        ts_ms=ts_ms,
        maker=bool(maker),
    )


_TRADE_COLUMNS = "pair, opened_ms, closed_ms, amount, entry_price, exit_price, pnl, reason"
_INSERT_TRADE = f"INSERT INTO trades ({_TRADE_COLUMNS}, seq) VALUES (?,?,?,?,?,?,?,?,?)"
_AUDIT_COLUMNS = "ts_ms, actor, action, target, detail, outcome"


def _trade(row: tuple[Any, ...]) -> ClosedTrade:
    pair, opened, closed, amount, entry, exit_price, pnl, reason = row
    return ClosedTrade(pair=pair, opened_ms=opened, closed_ms=closed, amount=amount,
                       entry_price=entry, exit_price=exit_price, pnl=pnl,
                       reason=ExitReason(reason))


def _audit(row: tuple[Any, ...]) -> AuditRecord:
    ts_ms, actor, action, target, detail, outcome = row
    return AuditRecord(ts_ms=ts_ms, actor=actor, action=action, target=target, detail=detail,
                       outcome=outcome)


def _point(row: tuple[Any, ...]) -> tuple[int, float]:
    return int(row[0]), float(row[1])


_PAGES: dict[type[HistoryQuery], tuple[str, str, str, str, Callable[[tuple[Any, ...]], Any]]] = {
    GetOrders: ("orders", _ORDER_COLUMNS, "created_ms", "pair", _order),
    GetFills: ("fills", _FILL_COLUMNS, "ts_ms", "pair", _fill),
    GetTrades: ("trades", _TRADE_COLUMNS, "closed_ms", "pair", _trade),
    GetEquity: ("equity", "ts_ms, equity", "ts_ms", "", _point),
    GetAudit: ("audit", _AUDIT_COLUMNS, "ts_ms", "target", _audit),
}
"""Per history query: table, columns, time column, pair column ("" for none), row builder."""


# -- strategy specs as JSON ------------------------------------------------------------------


def spec_to_json(spec: StrategySpec) -> str:
    """Encode a spec (members recursively); params must be JSON values, tuples or str-keyed dicts.

    Raises:
        StateStoreError: naming the parameter that JSON cannot hold.
    """
    return json.dumps(_encode_spec(spec), sort_keys=True)


def spec_from_json(text: str) -> StrategySpec:
    """Decode ``spec_to_json``; JSON arrays come back as tuples, so specs compare equal."""
    return _decode_spec(json.loads(text))


def _encode_spec(spec: StrategySpec) -> dict[str, Any]:
    return {
        "path": spec.path,
        "params": [[key, _encode_value(spec.path, key, value)] for key, value in spec.params],
        "members": [[_encode_spec(member), weight] for member, weight in spec.members],
    }


def _encode_value(path: str, key: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_encode_value(path, key, v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _encode_value(path, key, v) for k, v in value.items()}
    raise StateStoreError(
        f"strategy {path!r} parameter {key!r}={value!r} cannot be stored: expected a number, "
        "string, bool, None, tuple or str-keyed dict"
    )


def _decode_spec(data: dict[str, Any]) -> StrategySpec:
    return StrategySpec(
        path=data["path"],
        params=tuple((key, _decode_value(value)) for key, value in data["params"]),
        members=tuple((_decode_spec(member), weight) for member, weight in data["members"]),
    )


def _decode_value(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode_value(v) for v in value)
    if isinstance(value, dict):
        return {k: _decode_value(v) for k, v in value.items()}
    return value
