"""``SystemConfig``: one run of trade-conductor, a frozen value with every section in it."""

from __future__ import annotations

import os
import uuid

import attrs

from actors.execution import PaperConfig
from actors.market import reference_usd
from actors.messages import StrategySpec
from actors.pair import ExitRules
from actors.pairs import split_pair
from actors.risk import RiskConfig
from supervision.config.api import ApiSettings
from supervision.config.cluster import ClusterConfig
from supervision.config.exchange import SIM, ExchangeSettings
from supervision.config.notify import NotifySettings
from supervision.config.restart import RestartPolicy
from supervision.config.state import StateSettings

DEFAULT_STATE_DB = os.path.join("var", "trade-conductor.sqlite")
DEFAULT_LOG_DIR = "var"
STABLE_QUOTES = frozenset({"USDT", "USDC", "BUSD", "FDUSD", "USD", "DAI", "TUSD", "EUR"})


@attrs.frozen(kw_only=True)
class SystemConfig:
    """One run of trade-conductor."""

    pairs: tuple[str, ...]
    exchange: str = SIM
    """``sim`` or a ccxt exchange id."""
    exchange_settings: ExchangeSettings = ExchangeSettings()
    strategy: StrategySpec = StrategySpec.of("ema_cross")
    state_db: str = DEFAULT_STATE_DB
    """An SQLite file, or a ``postgresql://`` URL (``supervision.config.state``)."""
    state_settings: StateSettings = StateSettings()
    duration: float | None = None
    seed: int = 42
    speed: float = 1.0
    """1 = real time (or the recorded pace), 10 = ten times faster, ``math.inf`` = as fast as
    the system can go."""
    log_level: str = "INFO"
    summary_json: str | None = None
    replay: tuple[tuple[str, str], ...] = ()
    status_interval: float = 5.0
    initial_balance: float | None = None
    """Quote currency funding a new state database; default 10,000 USD worth."""
    risk: RiskConfig = RiskConfig()
    paper: PaperConfig = PaperConfig()
    exits: ExitRules = ExitRules()
    restart: RestartPolicy = RestartPolicy()
    tick_interval_ms: float = 250.0
    warmup_ticks: int = 300
    history_size: int = 2000
    max_inflight_ticks: int = 1000
    pair_workers: int = 4
    """Worker threads that run the pair actors (``actors.pair.pool``); 0: a thread per pair.
    A worker stuck in one pair is replaced, so a hung pair never takes the others' workers."""
    gil_switch_ms: float | None = 0.5
    """How long a thread may hold the GIL while others wait (Python's default is 5 ms), set
    for the process while the system runs; None leaves it alone. At 200 pairs on the pair
    pool it gives a tick -> decision p99 of 0.9-1.5 ms against 2.0-3.5 ms at Python's 5 ms
    (eight-second runs; with a thread per pair it was 4-7 ms against 16-19 ms)."""
    ask_timeout: float = 5.0
    metrics_port: int | None = None
    """Serve Prometheus metrics and /health on 127.0.0.1 at this port (0: any free port);
    None: no server."""
    health_max_tick_age_s: float = 30.0
    """/health reports a running pair whose last tick is older than this as unhealthy (live
    feeds only: a replay may pause, and a finished one has no more ticks)."""
    log_json: bool = False
    log_dir: str = DEFAULT_LOG_DIR
    """Where the CLI keeps its rotating log file."""
    run_id: str = attrs.field(factory=lambda: uuid.uuid4().hex[:8])
    api: ApiSettings = ApiSettings()
    """The HTTP API and dashboard (``[api]``, ``--api-port``); off without a port."""
    notify: NotifySettings = NotifySettings()
    """Alerts to webhooks, Telegram, Discord (``[notify]``); none by default."""
    cluster: ClusterConfig | None = None
    """Run the pairs in shards on a Ray cluster (``supervision.cluster``); None: one process."""

    @property
    def quote(self) -> str:
        return split_pair(self.pairs[0])[1]

    @property
    def funding(self) -> dict[str, float]:
        """Initial balances of a new account: the quote currency only."""
        if self.initial_balance is not None:
            return {self.quote: self.initial_balance}
        usd = 1.0 if self.quote in STABLE_QUOTES else (reference_usd(self.quote) or 1.0)
        return {self.quote: 10_000.0 / usd}

    @property
    def is_replay(self) -> bool:
        return bool(self.replay)


LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")

