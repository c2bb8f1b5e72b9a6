"""The data folder: one CSV file per pair and timeframe, and what can be read off its ends.

Layout: ``<data_dir>/<BASE>_<QUOTE>-<timeframe>.csv`` for candles
(``timestamp_ms,open,high,low,close,volume``) and ``<BASE>_<QUOTE>-trades.csv`` for trades
(``timestamp_ms,price,amount,side``): the schemas ``--replay`` reads, so a downloaded file
can be replayed through the actors as it is. Rows are in ascending time.

Plain functions on the caller's thread. The ends of a file are read by seeking, so a year of
1-minute candles is resumed or measured without reading it whole; ``scan_gaps`` streams it.
A missing file is ``None`` (nothing yet), never an error here; a file whose last line is not a
row (a run killed mid-write) is cut back to its last whole row by ``repair_tail``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import attrs

from actors.market import CANDLES_HEADER, TRADES_HEADER
from actors.pairs import split_pair
from supervision.research.timeframes import TRADES

_TAIL_BYTES = 8192


def data_path(data_dir: str | Path, pair: str, timeframe: str) -> Path:
    """Where the data of ``pair`` at ``timeframe`` (or ``trades``) lives."""
    base, quote = split_pair(pair)
    return Path(data_dir) / f"{base}_{quote}-{timeframe}.csv"


def header_for(timeframe: str) -> str:
    return ",".join(TRADES_HEADER if timeframe == TRADES else CANDLES_HEADER)


@attrs.frozen
class Gap:
    """Missing candles between two rows: ``after_ms`` is the last row before the gap,
    ``before_ms`` the first after it."""

    after_ms: int
    before_ms: int
    missing: int


def _row_ts(line: bytes) -> int | None:
    head = line.split(b",", 1)[0].strip()
    return int(head) if head.isdigit() else None


def _tail_lines(path: Path) -> list[bytes]:
    """The whole lines at the end of the file (at least one, if the file has any)."""
    size = path.stat().st_size
    block = _TAIL_BYTES
    with path.open("rb") as f:
        while True:
            start = max(0, size - block)
            f.seek(start)
            data = f.read()
            lines = data.split(b"\n")
            if start > 0:
                lines = lines[1:]  # the first piece may be part of a line
            whole = [ln for ln in lines if ln.strip()]
            if whole or start == 0:
                return whole
            block *= 4


def last_ts(path: str | Path) -> int | None:
    """Timestamp of the last row, or None for a missing file or one with no rows."""
    p = Path(path)
    if not p.is_file():
        return None
    for line in reversed(_tail_lines(p)):
        ts = _row_ts(line)
        if ts is not None:
            return ts
    return None


def first_ts(path: str | Path) -> int | None:
    """Timestamp of the first row, or None for a missing file or one with no rows."""
    p = Path(path)
    if not p.is_file():
        return None
    with p.open("rb") as f:
        next(f, None)
        for line in f:
            ts = _row_ts(line)
            if ts is not None:
                return ts
    return None


def repair_tail(path: str | Path) -> None:
    """Cut a last line that is not a complete row (no newline at its end), so an append
    after a killed run starts on a line of its own."""
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return
    with p.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - _TAIL_BYTES)
        f.seek(start)
        data = f.read()
        cut = data.rfind(b"\n")
        f.truncate(start + cut + 1 if cut >= 0 else 0)


def drop_rows_from(path: str | Path, ts_ms: int) -> int:
    """Remove the trailing rows stamped ``ts_ms`` or later; returns how many. A resumed trade
    download fetches that millisecond again whole, since rows carry no trade id."""
    p = Path(path)
    if not p.is_file():
        return 0
    with p.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        block = _TAIL_BYTES
        while True:
            start = max(0, size - block)
            f.seek(start)
            entries: list[tuple[int, bytes]] = []
            position = start
            for piece in f.read().split(b"\n"):
                entries.append((position, piece))
                position += len(piece) + 1
            if start > 0:
                entries = entries[1:]  # the first piece may be part of a line
            cut, removed, done = size, 0, False
            for line_start, piece in reversed(entries):
                if piece.strip():
                    ts = _row_ts(piece)
                    if ts is None or ts < ts_ms:
                        done = True
                        break
                    removed += 1
                cut = line_start
            if done or start == 0:
                f.truncate(min(cut, size))
                return removed
            block *= 4


def iter_timestamps(path: str | Path) -> Iterator[int]:
    """Every row's timestamp, streamed (unreadable rows are skipped)."""
    with Path(path).open("rb") as f:
        next(f, None)
        for line in f:
            ts = _row_ts(line)
            if ts is not None:
                yield ts


def scan_gaps(path: str | Path, step_ms: int) -> list[Gap]:
    """Every place where candles ``step_ms`` apart are missing, in file order."""
    gaps: list[Gap] = []
    previous: int | None = None
    for ts in iter_timestamps(path):
        if previous is not None and ts - previous > step_ms:
            gaps.append(Gap(previous, ts, (ts - previous) // step_ms - 1))
        previous = ts
    return gaps
