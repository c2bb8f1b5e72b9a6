"""Seeded candle files for the research tests (a random walk, so strategies trade)."""

from __future__ import annotations

import random
from pathlib import Path

START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def candle_rows(count: int, *, seed: int = 7, start_ms: int = START_MS, bar_ms: int = 60_000,
                price: float = 100.0) -> list[list[float]]:
    """``[open_ms, open, high, low, close, volume]`` rows of a seeded random walk."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        open_ = price
        close = max(1.0, round(open_ * (1 + rng.gauss(0, 0.004)), 2))
        high = round(max(open_, close) * (1 + abs(rng.gauss(0, 0.001))), 2)
        low = round(min(open_, close) * (1 - abs(rng.gauss(0, 0.001))), 2)
        rows.append([start_ms + i * bar_ms, open_, high, low, close, round(rng.uniform(1, 9), 3)])
        price = close
    return rows


def write_candles(path: Path, count: int, **kwargs: object) -> Path:
    """A candle CSV (the ``--replay`` schema) of ``candle_rows``."""
    rows = candle_rows(count, **kwargs)  # type: ignore[arg-type]
    lines = ["timestamp_ms,open,high,low,close,volume"]
    lines += [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
