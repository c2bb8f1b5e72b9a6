"""SQLite persistence of the trading state; the only code that writes the state database.

``StateStore`` belongs to the state actor. It is opened by the thread that starts the system
(so a bad path fails there, with a clear error) and then used only by the state actor's
thread: one user at a time, never two threads at once — the connection does not lock.

Durability: WAL journal with ``synchronous=NORMAL`` — a commit survives a crash of the
process; a power loss may lose the last commits but never leaves a half-written change. By
default every state change is one transaction (``record_fill`` writes the fill, the position,
the balances, the realized PnL and the peak equity together, or nothing). With
``autocommit = False`` (group commit) the changes join one open transaction until
``commit()``: a batch of changes is then committed together or not at all, and a failed write
rolls back the whole uncommitted batch. ``load`` rebuilds the ``Ledger`` (with only the most
recent fill ids: the ``fills`` primary key is what refuses older duplicates), so a second run
on the same file continues where the first stopped.

Layout: enums are stored by value, floats as REAL, strategy specs as JSON (tuples restored
on the way back). A ``schema_version`` table guards against opening a database written by a
newer layout.

Failure: ``StateStoreError`` when the file cannot be opened or is not a state database,
and for any SQLite error while writing (the transaction is rolled back first).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Any

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
from actors.state.ledger import RECENT_FILLS, RECENT_ORDERS, Ledger

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value);
CREATE TABLE balances (asset TEXT PRIMARY KEY, amount REAL NOT NULL);
CREATE TABLE positions (
    pair TEXT PRIMARY KEY,
    amount REAL NOT NULL,
    entry_price REAL NOT NULL,
    cost REAL NOT NULL,
    opened_ms INTEGER NOT NULL,
    peak_price REAL NOT NULL,
    trip_pnl REAL NOT NULL DEFAULT 0
);
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    pair TEXT NOT NULL,
    side TEXT NOT NULL,
    order_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    amount REAL NOT NULL,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    limit_price REAL,
    filled REAL NOT NULL,
    average_price REAL NOT NULL,
    fee REAL NOT NULL,
    reject_reason TEXT NOT NULL
);
CREATE INDEX orders_by_status ON orders (status, updated_ms);
CREATE TABLE fills (
    fill_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    pair TEXT NOT NULL,
    side TEXT NOT NULL,
    amount REAL NOT NULL,
    price REAL NOT NULL,
    fee REAL NOT NULL,
    ts_ms INTEGER NOT NULL,
    maker INTEGER NOT NULL
);
CREATE TABLE pnl (pair TEXT PRIMARY KEY, realized REAL NOT NULL, trades INTEGER NOT NULL);
CREATE TABLE strategies (
    pair TEXT PRIMARY KEY, spec TEXT NOT NULL, generation INTEGER NOT NULL
);
CREATE TABLE equity (ts_ms INTEGER PRIMARY KEY, equity REAL NOT NULL);
"""

_TERMINAL = tuple(s.value for s in OrderStatus if s.is_terminal)
_ORDER_COLUMNS = (
    "order_id, pair, side, order_type, reason, amount, status, created_ms, updated_ms,"
    " limit_price, filled, average_price, fee, reject_reason"
)
_FILL_COLUMNS = "fill_id, order_id, pair, side, amount, price, fee, ts_ms, maker"
_INSERT_FILL = (
    f"INSERT INTO fills ({_FILL_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (fill_id) DO NOTHING"
)
_UPSERT_ORDER = (
    f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (order_id) DO UPDATE SET"
    " pair = excluded.pair, side = excluded.side, order_type = excluded.order_type,"
    " reason = excluded.reason, amount = excluded.amount, status = excluded.status,"
    " created_ms = excluded.created_ms, updated_ms = excluded.updated_ms,"
    " limit_price = excluded.limit_price, filled = excluded.filled,"
    " average_price = excluded.average_price, fee = excluded.fee,"
    " reject_reason = excluded.reject_reason"
    f" WHERE orders.status NOT IN ({', '.join('?' for _ in _TERMINAL)})"
    " AND excluded.updated_ms >= orders.updated_ms"
)


class StateStoreError(RuntimeError):
    """The state database cannot be opened, is not ours, or a write failed."""


