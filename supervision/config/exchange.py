"""``[exchange]``: which exchange (``sim`` or a ccxt id) and how to reach it; never its keys."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import attrs

from actors.exchange import SECRET_KEYS, env_prefix
from supervision.config.values import ConfigError, positive

SIM = "sim"
FEEDS = ("ws", "rest")


@attrs.frozen(kw_only=True)
class ExchangeSettings:
    """How to reach a ccxt exchange (unused on ``sim``): the ``[exchange]`` table but ``id``.

    ``ccxt`` is handed to the ccxt constructor as is (timeouts, ``options``, ``urls``, rate
    limits), deep-merged over our defaults (``actors.exchange.client``); it never holds keys, which
    come from the environment or ``secrets_file`` (``supervision.config.credentials``).
    """

    ccxt: dict[str, Any] = attrs.field(factory=dict, hash=False)
    live: bool = False
    """Real orders; without it a real exchange is paper-traded on its live market data."""
    feed: str = "ws"
    """``ws``: ccxt.pro websocket streams; ``rest``: polling."""
    poll_interval_s: float = 1.0
    """How often the ``rest`` feed polls each pair."""
    stale_after_s: float = 10.0
    """A pair without market data for this long stops opening positions until data returns."""
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    """Feed reconnects back off exponentially (with jitter) between these bounds."""
    order_retries: int = 5
    """Retries of a retriable order request (network, timeout, rate limit) before giving up."""
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    limit_timeout_s: float = 60.0
    """A live limit order unfilled for this long is cancelled."""
    infer_fill_after_s: float = 30.0
    """An order the exchange reports filled whose trades do not appear within this long is
    booked from its cumulative fill and average price (an inferred fill, replaced by the
    real trades if they come later)."""
    secrets_file: str | None = None
    """A TOML file with ``api_key``, ``secret``, ``password``; must not be readable by others."""



_EXCHANGE_IDS: tuple[str, ...] | None = None


def known_exchanges() -> tuple[str, ...]:
    """ccxt's exchange ids (imported lazily: ccxt takes a while to import)."""
    global _EXCHANGE_IDS
    if _EXCHANGE_IDS is None:
        import ccxt

        _EXCHANGE_IDS = tuple(ccxt.exchanges)
    return _EXCHANGE_IDS


EXCHANGE_KEYS = ("id", *(f.name for f in attrs.fields(ExchangeSettings)))


