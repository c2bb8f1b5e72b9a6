"""Builds ccxt clients from the ``[exchange]`` settings: the one place that knows ccxt's knobs.

The user's ``ccxt`` table is handed to the ccxt constructor as is, deep-merged over a few
defaults that keep a trading system safe and quiet: rate limiting on, a bounded timeout, and
for exchanges whose market loading wanders off into derivatives endpoints (Binance calls its
futures, margin and currency endpoints from ``load_markets`` unless told not to), spot only.
Keys are added last from ``Credentials``, never from the table, and ``Credentials`` never
prints them.

Markets are loaded once per run (``load_markets``) and handed to every other client of the
same exchange with ``share_markets``, so the feed and the order gateway agree on precision and
limits and the exchange is asked once. ccxt is imported lazily: it takes a second to import.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

Flavour = Literal["sync", "async", "pro"]
"""``sync``: ``ccxt.<id>``; ``async``: ``ccxt.async_support.<id>``; ``pro``: ``ccxt.pro.<id>``
(websockets, also async)."""

DEFAULTS: dict[str, Any] = {
    "enableRateLimit": True,
    "timeout": 10_000,
}

SPOT_ONLY: dict[str, dict[str, Any]] = {
    "binance": {
        "options": {
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
        },
    },
}
"""Per exchange: the options that keep ``load_markets`` to spot endpoints."""


SECRET_KEYS = frozenset({"apiKey", "secret", "password", "uid", "login", "privateKey",
                         "walletAddress", "token", "twofa"})
"""ccxt constructor settings that are credentials: never taken from the ``ccxt`` table."""


def env_prefix(exchange_id: str) -> str:
    """``CONDUCTOR_BINANCE_`` for ``binance``: where live keys come from in the environment."""
    return "CONDUCTOR_" + re.sub(r"[^A-Z0-9]", "_", exchange_id.upper()) + "_"


@attrs.frozen(kw_only=True, repr=False)
class Credentials:
    """API keys for live orders; ``repr`` and ``str`` never show them."""

    api_key: str
    secret: str
    password: str = ""

    def __repr__(self) -> str:
        return f"Credentials(api_key={mask(self.api_key)}, secret=***)"

    __str__ = __repr__

    def as_ccxt(self) -> dict[str, str]:
        out = {"apiKey": self.api_key, "secret": self.secret}
        if self.password:
            out["password"] = self.password
        return out


def mask(value: str) -> str:
    """A secret as it may appear in a log: its last 4 characters at most."""
    return "***" + value[-4:] if len(value) >= 12 else "***"


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into a deep copy of ``base``: tables merge, everything else replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def client_settings(exchange_id: str, user: Mapping[str, Any],
                    credentials: Credentials | None = None) -> dict[str, Any]:
    """The dict given to the ccxt constructor: defaults, spot-only options, the user's table
    (which wins), then the keys."""
    settings = deep_merge(DEFAULTS, SPOT_ONLY.get(exchange_id, {}))
    settings = deep_merge(settings, user)
    for key in SECRET_KEYS:
        settings.pop(key, None)  # keys come only from Credentials
    if credentials is not None:
        settings.update(credentials.as_ccxt())
    return settings


def make_client(exchange_id: str, user: Mapping[str, Any],
                credentials: Credentials | None = None, *, flavour: Flavour = "sync") -> Any:
    """A new ccxt client of ``flavour`` for ``exchange_id`` (an id ccxt knows)."""
    if flavour == "sync":
        import ccxt as module
    elif flavour == "async":
        import ccxt.async_support as module
    else:
        import ccxt.pro as module
    cls = getattr(module, exchange_id, None)
    if cls is None:
        raise ValueError(f"ccxt has no {flavour} client for exchange {exchange_id!r}")
    return cls(client_settings(exchange_id, user, credentials))


def share_markets(source: Any, target: Any) -> None:
    """Give ``target`` the markets ``source`` loaded, so it never loads them itself."""
    target.set_markets(source.markets, source.currencies)
