"""WAL checkpoints off the state actor's thread.

SQLite copies its write-ahead log back into the database file every 1,000 pages by default,
inside whichever COMMIT crosses that size, and in WAL mode with ``synchronous=NORMAL`` that copy
is where the fsync happens. On the state actor's thread that is an order's answer waiting: in a
replay of 100,000 ticks through the actors, 45 of 4,780 commits took over 5 ms, up to 28 ms.
Here a thread with its own connection checkpoints every ``interval_s`` in PASSIVE mode (it
copies what it can and never waits for, nor blocks, the writer), and the state's own connection
does no checkpoints (``StateStore.hand_off_checkpoints``).

PASSIVE alone never lets the log start over: SQLite restarts the WAL only when a writer
begins once every frame has been copied back, and a writer that commits every few
milliseconds always has new frames by then. The WAL grew without end, about 55 MB per
100,000 ticks at 20 pairs (440 MB beside a 10 MB database after 800,000 ticks): a live
system would fill its disk. So once the log holds ``truncate_pages`` pages, the round says
so (``log_full``), and the writer itself empties the log after its next commit
(``StateStore.truncate_wal``): between its own transactions nobody competes for the lock, and
the PASSIVE round has just copied all but the last few milliseconds of frames. A TRUNCATE
from this thread instead lost the race for the lock to a writer that commits back to back.
"""

from __future__ import annotations

import sqlite3
import threading

from loguru import logger

CHECKPOINT_INTERVAL_S = 1.0
TRUNCATE_PAGES = 16_384
"""Log size (64 MB at 4 KB pages) from which the writer is asked to empty the log."""


class WalCheckpointer:
    """Checkpoints the WAL of the database at ``path`` from a daemon thread of its own."""

    def __init__(self, path: str, interval_s: float = CHECKPOINT_INTERVAL_S,
                 truncate_pages: int = TRUNCATE_PAGES) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        if truncate_pages <= 0:
            raise ValueError(f"truncate_pages must be > 0, got {truncate_pages!r}")
        self.path = path
        self.interval_s = interval_s
        self.truncate_pages = truncate_pages
        self.checkpoints = 0
        self.log_full = False
        """The last round found ``truncate_pages`` or more in the log (the writer clears it)."""
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wal-checkpoint",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread after a last checkpoint (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        """Asked to stop, and its thread (if it ever ran) has ended."""
        return self._stop.is_set() and (self._thread is None or not self._thread.is_alive())

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            logger.error("WAL checkpoints of {!r} cannot start: {}", self.path, exc)
            return
        try:
            while not self._stop.wait(self.interval_s):
                self.checkpoint(conn)
            self.checkpoint(conn)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            _, log_pages, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.checkpoints += 1
            if log_pages >= self.truncate_pages:
                self.log_full = True
        except sqlite3.Error as exc:  # e.g. busy: the next round tries again
            self.failures += 1
            logger.warning("WAL checkpoint of {!r} failed: {}", self.path, exc)
