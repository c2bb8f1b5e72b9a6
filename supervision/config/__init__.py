"""The system's configuration: frozen values built from TOML and CLI flags, validated once.

Everything a run needs is checked here, before any actor, thread or file exists: pairs,
strategy (it is built once to prove it can be), exchange id, replay files, numbers. Each
problem raises one ``ConfigError`` whose message names the key, the bad value and the valid
choices; the CLI prints it and exits 2. One module per section: ``exchange``, ``restart``,
``strategy``, ``state``, ``api``, ``notify``, ``cluster``; ``system`` holds the whole value,
``build`` merges file and flags into it, ``credentials`` reads API keys from the environment or
a private file (``secrets``).
"""

from supervision.config.api import ApiSettings, strategy_allowed
from supervision.config.build import (
    TOP_LEVEL_KEYS,
    build_config,
    load_toml,
    parse_replay,
    parse_speed,
)
from supervision.config.cluster import AUTO, ClusterConfig
from supervision.config.credentials import load_credentials, require_credentials
from supervision.config.exchange import FEEDS, SIM, ExchangeSettings, known_exchanges
from supervision.config.notify import ChannelSettings, NotifySettings
from supervision.config.restart import POSITION_POLICIES, RestartPolicy
from supervision.config.secrets import read_private_toml
from supervision.config.state import (
    PASSWORD_ENV,
    StateSettings,
    check_location,
    load_db_password,
)
from supervision.config.strategy import strategy_spec_from, validate_strategy
from supervision.config.system import (
    DEFAULT_LOG_DIR,
    DEFAULT_STATE_DB,
    LOG_LEVELS,
    STABLE_QUOTES,
    SystemConfig,
)
from supervision.config.values import ConfigError

__all__ = [
    "AUTO",
    "DEFAULT_LOG_DIR",
    "DEFAULT_STATE_DB",
    "FEEDS",
    "LOG_LEVELS",
    "PASSWORD_ENV",
    "POSITION_POLICIES",
    "SIM",
    "STABLE_QUOTES",
    "TOP_LEVEL_KEYS",
    "ApiSettings",
    "ChannelSettings",
    "ClusterConfig",
    "ConfigError",
    "ExchangeSettings",
    "NotifySettings",
    "RestartPolicy",
    "StateSettings",
    "SystemConfig",
    "build_config",
    "check_location",
    "known_exchanges",
    "load_credentials",
    "load_db_password",
    "load_toml",
    "parse_replay",
    "parse_speed",
    "read_private_toml",
    "require_credentials",
    "strategy_allowed",
    "strategy_spec_from",
    "validate_strategy",
]