def exchange_table(from_file: Any, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[exchange]`` table (or a bare id) with ``--exchange``, ``--live`` and ``--feed``
    laid over it: the flag replaces the id, the file's other settings stay."""
    if isinstance(from_file, Mapping):
        table = dict(from_file)
    elif isinstance(from_file, str):
        table = {"id": from_file}
    else:
        raise ConfigError(f"exchange: {from_file!r} is neither an id nor a table; e.g. "
                          '[exchange] id = "binance"')
    flag = overrides.get("exchange")
    if isinstance(flag, Mapping):
        table.update(flag)
    elif flag is not None:
        table["id"] = flag
    for key in ("live", "feed"):
        if overrides.get(key) is not None:
            table[key] = overrides[key]
    unknown = sorted(set(table) - set(EXCHANGE_KEYS))
    if unknown:
        raise ConfigError(f"[exchange] unknown keys {unknown}; valid keys: "
                          f"{', '.join(EXCHANGE_KEYS)}")
    return table


def exchange_settings_from(table: Mapping[str, Any], exchange: str) -> ExchangeSettings:
    """Validate the ``[exchange]`` settings (all keys but ``id``) for ``exchange``."""
    values: dict[str, Any] = {}
    if "ccxt" in table:
        values["ccxt"] = _ccxt_options(table["ccxt"], exchange)
    if "live" in table:
        live = table["live"]
        if not isinstance(live, bool):
            raise ConfigError(f"exchange.live: {live!r} is not one of true, false")
        if live and exchange == SIM:
            raise ConfigError("exchange.live: true needs a real exchange (a ccxt id such as "
                              "binance); 'sim' always trades on its own paper exchange")
        values["live"] = live
    if "feed" in table:
        if table["feed"] not in FEEDS:
            raise ConfigError(f"exchange.feed: {table['feed']!r} is not one of "
                              f"{', '.join(FEEDS)}")
        values["feed"] = table["feed"]
    for key in ("poll_interval_s", "stale_after_s", "reconnect_initial_s", "reconnect_max_s",
                "retry_initial_s", "retry_max_s", "limit_timeout_s", "infer_fill_after_s"):
        if key in table:
            values[key] = positive(f"exchange.{key}", table[key])
    if "order_retries" in table:
        retries = table["order_retries"]
        if not (isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0):
            raise ConfigError(f"exchange.order_retries: {retries!r} is not an integer >= 0")
        values["order_retries"] = retries
    if "secrets_file" in table:
        path = table["secrets_file"]
        if not isinstance(path, str) or not path.strip():
            raise ConfigError(f"exchange.secrets_file: {path!r} is not a file name")
        values["secrets_file"] = path
    settings = ExchangeSettings(**values)
    if settings.feed == "ws" and exchange != SIM and not _streams_trades(exchange):
        raise ConfigError(f"exchange.feed: 'ws' needs websocket trades, which ccxt.pro does "
                          f"not offer for {exchange}; use feed = \"rest\" (--feed rest)")
    for low, high in (("reconnect_initial_s", "reconnect_max_s"),
                      ("retry_initial_s", "retry_max_s")):
        if getattr(settings, low) > getattr(settings, high):
            raise ConfigError(f"exchange.{low}: {getattr(settings, low)!r} is above "
                              f"exchange.{high} ({getattr(settings, high)!r}); the backoff "
                              "grows from the first up to the second")
    return settings


def _streams_trades(exchange: str) -> bool:
    """ccxt.pro has a client for ``exchange`` that watches trades."""
    import ccxt.pro

    cls = getattr(ccxt.pro, exchange, None)
    return cls is not None and bool(cls.describe(object.__new__(cls))["has"].get("watchTrades"))


def _ccxt_options(options: Any, exchange: str) -> dict[str, Any]:
    """The ``ccxt`` table, handed to the ccxt constructor as is; keys are refused (they belong
    in the environment or the secrets file), and so are names ccxt has no setting for."""
    if not isinstance(options, Mapping):
        raise ConfigError(f"exchange.ccxt: {options!r} is not a table; e.g. "
                          "[exchange.ccxt] timeout = 10000")
    secret = sorted(SECRET_KEYS & set(options))
    if secret:
        prefix = env_prefix(exchange)
        raise ConfigError(f"exchange.ccxt.{secret[0]}: API keys never go in the config file; "
                          f"set them in the environment ({prefix}API_KEY, {prefix}SECRET, "
                          f"{prefix}PASSWORD) or in exchange.secrets_file (a TOML file with "
                          "api_key and secret, chmod 600)")
    if exchange != SIM:
        import ccxt

        cls = getattr(ccxt, exchange, ccxt.Exchange)
        for key in options:
            if not hasattr(cls, key):
                close = difflib.get_close_matches(key, [a for a in dir(cls)
                                                        if not a.startswith("_")], n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise ConfigError(f"exchange.ccxt.{key}: ccxt's {exchange} has no such "
                                  f"setting{hint}; e.g. timeout, rateLimit, options, urls")
    return dict(options)


def validate_exchange(exchange: str) -> str:
    if exchange == SIM:
        return exchange
    ids = known_exchanges()
    if exchange not in ids:
        close = [i for i in ids if i.startswith(exchange[:3])][:8]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise ConfigError(f"exchange: {exchange!r} is neither 'sim' nor a ccxt exchange id"
                          f"{hint}; ccxt knows {len(ids)} ids, e.g. binance, kraken, coinbase")
    return exchange


