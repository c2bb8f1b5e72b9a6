"""The burst benchmark's recovery: from which window after the burst on the p99 of every tick
is under target (``bench.fleet.recovery``)."""

from __future__ import annotations

import math

import pytest

from bench.fleet import recovery

END_NS = 10**12
MS = 1_000_000


def _samples(latency_ms_at: list[float], pairs: int = 5) -> dict[str, list[tuple[int, int]]]:
    """Each pair enters one tick a millisecond after the burst's end; the k-th millisecond's
    ticks take ``latency_ms_at[k]``. Samples are (processed ns, latency ns)."""
    out: dict[str, list[tuple[int, int]]] = {}
    for p in range(pairs):
        out[f"P{p}"] = [(END_NS + k * MS + p + int(lat * MS), int(lat * MS))
                        for k, lat in enumerate(latency_ms_at)]
    return out


def test_recovery_is_the_first_window_from_which_on_the_p99_is_under_target():
    back, windows = recovery(_samples([5.0] * 1000 + [0.5] * 2000), END_NS)
    assert back == pytest.approx(1.0)
    assert windows == pytest.approx([5.0] * 5 + [0.5] * 10)


def test_a_few_slow_ticks_in_a_late_window_do_not_undo_a_recovery():
    """3 % of the last window's ticks at 3 ms: that window's own p99 is over target, the
    p99 from the burst's end on is not."""
    late = [0.5] * 3000
    for k in range(2800, 3000, 33):
        late[k] = 3.0
    back, windows = recovery(_samples(late), END_NS)
    assert windows[-1] > 2.0
    assert back == 0.0


def test_a_system_that_stays_slow_never_recovers():
    back, _ = recovery(_samples([2.5] * 3000), END_NS)
    assert math.isnan(back)
