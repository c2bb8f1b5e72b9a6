"""Pair symbols: the one place that knows what ``BASE/QUOTE`` may look like."""

from __future__ import annotations

import functools
import re

_ASSET = re.compile(r"^[A-Z0-9]{2,12}$")


class PairError(ValueError):
    """A pair symbol that is not ``BASE/QUOTE`` with two different upper-case assets."""


@functools.lru_cache(maxsize=4096)
def split_pair(pair: str) -> tuple[str, str]:
    """Return ``(base, quote)`` of a valid symbol such as ``BTC/USDT``.

    Memoized (bounded; a refused symbol is not remembered): the ledger, the balances and
    the paper exchange split a pair on every fill, and a regex each time showed in profiles.

    Raises:
        PairError: naming the symbol and the expected form.
    """
    parts = pair.split("/")
    if len(parts) != 2 or not all(_ASSET.fullmatch(p) for p in parts) or parts[0] == parts[1]:
        raise PairError(
            f"invalid pair {pair!r}: expected BASE/QUOTE with 2-12 upper-case letters or digits "
            "on each side, e.g. BTC/USDT"
        )
    return parts[0], parts[1]


def parse_pair_list(text: str) -> tuple[str, ...]:
    """Parse ``"BTC/USDT,ETH/USDT"``; rejects an empty list and duplicates."""
    items = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in items):
        raise PairError(f"invalid pair list {text!r}: expected e.g. BTC/USDT,ETH/USDT")
    for p in items:
        split_pair(p)
    if len(set(items)) != len(items):
        raise PairError(f"pair list {text!r} names a pair twice")
    return tuple(items)
