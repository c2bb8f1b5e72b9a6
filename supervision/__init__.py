"""Supervision and embedding: start, watch, steer and stop trade-conductor from Python.

    from supervision import TradingSystem, build_config

    config = build_config({}, {"pairs": "BTC/USDT,ETH/USDT", "speed": 10})
    with TradingSystem(config) as system:
        system.wait(30)
        print(system.status().equity)

Nothing here touches process-global state on import; logging stays disabled until the
application enables it (``loguru.logger.enable("actors")`` etc., as the CLI does).
"""

from loguru import logger

from supervision.app import describe_event, format_table
from supervision.config import ConfigError, SystemConfig, build_config
from supervision.status import PairStatus, SystemStatus
from supervision.system import SystemNotRunningError, TradingSystem

logger.disable("supervision")

__all__ = [
    "ConfigError",
    "PairStatus",
    "SystemConfig",
    "SystemNotRunningError",
    "SystemStatus",
    "TradingSystem",
    "build_config",
    "describe_event",
    "format_table",
]
