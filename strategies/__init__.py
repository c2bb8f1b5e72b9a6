"""Trading strategies: plain classes that turn prices into signals (no threads, no I/O)."""

from loguru import logger

logger.disable("strategies")
