"""Market data: where ticks come from and how they reach the pairs.

``actor`` (``MarketDataActor``) runs one feed thread, checks every tick with ``core``
(``MarketDataCore``: drops and counts malformed ticks, keeps the history ring) and pushes it
into the pair's tick inbox. The feeds: ``simulator`` (the embedded market), ``replay`` (CSV
files), ``scenarios`` (scripted markets for tests), ``pacer`` (real-time pacing), and
``live_feed`` with its plain ``live_feed_core`` (ccxt websockets or REST polling).
"""

from actors.market.actor import MarketDataActor, StartFeed
from actors.market.core import BAD_PRICE, TIME_BACKWARDS, UNKNOWN_PAIR, MarketDataCore
from actors.market.live_feed import (
    ExchangeUnavailableError,
    FeedUnsupportedError,
    LiveFeed,
    UnknownMarketError,
)
from actors.market.live_feed_core import DUPLICATE
from actors.market.replay import (
    CANDLES_HEADER,
    TRADES_HEADER,
    FeedError,
    open_feeds,
    validate_csv,
)
from actors.market.simulator import MarketSimulator, decimals_of, profile_for, reference_usd

__all__ = [
    "BAD_PRICE",
    "CANDLES_HEADER",
    "DUPLICATE",
    "TIME_BACKWARDS",
    "TRADES_HEADER",
    "UNKNOWN_PAIR",
    "ExchangeUnavailableError",
    "FeedError",
    "FeedUnsupportedError",
    "LiveFeed",
    "MarketDataActor",
    "MarketDataCore",
    "MarketSimulator",
    "StartFeed",
    "UnknownMarketError",
    "decimals_of",
    "open_feeds",
    "profile_for",
    "reference_usd",
    "validate_csv",
]
