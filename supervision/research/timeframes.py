"""Timeframes, dates and time ranges as a user writes them, checked once.

Plain functions on the caller's thread. Every bad value raises ``ConfigError`` naming the
flag, the value and the valid forms, which the CLI turns into one line and exit 2.
"""

from __future__ import annotations

import datetime as dt
import re

import attrs

from supervision.config import ConfigError

TIMEFRAMES: dict[str, int] = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000,
    "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000, "3d": 259_200_000,
    "1w": 604_800_000,
}
"""Candle timeframes (ccxt's names, which Binance and most exchanges share) in ms."""

TRADES = "trades"
"""The ``--timeframe`` of trade files: one tick per recorded trade."""

DAY_MS = 86_400_000
_COMPACT_RANGE = re.compile(r"(\d{8})?-(\d{8})?")


def timeframe_ms(name: str, *, allow_trades: bool = False) -> int:
    """Milliseconds of a candle timeframe (0 for ``trades`` where allowed)."""
    if allow_trades and name == TRADES:
        return 0
    try:
        return TIMEFRAMES[name]
    except KeyError:
        valid = ", ".join([*TIMEFRAMES, *([TRADES] if allow_trades else [])])
        raise ConfigError(f"timeframe: {name!r} is not one of {valid}") from None


def parse_date(text: str, flag: str) -> int:
    """``2021-05-19``, ``20210519``, ``2021-05-19T13:00`` or epoch ms -> UTC epoch ms."""
    value = text.strip()
    if value.isdigit() and len(value) > 8:
        return int(value)
    for form in ("%Y%m%d", "%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S",
                 "%Y-%m-%d %H:%M"):
        try:
            parsed = dt.datetime.strptime(value, form).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        return int(parsed.timestamp() * 1000)
    raise ConfigError(f"{flag}: {text!r} is not a date; use 2021-05-19, 20210519, "
                      "2021-05-19T13:00 (UTC) or epoch milliseconds")


@attrs.frozen
class TimeRange:
    """``[start_ms, end_ms)`` in UTC epoch ms; None is open on that side."""

    start_ms: int | None = None
    end_ms: int | None = None

    def contains(self, ts_ms: int) -> bool:
        return ((self.start_ms is None or ts_ms >= self.start_ms)
                and (self.end_ms is None or ts_ms < self.end_ms))

    def describe(self) -> str:
        start = show_ms(self.start_ms) if self.start_ms is not None else "..."
        end = show_ms(self.end_ms) if self.end_ms is not None else "..."
        return f"{start} to {end}"


def parse_timerange(text: str | None) -> TimeRange:
    """``START-END``, ``START-`` or ``-END`` with dates as ``parse_date`` reads them
    (``20210501-20210520``, ``2021-05-01..2021-05-20`` also works)."""
    if text is None or not text.strip():
        return TimeRange()
    value = text.strip()
    compact = _COMPACT_RANGE.fullmatch(value)
    if ".." in value:
        start_text, _, end_text = value.partition("..")
    elif compact is not None:
        start_text, end_text = compact.group(1) or "", compact.group(2) or ""
    else:
        raise ConfigError(f"timerange: {text!r} is not START-END; e.g. 20210501-20210520, "
                          "20210501- (from), -20210520 (until), or "
                          "2021-05-01..2021-05-20 (dates with dashes, times allowed)")
    start = parse_date(start_text, "timerange") if start_text.strip() else None
    end = parse_date(end_text, "timerange") if end_text.strip() else None
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"timerange: {text!r} ends before it starts")
    return TimeRange(start, end)


def show_ms(ts_ms: int) -> str:
    """UTC time of an epoch ms, to the minute (to the second where it has seconds)."""
    moment = dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC)
    form = "%Y-%m-%d %H:%M" if moment.second == 0 and moment.microsecond == 0 \
        else "%Y-%m-%d %H:%M:%S"
    return moment.strftime(form)


def parse_duration(text: str, flag: str) -> int:
    """``90d``, ``12h``, ``4w`` -> ms."""
    units = {"m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}
    value = text.strip().lower()
    number, unit = value[:-1], value[-1:]
    if unit in units and number.isdigit() and int(number) > 0:
        return int(number) * units[unit]
    raise ConfigError(f"{flag}: {text!r} is not a duration; e.g. 90d, 12h, 4w")
