"""History from an exchange into the data folder: candles (``fetch_ohlcv``) and trades.

``Downloader`` pages through a ccxt client's history, appends each page to the pair's CSV
file as soon as it arrives (so a killed run keeps every whole page), and resumes from the
file's last row: a second run asks only for what is missing. Between requests it waits the
client's ``rateLimit`` unless ccxt's own limiter does; rate-limit answers (429/418, which
ccxt raises as ``DDoSProtection``), ``RateLimitExceeded`` and network errors are retried with
a doubling backoff, and give up with a ``DownloadError`` after ``retries``. Gaps (candles
missing between two rows) are found as rows are written and reported, never filled in.

Runs on the caller's thread with a synchronous ccxt client. Only closed candles are written
(the current, still-forming candle would change). Trades are resumed at their last
millisecond: its rows are cut and fetched again, since CSV rows carry no trade id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import attrs

from supervision.research.datafiles import (
    Gap,
    data_path,
    drop_rows_from,
    first_ts,
    header_for,
    last_ts,
    repair_tail,
)
from supervision.research.timeframes import TRADES, timeframe_ms

PAGE_LIMIT = 1000
"""Rows asked for per request (Binance's most for klines and aggTrades)."""

EMPTY_WINDOW_MS = 3_600_000
"""How far a trades download moves on after an empty page (Binance answers a ``since`` with
the hour after it)."""


class DownloadError(RuntimeError):
    """The exchange refused or kept failing; the message says what and for which pair."""


@attrs.frozen(kw_only=True)
class DownloadResult:
    """What one pair's download did."""

    pair: str
    timeframe: str
    path: str
    added: int
    first_ms: int | None
    last_ms: int | None
    requests: int
    retries: int
    gaps: tuple[Gap, ...] = ()
    note: str = ""


class Downloader:
    """Pages a ccxt client's history into CSV files.

    Args:
        client: a synchronous ccxt exchange (``fetch_ohlcv``, ``fetch_trades``).
        sleep: how to wait (tests pass a recorder).
        now_ms: the current time (only closed candles, nothing from the future).
    """

    def __init__(self, client: Any, *, page_limit: int = PAGE_LIMIT, retries: int = 5,
                 backoff_s: float = 1.0, max_backoff_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.client = client
        self.page_limit = page_limit
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep
        self.now_ms = now_ms
        self.requests = 0
        self.retried = 0
        self._last_request = -float("inf")

    # -- candles -------------------------------------------------------------------------------

    def candles(self, data_dir: str | Path, pair: str, timeframe: str, since_ms: int,
                until_ms: int | None = None) -> DownloadResult:
        """Append ``pair``'s closed candles from ``since_ms`` (or the file's end) to
        ``until_ms`` (exclusive; default now) to its file."""
        step = timeframe_ms(timeframe)
        path = data_path(data_dir, pair, timeframe)
        start, note = self._resume(path, since_ms, step, timeframe)
        end = (min(until_ms, self.now_ms()) if until_ms is not None else self.now_ms())
        end = end // step * step  # the candle that opens at ``end`` is not closed yet
        requests, retries = self.requests, self.retried
        previous = last_ts(path)
        added, first, gaps = 0, None, []
        with path.open("a", encoding="utf-8", newline="") as out:
            while start < end:
                page = self._call("fetch_ohlcv", pair, timeframe, since=start,
                                  limit=self.page_limit)
                rows = [r for r in page if r and start <= int(r[0]) < end
                        and (previous is None or int(r[0]) > previous)]
                if not rows:
                    break
                lines = []
                for row in rows:
                    ts = int(row[0])
                    if previous is not None and ts - previous > step:
                        gaps.append(Gap(previous, ts, (ts - previous) // step - 1))
                    previous = ts
                    first = ts if first is None else first
                    lines.append(f"{ts},{_num(row[1])},{_num(row[2])},{_num(row[3])},"
                                 f"{_num(row[4])},{_num(row[5])}\n")
                added += _append(out, lines)
                start = previous + step if previous is not None else end
        return DownloadResult(pair=pair, timeframe=timeframe, path=str(path), added=added,
                              first_ms=first, last_ms=previous,
                              requests=self.requests - requests, retries=self.retried - retries,
                              gaps=tuple(gaps), note=note)

    # -- trades --------------------------------------------------------------------------------

    def trades(self, data_dir: str | Path, pair: str, since_ms: int,
               until_ms: int | None = None) -> DownloadResult:
        """Append ``pair``'s public trades from ``since_ms`` (or the file's last millisecond)
        to ``until_ms`` (exclusive; default now) to its trades file."""
        path = data_path(data_dir, pair, TRADES)
        start, note = self._resume(path, since_ms, 0, TRADES)
        end = until_ms if until_ms is not None else self.now_ms()
        requests, retries = self.requests, self.retried
        added, first, last = 0, None, None
        seen: set[str] = set()  # ids at ``start``'s millisecond, written this run
        with path.open("a", encoding="utf-8", newline="") as out:
            while start < end:
                page = self._call("fetch_trades", pair, since=start, limit=self.page_limit)
                rows = sorted((t for t in page if start <= int(t["timestamp"]) < end),
                              key=lambda t: int(t["timestamp"]))
                fresh = [t for t in rows if str(t.get("id")) not in seen]
                if not fresh:
                    # Nothing new from ``start``: a quiet hour, or only trades already kept.
                    start = (start + EMPTY_WINDOW_MS if not page or not rows
                             else int(rows[-1]["timestamp"]) + 1)
                    continue
                lines = []
                for trade in fresh:
                    ts = int(trade["timestamp"])
                    if ts != last:
                        seen.clear()
                    seen.add(str(trade.get("id")))
                    last = ts
                    first = ts if first is None else first
                    lines.append(f"{ts},{_num(trade['price'])},{_num(trade['amount'])},"
                                 f"{trade.get('side') or ''}\n")
                added += _append(out, lines)
                start = last if last is not None else end
        return DownloadResult(pair=pair, timeframe=TRADES, path=str(path), added=added,
                              first_ms=first, last_ms=last if last is not None else None,
                              requests=self.requests - requests, retries=self.retried - retries,
                              note=note)

    # -- internals -----------------------------------------------------------------------------

    def _resume(self, path: Path, since_ms: int, step: int, timeframe: str) -> tuple[int, str]:
        """Where this run starts, making the file (with its header) if it is new."""
        path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(path)
        last = last_ts(path)
        if last is None:
            if not path.is_file() or path.stat().st_size == 0:
                path.write_text(header_for(timeframe) + "\n", encoding="utf-8")
            return since_ms, ""
        first = first_ts(path)
        note = ""
        if first is not None and since_ms < first:
            note = (f"the file starts later than --since; only newer rows are added (move "
                    f"{path.name} away to download from --since)")
        if timeframe == TRADES:
            drop_rows_from(path, last)  # fetched again whole: rows carry no trade id
            return max(since_ms, last), note
        return max(since_ms, last + step), note

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        import ccxt

        retriable = (ccxt.RateLimitExceeded, ccxt.DDoSProtection, ccxt.NetworkError)
        delay = self.backoff_s
        attempt = 0
        while True:
            self._pace()
            self.requests += 1
            try:
                return getattr(self.client, method)(*args, **kwargs)
            except retriable as exc:
                attempt += 1
                if attempt > self.retries:
                    raise DownloadError(f"{method} {args[0]}: still failing after "
                                        f"{self.retries} retries: {type(exc).__name__}") from None
                self.retried += 1
                self.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
            except ccxt.BadSymbol:
                raise DownloadError(f"{args[0]} is not a market at "
                                    f"{getattr(self.client, 'id', 'the exchange')}") from None
            except ccxt.BaseError as exc:
                raise DownloadError(f"{method} {args[0]}: the exchange refused: "
                                    f"{type(exc).__name__}: {str(exc)[:200]}") from None

    def _pace(self) -> None:
        """ccxt throttles itself when ``enableRateLimit`` is on; otherwise wait its
        ``rateLimit`` (ms) between two requests here."""
        client = self.client
        if getattr(client, "enableRateLimit", False):
            return
        interval = float(getattr(client, "rateLimit", 0) or 0) / 1000
        wait = self._last_request + interval - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        self._last_request = time.monotonic()


def _append(out: TextIO, lines: list[str]) -> int:
    """Append one page's rows and flush them: a killed run keeps every whole page."""
    out.write("".join(lines))
    out.flush()
    return len(lines)


def _num(value: Any) -> str:
    """A price or size as the recorded files write it: no trailing zeros, no exponent."""
    if value is None:
        return ""
    text = f"{float(value):.8f}".rstrip("0").rstrip(".")
    return text or "0"
