"""The values the control operations answer, and the rules they share (paging, redaction).

Plain functions and frozen values, used by ``TradingSystem`` on the caller's thread; the HTTP
routes only turn them into JSON. A bad page raises ``ConfigError`` naming the bad value and
the valid range (the API answers it with 422).
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import attrs

from actors.messages import RiskStatus, StrategySpec
from actors.risk import RiskConfig
from supervision.config import ConfigError

MAX_PAGE = 1000
"""Most rows one history query returns: a page is read on the state actor's thread."""
REDACTED = "<redacted>"
_SECRET_WORDS = ("token", "secret", "password", "apikey", "api_key", "privatekey", "webhook")


@attrs.frozen(kw_only=True)
class EquityPoint:
    ts_ms: int
    equity: float
    drawdown: float
    """Fraction below the highest equity before it in the same window."""


@attrs.frozen(kw_only=True)
class RiskReport:
    status: RiskStatus
    limits: RiskConfig


def check_page(limit: int, offset: int, since_ms: int | None, until_ms: int | None) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ConfigError(f"limit: {limit!r} is not a whole number from 1 to {MAX_PAGE}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ConfigError(f"offset: {offset!r} is not a whole number >= 0")
    if since_ms is not None and until_ms is not None and since_ms > until_ms:
        raise ConfigError(f"since_ms: {since_ms} is after until_ms ({until_ms})")


def equity_points(points: Iterable[tuple[int, float]]) -> tuple[EquityPoint, ...]:
    """``(ts_ms, equity)`` oldest first -> points with their drawdown."""
    peak = -math.inf
    out = []
    for ts_ms, equity in points:
        peak = max(peak, equity)
        out.append(EquityPoint(ts_ms=ts_ms, equity=equity,
                               drawdown=(peak - equity) / peak if peak > 0 else 0.0))
    return tuple(out)


def redacted(config: Any) -> dict[str, Any]:
    """``config`` (a ``SystemConfig``) as JSON values, with every value whose key names a
    secret replaced, and webhook addresses cut to their host (their path is the secret)."""
    cleaned: dict[str, Any] = _clean(jsonable(config), "")
    return cleaned


_SCALARS = frozenset((str, int, bool, type(None)))


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in attrs.fields(cls))


def jsonable(value: Any) -> Any:
    """attrs values, enums, specs and tuples as plain JSON values (non-finite floats: None).
    Scalars are settled first and attrs fields looked up once per class: the status of 50
    pairs is about a thousand values, built several times a second while clients watch."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, StrategySpec):
        out: dict[str, Any] = {"name": value.path, "params": {k: jsonable(v)
                                                               for k, v in value.params}}
        if value.members:
            out["members"] = [{**jsonable(m), "weight": w} for m, w in value.members]
        return out
    if attrs.has(kind):
        return {name: jsonable(getattr(value, name)) for name in _field_names(kind)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean(value: Any, key: str) -> Any:
    lowered = key.lower().replace("-", "_")
    if any(word in lowered for word in _SECRET_WORDS) and not lowered.endswith("_file"):
        return REDACTED if value else value
    if isinstance(value, dict):
        out = {k: _clean(v, k) for k, v in value.items()}
        if out.get("kind") in ("webhook", "discord") and out.get("url"):
            parts = urlsplit(out["url"])
            out["url"] = f"{parts.scheme}://{parts.netloc}/{REDACTED}"
        return out
    if isinstance(value, list):
        return [_clean(v, key) for v in value]
    return value
