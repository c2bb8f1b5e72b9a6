"""Balance arithmetic for a spot fill, shared by the paper exchange's account and the ledger."""

from __future__ import annotations

from actors.messages import Fill, Side
from actors.pairs import split_pair

_ASSETS: dict[str, tuple[str, str]] = {}
"""``split_pair`` results (a regex per fill otherwise); as many entries as pairs traded."""


def apply_fill(balances: dict[str, float], fill: Fill,
               assets: tuple[str, str] | None = None) -> None:
    """Move base and quote for ``fill`` in place; fees are paid in the quote asset.

    ``assets``: the pair's ``(base, quote)`` where the caller has them already.

    Raises:
        PairError: ``fill.pair`` is not a valid symbol.
    """
    if assets is None:
        assets = _ASSETS.get(fill.pair)
        if assets is None:
            assets = _ASSETS[fill.pair] = split_pair(fill.pair)
    base, quote = assets
    notional = fill.amount * fill.price
    if fill.side is Side.BUY:
        balances[quote] = balances.get(quote, 0.0) - notional - fill.fee
        balances[base] = balances.get(base, 0.0) + fill.amount
    else:
        balances[quote] = balances.get(quote, 0.0) + notional - fill.fee
        balances[base] = balances.get(base, 0.0) - fill.amount
