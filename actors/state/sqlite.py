"""The state database in an SQLite file (the default) or in memory: ``SqliteStore``.

WAL journal with ``synchronous=NORMAL``: a commit survives a crash of the process; a power
loss may lose the last commits but never leaves a half-written change. Another process may
read the file while the system writes it (WAL readers never block the writer). Runs on the
thread that owns the store (see ``actors.state.store``).

Failure: a path in a missing folder, a file that is not SQLite, or another program's database
raise ``StateStoreError``; SQLite has no connection to lose, so never
``StateUnavailableError``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from actors.state.schema import SQLITE
from actors.state.store import StateStore, StateStoreError


class SqliteStore(StateStore):
    """The state database in the file ``location.path`` (``:memory:``: a throwaway one)."""

    dialect = SQLITE
    errors = (sqlite3.Error,)
    begin_sql = "BEGIN IMMEDIATE"

    def _connect(self) -> Any:
        try:
            # Opened by the thread that starts the system (so a bad path fails there, with a
            # clear error) and then used only by the state actor's thread: one user at a time.
            return sqlite3.connect(self.location.path, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot open state database {self.path!r}: {exc}") from exc

    def _prepare(self) -> None:
        self.journal_mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # One cursor for the rows written per fill: ``Connection.execute`` makes a new one
        # per call (1,300 instructions each).
        self._write = self._conn.cursor().execute

    def _table_names(self) -> set[str]:
        return {row[0] for row in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}

    def hand_off_checkpoints(self) -> bool:
        if self.journal_mode != "wal":
            return False
        try:
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot configure {self.path!r}: {exc}") from exc
        return True

    def truncate_wal(self) -> bool:
        """Copy what is left of the WAL into the database file and empty the log; run by the
        writer between its transactions. False: a reader still needed the log."""
        try:
            busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            raise StateStoreError(f"cannot empty the WAL of {self.path!r}: {exc}") from exc
        return not busy