class StateStore:
    """The state database at ``path`` (``":memory:"`` for a throwaway one).

    Raises:
        StateStoreError: the file cannot be opened (e.g. its directory does not exist — the
            caller creates it), is not an SQLite database, or has a newer schema.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.autocommit = True
        """False: writes join one transaction until ``commit()`` (group commit)."""
        self._open = False
        # Balances as the table holds them (committed) and as the open transaction wrote them:
        # a write sends only the assets whose amount changed. With 200 pairs the table has 201
        # rows, a fill changes two, and each row is a statement that lets go of the GIL.
        self._balances_committed: dict[str, float] = {}
        self._balances_pending: dict[str, float] = {}
        try:
            # Opened by the thread that starts the system (so a bad path fails there, with a
            # clear error) and then used only by the state actor's thread: one user at a time.
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot open state database {path!r}: {exc}") from exc
        try:
            self.journal_mode: str = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            self._conn.close()
            raise StateStoreError(f"cannot open state database {path!r}: {exc}") from exc

    def _migrate(self) -> None:
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if exists is None:
            if self._conn.execute("SELECT 1 FROM sqlite_master").fetchone() is not None:
                raise StateStoreError(
                    f"{self.path!r} is an SQLite database but not a trade-conductor state "
                    "database (it has no schema_version table)"
                )
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            return
        row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if row[0] != SCHEMA_VERSION:
            raise StateStoreError(
                f"state database {self.path!r} has schema version {row[0]}, "
                f"this code reads version {SCHEMA_VERSION}"
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write: commit at the end, roll back on any exception.

        With ``autocommit`` off, the write joins the open batch (opening it if needed) and
        stays uncommitted until ``commit()``; an exception rolls back the whole batch.
        """
        self.begin()
        try:
            yield
        except sqlite3.Error as exc:
            self.rollback()
            raise StateStoreError(f"write to {self.path!r} failed: {exc}") from exc
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
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot write {self.path!r}: {exc}") from exc
        self._open = True

    def commit(self) -> None:
        """Commit the open transaction, if any (a failed commit is rolled back and raised)."""
        if not self._open:
            return
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.rollback()
            raise StateStoreError(f"cannot commit to {self.path!r}: {exc}") from exc
        self._open = False
        if self._balances_pending:
            self._balances_committed.update(self._balances_pending)
            self._balances_pending.clear()

    def rollback(self) -> None:
        """Drop every uncommitted write (idempotent; the connection stays usable)."""
        was_open, self._open = self._open, False
        self._balances_pending.clear()
        if was_open:
            # SQLite may have rolled back already (e.g. on a full disk): nothing left to drop.
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    @property
    def pending(self) -> bool:
        """True while a transaction is open, i.e. writes are not yet committed."""
        return self._open

    # -- lifecycle -----------------------------------------------------------------------------

    def hand_off_checkpoints(self) -> bool:
        """Stop checkpointing the WAL inside this connection's commits (another thread does,
        see ``actors.state.wal_checkpointer``); False where there is no WAL (``:memory:``)."""
        if self.journal_mode != "wal":
            return False
        try:
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot configure {self.path!r}: {exc}") from exc
        return True

    def truncate_wal(self) -> bool:
        """Copy what is left of the WAL into the database file and empty the log; run by the
        writer between its transactions (see ``actors.state.wal_checkpointer``). False: a reader
        still needed the log, which stays as it was."""
        busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not busy

    def close(self) -> None:
        """Close the connection (idempotent); WAL content is checkpointed into the file.

        Uncommitted writes are dropped: whoever uses group commit commits first.
        """
        self._open = False
        self._balances_pending.clear()
        self._conn.close()

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
            self._conn.execute(_UPSERT_ORDER, (*_order_row(order), *_TERMINAL))

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
        row = (fill.fill_id, fill.order_id, fill.pair, fill.side.value, fill.amount, fill.price,
               fill.fee, fill.ts_ms, int(fill.maker))
        try:
            cursor = self._conn.execute(_INSERT_FILL, row)
        except sqlite3.Error as exc:
            self.rollback()
            raise StateStoreError(f"write to {self.path!r} failed: {exc}") from exc
        return cursor.rowcount == 1

    def delete_fill(self, fill_id: str) -> bool:
        """Delete a fill row (an inferred fill giving way to the real trades); False if there
        is none. Call inside the transaction that inserts what replaces it.

        Raises:
            StateStoreError: the delete failed.
        """
        try:
            cursor = self._conn.execute("DELETE FROM fills WHERE fill_id = ?", (fill_id,))
        except sqlite3.Error as exc:
            self.rollback()
            raise StateStoreError(f"write to {self.path!r} failed: {exc}") from exc
        return cursor.rowcount == 1

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
        with self.transaction():
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
                conn.executemany(
                    "INSERT OR REPLACE INTO positions"
                    " (pair, amount, entry_price, cost, opened_ms, peak_price, trip_pnl)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    kept,
                )
            if balances is not None:
                self._write_balances(balances)
            # Each statement lets go of the GIL and may wait to get it back behind busy
            # threads: an empty one is skipped, not sent.
            pnl_rows = list(pnl)
            if pnl_rows:
                conn.executemany(
                    "INSERT OR REPLACE INTO pnl (pair, realized, trades) VALUES (?, ?, ?)",
                    pnl_rows,
                )
            if peak_equity is not None:
                self._write_meta("peak_equity", peak_equity)
            order_rows = [(*_order_row(o), *_TERMINAL) for o in orders]
            if order_rows:
                conn.executemany(_UPSERT_ORDER, order_rows)

    def record_peak_price(self, pair: str, price: float) -> None:
        """Store a raised trailing-stop peak of the pair's open position."""
        with self.transaction():
            self._conn.execute("UPDATE positions SET peak_price = ? WHERE pair = ?", (price, pair))

    def record_strategy(self, pair: str, spec: StrategySpec, generation: int = 0) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT INTO strategies (pair, spec, generation) VALUES (?, ?, ?)"
                " ON CONFLICT (pair) DO UPDATE SET"
                " spec = excluded.spec, generation = excluded.generation",
                (pair, spec_to_json(spec), generation),
            )

    def record_equity(
        self, ts_ms: int | None, equity: float, peak_equity: float | None = None
    ) -> None:
        """Append an equity point (``ts_ms`` None: none) and store the peak, together."""
        with self.transaction():
            if ts_ms is not None:
                self._conn.execute(
                    "INSERT OR REPLACE INTO equity (ts_ms, equity) VALUES (?, ?)", (ts_ms, equity)
                )
            if peak_equity is not None:
                self._write_meta("peak_equity", peak_equity)

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
            self._conn.executemany(
                "INSERT OR REPLACE INTO balances (asset, amount) VALUES (?, ?)", rows)

    def _write_meta(self, key: str, value: Any) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # -- reads ---------------------------------------------------------------------------------

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

    def balances(self) -> dict[str, float]:
        return dict(self._conn.execute("SELECT asset, amount FROM balances ORDER BY asset"))

    def orders(self, pair: str | None = None) -> list[Order]:
        """Every stored order (terminal ones too), oldest first."""
        where, args = ("WHERE pair = ?", (pair,)) if pair is not None else ("", ())
        rows = self._conn.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders {where} ORDER BY created_ms, order_id", args
        )
        return [_order(row) for row in rows]

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
            clauses.append(f"order_id IN ({', '.join('?' * len(ids))})")
            args.extend(ids)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._conn.execute(
            f"SELECT {_FILL_COLUMNS} FROM fills {where} ORDER BY ts_ms, rowid", args
        )
        return [_fill(row) for row in rows]

    def equity_history(self, since_ms: int = 0) -> list[tuple[int, float]]:
        """Equity points ``(ts_ms, equity)`` from ``since_ms`` on, oldest first."""
        rows = self._conn.execute(
            "SELECT ts_ms, equity FROM equity WHERE ts_ms >= ? ORDER BY ts_ms", (since_ms,)
        )
        return [(int(ts), float(eq)) for ts, eq in rows]

    def last_equity_ms(self) -> int | None:
        row = self._conn.execute("SELECT MAX(ts_ms) FROM equity").fetchone()
        return None if row[0] is None else int(row[0])

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
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status NOT IN ({placeholders})"
                " ORDER BY created_ms, order_id",
                _TERMINAL,
            )
        ]
        recent = [
            _order(row)
            for row in conn.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status IN ({placeholders})"
                " ORDER BY updated_ms DESC, rowid DESC LIMIT ?",
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
                    "SELECT fill_id FROM fills ORDER BY rowid DESC LIMIT ?", (RECENT_FILLS,)
                )
            ][::-1],
            fill_count=conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0],
            order_count=conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0],
            pairs=pairs,
            peak_equity=None if peak is None else float(peak),
            lots=lots,
        )


# -- rows ------------------------------------------------------------------------------------


def _order_row(order: Order) -> tuple[Any, ...]:
    return (
        order.order_id,
        order.pair,
        order.side.value,
        order.order_type.value,
        order.reason.value,
        order.amount,
        order.status.value,
        order.created_ms,
        order.updated_ms,
        order.limit_price,
        order.filled,
        order.average_price,
        order.fee,
        order.reject_reason,
    )


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
