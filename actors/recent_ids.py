"""A bounded memory of recently seen ids, for exactly-once checks that must not grow.

Duplicates arrive soon after the original (a retried submit, a fill redelivered, a trade
resent after a reconnect), so remembering the last ``limit`` ids is enough, and memory stays
flat in long runs; whatever must hold beyond the window needs its own backstop (the ledger
has the fills table's key). Plain and single-threaded: its owner's thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class RecentIds(Generic[K]):
    """The last ``limit`` distinct ids added, oldest forgotten first.

    Args:
        limit: how many ids to remember (> 0).
        ids: ids to start with, oldest first.
    """

    __slots__ = ("_forgotten", "_ids", "_order", "limit")

    def __init__(self, limit: int, ids: Iterable[K] = ()) -> None:
        if limit <= 0:
            raise ValueError(f"limit = {limit!r} is invalid: expected > 0")
        self.limit = limit
        self._ids: set[K] = set()
        self._order: deque[K] = deque()
        self._forgotten = 0
        for key in ids:
            self.add(key)

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def ids(self) -> frozenset[K]:
        """The ids remembered now (a copy)."""
        return frozenset(self._ids)

    def add(self, key: K) -> None:
        """Remember ``key`` (once: adding a remembered id changes nothing)."""
        if key in self._ids:
            return
        self._ids.add(key)
        self._order.append(key)
        if len(self._order) > self.limit:
            self._ids.discard(self._order.popleft())
            self._forgotten += 1
            if self._forgotten * 2 >= self.limit:
                # A set that keeps forgetting fills its table with deleted-entry markers and
                # resizes to twice its size now and then (512 KB -> 1 MB at 10,000 ids: the
                # soak's top growing line). Rebuilt before that, it keeps its size.
                self._ids = set(self._order)
                self._forgotten = 0
