"""What every wing knows about an exchange: the ccxt client, its market rules, its steps.

``client`` builds ccxt clients (defaults, credentials, shared markets); ``market_rules``
reads lot, tick and minimum sizes from ccxt markets; ``steps`` rounds to them. Used by
market data, execution and risk alike.
"""

from actors.exchange.client import SECRET_KEYS, Credentials, env_prefix, make_client, share_markets
from actors.exchange.market_rules import DECIMAL_PLACES, TICK_SIZE, MarketRules, precision_step
from actors.exchange.steps import ceil_to_step, floor_to_step

__all__ = [
    "DECIMAL_PLACES",
    "SECRET_KEYS",
    "TICK_SIZE",
    "Credentials",
    "MarketRules",
    "ceil_to_step",
    "env_prefix",
    "floor_to_step",
    "make_client",
    "precision_step",
    "share_markets",
]
