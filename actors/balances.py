"""Balance arithmetic for a spot fill, shared by the paper exchange's account and the ledger."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from actors.messages import Fill, Side
from actors.pairs import split_pair

_BUY = Side.BUY  # read per fill, twice per order: a global, not the enum's lookup


def apply_fill(balances: dict[str, float], fill: Fill) -> None:
    """Move base and quote for ``fill`` in place; fees are paid in the quote asset.

    Raises:
        PairError: ``fill.pair`` is not a valid symbol.
    """
    base, quote = split_pair(fill.pair)
    amount = fill.amount
    notional = amount * fill.price
    get = balances.get
    if fill.side is _BUY:
        balances[quote] = get(quote, 0.0) - notional - fill.fee
        balances[base] = get(base, 0.0) + amount
    else:
        balances[quote] = get(quote, 0.0) + notional - fill.fee
        balances[base] = get(base, 0.0) - amount


def replace_fill(balances: dict[str, float], booked: Fill, fills: Iterable[Fill]) -> None:
    """Move balances as if ``fills`` had been booked instead of ``booked`` (an inferred fill
    giving way to the real trades)."""
    apply_fill(balances, attrs.evolve(booked, amount=-booked.amount, fee=-booked.fee))
    for fill in fills:
        apply_fill(balances, fill)
