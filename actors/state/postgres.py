"""The state database on a PostgreSQL server: ``PostgresStore``, through psycopg 3.

One connection, in autocommit mode with explicit ``BEGIN``/``COMMIT`` (the store opens and
commits its batches itself); psycopg prepares the statements the store repeats, and a group
commit sends its row writes in one pipeline and its batch number with the COMMIT in another:
two round trips, however many rows. A commit returns once the server has its WAL record on
disk, except where the state actor answers first (paper trading): there it does not wait for
the flush (``wait_for_flush``), as SQLite's ``synchronous=NORMAL`` does not, so a crash of the
server may lose the last commits of a paper run but never half of one. Other processes may
read the tables while the system writes them (``docs/state-database.md``). Runs on the thread
that owns the store.

Failure: the login is checked at open, so a wrong password, a missing database or an unknown
user is one ``StateStoreError`` that says which and how to fix it. A server that cannot be
reached, or a connection that breaks later (the server restarted, the network went), is a
``StateUnavailableError``: the open transaction is gone on the server too, and the state
actor reconnects and replays its batch (``actors.state.actor``). The password is given to
libpq apart from the URL and is cut out of every message.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager
from typing import Any

from actors.state.location import StateLocation
from actors.state.schema import POSTGRESQL
from actors.state.store import StateStore, StateStoreError, StateUnavailableError

CONNECT_TIMEOUT_S = 5
"""How long a connection attempt may take (libpq waits forever by default)."""

_LOST_STATES = ("08", "57P01", "57P02", "57P03")
"""SQLSTATEs of a lost connection: class 08, and the server shutting down or starting up."""


@functools.lru_cache(maxsize=256)
def _placeholders(sql: str) -> str:
    """The store's ``?`` placeholders as psycopg's ``%s`` (no statement holds a literal ?)."""
    return sql.replace("?", "%s")


class _Connection:
    """A psycopg connection behind the calls the store makes of sqlite3's."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Any = None) -> Any:
        return self.raw.execute(_placeholders(sql), params or None)

    def executemany(self, sql: str, rows: Any) -> Any:
        cursor = self.raw.cursor()
        cursor.executemany(_placeholders(sql), rows)
        return cursor

    def close(self) -> None:
        self.raw.close()


class PostgresStore(StateStore):
    """The state database ``location.dbname`` on the server at ``location.host``.

    Args:
        password: the login's password (None: libpq's ``~/.pgpass``, or none).

    Raises:
        StateStoreError: psycopg is not installed, the login or database is wrong, or the
            database is not a state database; ``StateUnavailableError`` when the server
            cannot be reached.
    """

    dialect = POSTGRESQL
    on_server = True

    def __init__(self, location: StateLocation, password: str | None = None) -> None:
        try:
            import psycopg
        except ImportError:
            raise StateStoreError(
                f"state database {location.display!r} is on PostgreSQL, which needs psycopg: "
                "pip install 'trade-conductor[postgresql]' (or psycopg[binary])") from None
        self._psycopg = psycopg
        self.errors = (psycopg.Error,)
        self._password = password or None
        super().__init__(location)

    def _connect(self) -> Any:
        where = self.location
        params: dict[str, Any] = dict(where.params)
        params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
        params.setdefault("application_name", "trade-conductor")
        try:
            raw = self._psycopg.connect(
                host=where.host, port=where.port, dbname=where.dbname,
                user=where.user or None, password=self._password, autocommit=True, **params)
        except self._psycopg.Error as exc:
            raise self._login_error(exc) from None
        return _Connection(raw)

    def _login_error(self, exc: BaseException) -> StateStoreError:
        """Why a connection could not be made, in a sentence that says what to do."""
        where = self.location
        server = f"PostgreSQL at {where.host}:{where.port}"
        user = where.user or "the default user"
        reason = self._clean(exc)
        if "password authentication failed" in reason or "no password supplied" in reason:
            return StateStoreError(
                f"{server} refused the login of {user} ({reason}): check the password in "
                "CONDUCTOR_DB_PASSWORD or [state] secrets_file")
        if f'database "{where.dbname}" does not exist' in reason:
            return StateStoreError(
                f"{server} has no database {where.dbname!r}: create it (createdb -h "
                f"{where.host} -p {where.port} {where.dbname}) or fix the URL")
        if "role" in reason and "does not exist" in reason:
            return StateStoreError(f"{server} has no user {user!r} ({reason}); fix the URL")
        if "FATAL" in reason and "starting up" not in reason and "shutting down" not in reason:
            return StateStoreError(f"{server} refused the connection: {reason}")
        return StateUnavailableError(f"cannot reach {server}: {reason}")

    def _clean(self, exc: BaseException) -> str:
        """The driver's message on one line, without the libpq hint lines or a password."""
        text = str(exc).removeprefix("connection failed: ").strip()
        text = " ".join(line.strip() for line in text.splitlines()[:1]) or type(exc).__name__
        text = text.replace("FATAL:  ", "FATAL: ")
        if self._password:
            text = text.replace(self._password, "***")
        return text

    def _error(self, context: str, exc: BaseException) -> StateStoreError:
        message = f"{context}: {self._clean(exc)}"
        state = getattr(exc, "sqlstate", None) or ""
        raw = self._conn.raw if isinstance(getattr(self, "_conn", None), _Connection) else None
        if (raw is not None and raw.broken) or state.startswith(_LOST_STATES):
            return StateUnavailableError(message)
        return StateStoreError(message)

    def wait_for_flush(self, wait: bool) -> None:
        try:
            self._conn.execute(f"SET synchronous_commit = {'on' if wait else 'off'}")
        except self._psycopg.Error as exc:
            raise self._error(f"cannot configure {self.path!r}", exc) from exc

    def _pipeline(self) -> AbstractContextManager[Any]:
        return self._conn.raw.pipeline()  # type: ignore[no-any-return]

    def _table_names(self) -> set[str]:
        return {row[0] for row in self._conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema()")}
