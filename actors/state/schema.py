"""The state database's layout, written once for SQLite and PostgreSQL, as versioned migrations.

The schema *is* its list of ``MIGRATIONS``: a new database runs all of them, an older one the
ones it lacks, each in its own transaction, and each adds its number to ``schema_version``
(``SELECT MAX(version) FROM schema_version`` says where a database is). Version 1 is the layout
the SQLite store wrote before PostgreSQL was served, statement for statement, so a database
from then migrates in place.

Tables and columns are declared with three logical types, rendered per dialect: ``int``
(SQLite ``INTEGER``, PostgreSQL ``BIGINT``: millisecond timestamps do not fit 32 bits),
``real`` (``REAL`` / ``DOUBLE PRECISION``: PostgreSQL's ``REAL`` is 4 bytes) and ``text``;
``any`` is SQLite's untyped column (the key-value ``meta`` table), ``TEXT`` on PostgreSQL, and
the store writes it only as text. Where the dialects cannot share a statement (a backfill that
needs SQLite's ``rowid``) a step carries one statement per dialect; a table SQLite alone keeps
in another layout (``WITHOUT ROWID``) is rebuilt there and left alone on PostgreSQL.

Runs on the thread that opens the store; a failure rolls the migration back and is the
caller's to report (the store raises ``StateStoreError``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

_TYPES = {
    SQLITE: {"int": "INTEGER", "real": "REAL", "text": "TEXT", "any": ""},
    POSTGRESQL: {"int": "BIGINT", "real": "DOUBLE PRECISION", "text": "TEXT", "any": "TEXT"},
}


@attrs.frozen
class Column:
    name: str
    type: str
    not_null: bool = True
    default: str | None = None
    primary_key: bool = False

    def render(self, dialect: str) -> str:
        parts = [self.name, _TYPES[dialect][self.type]]
        if self.primary_key:
            parts.append("PRIMARY KEY")
        elif self.not_null:
            parts.append("NOT NULL")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        return " ".join(p for p in parts if p)


@attrs.frozen
class Table:
    name: str
    columns: tuple[Column, ...]
    without_rowid: bool = False
    """SQLite only: the table is its primary key's B-tree (a TEXT key on a rowid table has a
    B-tree of its own beside the table's). Per row written about as costly (the whole row
    goes into the key's B-tree), and the key is stored once; PostgreSQL has no rowid."""

    def render(self, dialect: str) -> list[str]:
        body = ", ".join(c.render(dialect) for c in self.columns)
        layout = " WITHOUT ROWID" if self.without_rowid and dialect == SQLITE else ""
        return [f"CREATE TABLE {self.name} ({body}){layout}"]


@attrs.frozen
class Index:
    name: str
    table: str
    columns: tuple[str, ...]
    where: str = ""
    """A partial index (both dialects have them): only the rows this condition holds for. A
    query uses it only where its own condition is this text, literally (not parameters)."""

    def render(self, _dialect: str) -> list[str]:
        where = f" WHERE {self.where}" if self.where else ""
        return [f"CREATE INDEX {self.name} ON {self.table} ({', '.join(self.columns)}){where}"]


@attrs.frozen
class DropIndex:
    name: str

    def render(self, _dialect: str) -> list[str]:
        return [f"DROP INDEX {self.name}"]


@attrs.frozen
class AddColumn:
    table: str
    column: Column

    def render(self, dialect: str) -> list[str]:
        return [f"ALTER TABLE {self.table} ADD COLUMN {self.column.render(dialect)}"]


@attrs.frozen
class PerDialect:
    """A statement the dialects write differently."""

    sqlite: str
    postgresql: str

    def render(self, dialect: str) -> list[str]:
        return [self.sqlite if dialect == SQLITE else self.postgresql]


@attrs.frozen
class RebuildWithoutRowid:
    """SQLite: copy ``table`` into a ``WITHOUT ROWID`` table of the same columns, every row in
    its ``seq`` order, and make its ``indexes`` again (dropping a table drops its indexes).
    PostgreSQL has no rowid: nothing to do."""

    table: Table
    indexes: tuple[Index, ...]

    def render(self, dialect: str) -> list[str]:
        if dialect != SQLITE:
            return []
        name = self.table.name
        new = attrs.evolve(self.table, name=f"{name}_rebuilt", without_rowid=True)
        columns = ", ".join(c.name for c in self.table.columns)
        return [*new.render(dialect),
                f"INSERT INTO {new.name} ({columns}) SELECT {columns} FROM {name} ORDER BY seq",
                f"DROP TABLE {name}",
                f"ALTER TABLE {new.name} RENAME TO {name}",
                *(sql for index in self.indexes for sql in index.render(dialect))]


Step = Table | Index | DropIndex | AddColumn | PerDialect | RebuildWithoutRowid


@attrs.frozen
class Migration:
    version: int
    why: str
    steps: tuple[Step, ...]

    def statements(self, dialect: str) -> list[str]:
        return [sql for step in self.steps for sql in step.render(dialect)]


_c = Column

_ORDER_COLUMNS = (
    _c("order_id", "text", primary_key=True), _c("pair", "text"), _c("side", "text"),
    _c("order_type", "text"), _c("reason", "text"), _c("amount", "real"),
    _c("status", "text"), _c("created_ms", "int"), _c("updated_ms", "int"),
    _c("limit_price", "real", not_null=False), _c("filled", "real"),
    _c("average_price", "real"), _c("fee", "real"), _c("reject_reason", "text"))
