"""Wall-clock pacing of a timestamped feed: replay recorded or simulated ticks at a chosen speed.

``Pacer`` only computes how long to wait; the caller (the market data actor) does the waiting,
so the pacer is plain code with an injectable clock and tests need no sleeps. Pace is anchored
on a (market time, wall time) pair rather than on the previous tick, so rounding and a slow
consumer do not accumulate drift. Two things re-anchor it:

- a gap in the data longer than ``max_gap_s`` of wall time (after speed scaling), such as an
  exchange maintenance window, is shortened to ``max_gap_s`` instead of being waited out;
- a consumer more than ``max_gap_s`` behind (a stalled process, a suspended laptop) resumes
  from where it is instead of bursting through the backlog.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class Pacer:
    """How long to wait before delivering each tick so the feed runs at ``speed``.

    Args:
        speed: 1.0 = the recorded pace, 10.0 = ten times faster, ``math.inf`` = no waiting.
        clock: monotonic seconds; injectable for tests.
        max_gap_s: longest wait for one gap in the data, in wall seconds after scaling.
    """

    def __init__(
        self,
        speed: float,
        clock: Callable[[], float] = time.monotonic,
        max_gap_s: float = 5.0,
    ) -> None:
        if math.isnan(speed) or speed <= 0:
            raise ValueError(f"speed must be > 0 (math.inf for no pacing), got {speed!r}")
        if not (math.isfinite(max_gap_s) and max_gap_s > 0):
            raise ValueError(f"max_gap_s must be a positive number of seconds, got {max_gap_s!r}")
        self.speed = speed
        self.max_gap_s = max_gap_s
        self._clock = clock
        self._anchor_ts: int | None = None
        self._anchor_wall = 0.0
        self._last_ts = 0
        self.compressed_gaps = 0
        """How many data gaps were shortened (for status and tests)."""

    def reset(self) -> None:
        """Forget the anchor: the next tick is delivered at once and paces those after it."""
        self._anchor_ts = None

    def delay_for(self, ts_ms: int) -> float:
        """Seconds to wait before delivering a tick stamped ``ts_ms``; never negative."""
        if self.speed == math.inf:
            return 0.0
        now = self._clock()
        anchor_ts = self._anchor_ts
        if anchor_ts is None:
            self._anchor(ts_ms, now)
            return 0.0
        scale = 1.0 / (1000.0 * self.speed)
        gap_s = (ts_ms - self._last_ts) * scale
        if gap_s > self.max_gap_s:
            # Due max_gap_s after the previous tick was due, wherever the clock is now.
            previous_due = self._anchor_wall + (self._last_ts - anchor_ts) * scale
            due = previous_due + self.max_gap_s
            self._anchor(ts_ms, due if now - due <= self.max_gap_s else now)
            self.compressed_gaps += 1
            return max(0.0, self._anchor_wall - now)
        self._last_ts = max(self._last_ts, ts_ms)
        delay = self._anchor_wall + (ts_ms - anchor_ts) * scale - now
        if delay < -self.max_gap_s:
            self._anchor(ts_ms, now)
            return 0.0
        return max(0.0, delay)

    def _anchor(self, ts_ms: int, wall: float) -> None:
        self._anchor_ts = ts_ms
        self._anchor_wall = wall
        self._last_ts = ts_ms
