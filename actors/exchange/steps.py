"""Rounding to an exchange's steps: lot sizes for amounts, tick sizes for prices.

Shared by the paper exchange, the market rules of a live exchange and risk's sizing, so that
all three round a value the same way.
"""

from __future__ import annotations

import functools
import math

_STEP_EPS = 1e-9
"""How close (in steps) a value must be to a step boundary to count as on it.

``1.1 / 0.1`` is ``11.000000000000002``: without this tolerance rounding up would move a price
that already sits on the tick one tick further.
"""


@functools.lru_cache(maxsize=256)
def _decimals(step: float) -> int:
    text = f"{step:.12f}".rstrip("0")
    return len(text.split(".")[1])


def floor_to_step(value: float, step: float) -> float:
    """Round ``value`` down to a multiple of ``step`` (a lot or tick size)."""
    n = value / step
    k = round(n)
    if abs(n - k) > _STEP_EPS * max(1.0, abs(n)):
        k = math.floor(n)
    return round(k * step, _decimals(step))


def ceil_to_step(value: float, step: float) -> float:
    """Round ``value`` up to a multiple of ``step``."""
    n = value / step
    k = round(n)
    if abs(n - k) > _STEP_EPS * max(1.0, abs(n)):
        k = math.ceil(n)
    return round(k * step, _decimals(step))