_FILL_COLUMNS = (
    _c("fill_id", "text", primary_key=True), _c("order_id", "text"), _c("pair", "text"),
    _c("side", "text"), _c("amount", "real"), _c("price", "real"), _c("fee", "real"),
    _c("ts_ms", "int"), _c("maker", "int"))
_SEQ = _c("seq", "int", default="0")

TERMINAL_STATUSES = ("filled", "canceled", "rejected")
"""The values of the terminal ``OrderStatus`` members (a test holds them equal)."""


def unfinished(column: str = "status") -> str:
    """SQL that holds for an order not finished. Written as ``<>`` comparisons: SQLite
    evaluates a literal ``NOT IN`` list through a temporary index each time, which made a
    partial index on it cost 27,000 instructions per row written, not save 4,500."""
    return " AND ".join(f"{column} <> '{status}'" for status in TERMINAL_STATUSES)


UNFINISHED = unfinished()
"""The orders not finished, as the partial index ``orders_by_status`` has it (the store's
queries for open orders say it in these very words, so that both databases use the index)."""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the SQLite layout of the first releases", (
        Table("schema_version", (_c("version", "int"),)),
        Table("meta", (_c("key", "text", primary_key=True), _c("value", "any", not_null=False))),
        Table("balances", (_c("asset", "text", primary_key=True), _c("amount", "real"))),
        Table("positions", (
            _c("pair", "text", primary_key=True), _c("amount", "real"), _c("entry_price", "real"),
            _c("cost", "real"), _c("opened_ms", "int"), _c("peak_price", "real"),
            _c("trip_pnl", "real", default="0"))),
        Table("orders", _ORDER_COLUMNS),
        Index("orders_by_status", "orders", ("status", "updated_ms")),
        Table("fills", _FILL_COLUMNS),
        Table("pnl", (
            _c("pair", "text", primary_key=True), _c("realized", "real"), _c("trades", "int"))),
        Table("strategies", (
            _c("pair", "text", primary_key=True), _c("spec", "text"), _c("generation", "int"))),
        Table("equity", (_c("ts_ms", "int", primary_key=True), _c("equity", "real"))),
    )),
    Migration(2, "an explicit insertion order for fills and orders (SQLite's rowid, which "
                 "PostgreSQL lacks), numbered by the writer; existing rows keep their order", (
        AddColumn("fills", _SEQ),
        AddColumn("orders", _SEQ),
        PerDialect(
            sqlite="UPDATE fills SET seq = rowid",
            postgresql="UPDATE fills SET seq = n.seq FROM (SELECT fill_id, row_number() OVER"
                       " (ORDER BY ts_ms, fill_id) AS seq FROM fills) AS n"
                       " WHERE fills.fill_id = n.fill_id"),
        PerDialect(
            sqlite="UPDATE orders SET seq = rowid",
            postgresql="UPDATE orders SET seq = n.seq FROM (SELECT order_id, row_number() OVER"
                       " (ORDER BY created_ms, order_id) AS seq FROM orders) AS n"
                       " WHERE orders.order_id = n.order_id"),
        Index("fills_by_seq", "fills", ("seq",)),
    )),
    Migration(3, "closed round trips and the audit of steering by hand (the control API), "
                 "with the time indexes that let a page of history be read without sorting a "
                 "whole table on the state actor's thread", (
        Table("trades", (
            _c("pair", "text"), _c("opened_ms", "int"), _c("closed_ms", "int"),
            _c("amount", "real"), _c("entry_price", "real"), _c("exit_price", "real"),
            _c("pnl", "real"), _c("reason", "text"), _c("seq", "int"))),
        Index("trades_by_time", "trades", ("closed_ms",)),
        Table("audit", (
            _c("ts_ms", "int"), _c("actor", "text"), _c("action", "text"), _c("target", "text"),
            _c("detail", "text"), _c("outcome", "text"), _c("seq", "int"))),
        Index("audit_by_time", "audit", ("ts_ms",)),
        Index("fills_by_time", "fills", ("ts_ms",)),
        Index("orders_by_time", "orders", ("created_ms",)),
    )),
    Migration(4, "cheaper rows: orders_by_status holds only the unfinished orders (the only "
                 "ones ever looked up by it, and most orders are written finished); on SQLite "
                 "fills and orders become WITHOUT ROWID tables (one B-tree for key and row, "
                 "not two), rebuilt with every row in its seq order", (
        DropIndex("orders_by_status"),
        RebuildWithoutRowid(Table("fills", (*_FILL_COLUMNS, _SEQ)), (
            Index("fills_by_seq", "fills", ("seq",)),
            Index("fills_by_time", "fills", ("ts_ms",)))),
        RebuildWithoutRowid(Table("orders", (*_ORDER_COLUMNS, _SEQ)), (
            Index("orders_by_time", "orders", ("created_ms",)),)),
        Index("orders_by_status", "orders", ("status", "updated_ms"), where=UNFINISHED),
    )),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
TABLES = ("meta", "balances", "positions", "orders", "fills", "pnl", "strategies", "equity",
          "trades", "audit")
"""The tables that hold state (``schema_version`` aside), as ``docs/state-database.md`` has them."""


def migrate(current: int, dialect: str, run: Callable[[Sequence[str], int], None],
            *, target: int = SCHEMA_VERSION) -> list[int]:
    """Bring a database at version ``current`` (0: empty) to ``target``.

    Args:
        run: executes one migration's statements and records its version, in one transaction.

    Returns:
        The versions applied, in order.
    """
    applied = []
    for migration in MIGRATIONS:
        if current < migration.version <= target:
            run(migration.statements(dialect), migration.version)
            applied.append(migration.version)
    return applied
