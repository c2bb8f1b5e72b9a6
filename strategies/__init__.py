"""Trading strategies: plain classes that turn prices into signals (no threads, no I/O).

Strategies stay free of the actor machinery. They import the plain values they trade on
(``MarketTick``, ``Signal``, ``StrategySpec`` from ``actors.messages``) and nothing that starts
a thread or an actor: no other ``actors`` module, no ``pykka``, no ``supervision``. So a
strategy is tested, backtested and optimised as a plain object, and process isolation
(``isolated``) starts its child without the system's imports. A test holds this.
"""

from loguru import logger

logger.disable("strategies")
