"""Whether the state database can be written now: what ``/health`` and the status read.

``DatabaseAvailability`` is written by the state actor's thread (when a connection is lost,
at each failed reconnect, when it is back) and read by any thread (the health check, an
embedder), under a lock; it holds no secret (reasons come from the store, which cuts
passwords out). It never fails.
"""

from __future__ import annotations

import threading
import time

import attrs


@attrs.frozen(kw_only=True)
class AvailabilityView:
    """One consistent reading of ``DatabaseAvailability``."""

    available: bool
    reason: str
    """Why it is unavailable ("" while it is available)."""
    down_s: float
    """Seconds since it was lost (0 while it is available)."""
    waiting: int
    """Messages handled or received since the last commit, waiting to be written."""
    attempts: int
    """Reconnects tried during this outage."""
    outages: int
    """Outages since the system started."""

    def problem(self) -> str:
        """One line for ``/health`` ("" while available)."""
        if self.available:
            return ""
        return (f"state database unavailable for {self.down_s:.1f} s ({self.reason}): new "
                f"entries are refused, {self.waiting} message(s) wait to be written, "
                f"reconnecting (attempt {self.attempts})")


class DatabaseAvailability:
    """The state database's reachability, shared between the state actor and its readers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason = ""
        self._since = 0.0
        self._waiting = 0
        self._attempts = 0
        self._outages = 0

    def lost(self, reason: str, waiting: int) -> None:
        """The database cannot be written (again): ``reason``, ``waiting`` messages held."""
        with self._lock:
            if not self._reason:
                self._since = time.monotonic()
                self._outages += 1
                self._attempts = 0
            else:
                self._attempts += 1
            self._reason = reason or "unavailable"
            self._waiting = waiting

    def restored(self) -> None:
        with self._lock:
            self._reason = ""
            self._waiting = 0
            self._attempts = 0

    def view(self) -> AvailabilityView:
        with self._lock:
            down = bool(self._reason)
            return AvailabilityView(
                available=not down, reason=self._reason, waiting=self._waiting,
                down_s=time.monotonic() - self._since if down else 0.0,
                attempts=self._attempts, outages=self._outages)
