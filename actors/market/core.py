"""The market data actor's decisions: which ticks are fit to trade on, and what is remembered.

``MarketDataCore.accept`` is the single point where ticks are dropped, so every feed (the
simulator, recorded files, an exchange) is held to the same rules and every drop is counted,
per pair and per reason. Accepted ticks become the pair's latest tick and enter a bounded ring
of recent history that strategies warm up from (packed into bytes in a long-running system:
``actors.market.history``). It is plain, single-threaded state owned by
the market data actor; it runs on every tick of every pair, so ``accept`` does a dictionary
lookup, a few comparisons and a deque append, and nothing else.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Sequence

from actors.market.history import TickHistory
from actors.messages import MarketTick

UNKNOWN_PAIR = "unknown_pair"
BAD_PRICE = "bad_price"
TIME_BACKWARDS = "time_backwards"
DROP_REASONS = (UNKNOWN_PAIR, BAD_PRICE, TIME_BACKWARDS)


class _PairData:
    """Mutable per-pair state; private so that nobody outside the core can change it."""

    __slots__ = ("accepted", "dropped", "last_ts", "latest", "ring")

    def __init__(self, pair: str, history_size: int, packed: bool) -> None:
        self.ring: deque[MarketTick] | TickHistory = (
            TickHistory(pair, history_size) if packed else deque(maxlen=history_size))
        self.latest: MarketTick | None = None
        self.last_ts = 0
        self.accepted = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)


class MarketDataCore:
    """Validates, counts and remembers ticks for a set of pairs.

    Args:
        pairs: the pairs whose ticks are accepted; others are dropped as ``unknown_pair``.
        history_size: ticks kept per pair (oldest forgotten first).
        packed: keep them as bytes (``TickHistory``: a system that runs for long, with many
            pairs), not as the tick objects (a backtest: cheaper per tick).
    """

    def __init__(self, pairs: Sequence[str], history_size: int = 2000, *,
                 packed: bool = False) -> None:
        if history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size!r}")
        self.history_size = history_size
        self.packed = packed
        self._pairs: dict[str, _PairData] = {}
        self._unknown: dict[str, int] = {}
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self.last_drop_reason: str | None = None
        """Why the most recent rejected tick was dropped (for a ``TickDropped`` event)."""
        for pair in pairs:
            self.add_pair(pair)

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(self._pairs)

    def add_pair(self, pair: str) -> None:
        """Start accepting ``pair``; a pair already known keeps its history."""
        if pair not in self._pairs:
            self._pairs[pair] = _PairData(pair, self.history_size, self.packed)

    def remove_pair(self, pair: str) -> None:
        """Stop accepting ``pair`` and forget its ticks; its drop counts stay in ``dropped``."""
        self._pairs.pop(pair, None)

    def accept(self, tick: MarketTick) -> bool:
        """Record ``tick`` and return True, or count why it is dropped and return False.

        A tick is dropped when its pair is unknown, its prices are not sane (NaN, infinite,
        zero, negative, crossed book; see ``MarketTick.is_sane``) or it is older than the
        pair's last accepted tick. An equal timestamp is fine: trades share milliseconds.
        """
        data = self._pairs.get(tick.pair)
        if data is None:
            self._unknown[tick.pair] = self._unknown.get(tick.pair, 0) + 1
            return self._drop(UNKNOWN_PAIR, None)
        if not tick.is_sane():
            return self._drop(BAD_PRICE, data)
        if tick.ts_ms < data.last_ts:
            return self._drop(TIME_BACKWARDS, data)
        data.latest = tick
        data.last_ts = tick.ts_ms
        data.ring.append(tick)
        data.accepted += 1
        return True

    def _drop(self, reason: str, data: _PairData | None) -> bool:
        self._dropped[reason] += 1
        if data is not None:
            data.dropped[reason] += 1
        self.last_drop_reason = reason
        return False

    def seed_history(self, pair: str, ticks: Iterable[MarketTick]) -> int:
        """Preload warm-up ``ticks`` (oldest first) of ``pair``; returns how many were kept.

        Warm-up data is not live traffic: ticks that are not sane, belong to another pair or
        go back in time are skipped without being counted as drops, and ``accepted`` does not
        change. The last kept tick becomes the pair's latest.

        Raises:
            KeyError: ``pair`` is not one of the core's pairs.
        """
        data = self._data(pair)
        kept = 0
        for tick in ticks:
            if tick.pair != pair or not tick.is_sane() or tick.ts_ms < data.last_ts:
                continue
            data.ring.append(tick)
            data.latest = tick
            data.last_ts = tick.ts_ms
            kept += 1
        return kept

    def history(self, pair: str, limit: int | None = None) -> tuple[MarketTick, ...]:
        """The pair's last ``limit`` ticks (all kept ticks when None), oldest first (packed:
        ``recv_ns`` 0, see ``TickHistory``).

        Raises:
            KeyError: ``pair`` is not one of the core's pairs.
        """
        ring = self._data(pair).ring
        if isinstance(ring, TickHistory):
            return ring.ticks(limit)
        if limit is None or limit >= len(ring):
            return tuple(ring)
        if limit <= 0:
            return ()
        return tuple(itertools.islice(ring, len(ring) - limit, None))

    def latest(self, pair: str) -> MarketTick | None:
        """The pair's last accepted tick, or None before the first one."""
        data = self._pairs.get(pair)
        return data.latest if data is not None else None

    def accepted(self, pair: str) -> int:
        """How many live ticks of ``pair`` were accepted (seeded history not included)."""
        data = self._pairs.get(pair)
        return data.accepted if data is not None else 0

    def dropped(self, pair: str | None = None) -> dict[str, int]:
        """Drops by reason, of all pairs or of ``pair``; every reason is present, zero or not.

        Ticks of a pair the core does not track count as ``unknown_pair`` for that pair.
        """
        if pair is None:
            return dict(self._dropped)
        data = self._pairs.get(pair)
        counts = dict(data.dropped) if data is not None else dict.fromkeys(DROP_REASONS, 0)
        counts[UNKNOWN_PAIR] += self._unknown.get(pair, 0)
        return counts

    def dropped_for(self, pair: str) -> int:
        """How many ticks of ``pair`` were dropped, for any reason."""
        return sum(self.dropped(pair).values())

    def _data(self, pair: str) -> _PairData:
        data = self._pairs.get(pair)
        if data is None:
            raise KeyError(f"pair {pair!r} is not tracked; pairs are {list(self._pairs)!r}")
        return data
