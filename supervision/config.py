"""The system's configuration: frozen values built from TOML and CLI flags, validated once.

Everything a run needs is checked here, before any actor, thread or file exists: pairs,
strategy (it is built once to prove it can be), exchange id, replay files, numbers. Each
problem raises one ``ConfigError`` whose message names the key, the bad value and the valid
choices; the CLI prints it and exits 2.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from actors.ccxt_client import SECRET_KEYS, env_prefix
from actors.messages import OrderType, StrategySpec
from actors.orchestrator_core import ExitRules
from actors.pairs import PairError, split_pair
from actors.paper_exchange import PaperConfig
from actors.replay_feed import FeedError, validate_csv
from actors.risk_core import RiskConfig
from actors.simulator import reference_usd

DEFAULT_STATE_DB = os.path.join("var", "trade-conductor.sqlite")
DEFAULT_LOG_DIR = "var"
SIM = "sim"
STABLE_QUOTES = frozenset({"USDT", "USDC", "BUSD", "FDUSD", "USD", "DAI", "TUSD", "EUR"})


POSITION_POLICIES = ("hold", "flatten")


def _policy(value: object) -> None:
    if value not in POSITION_POLICIES:
        raise ValueError(f"restart.on_failure = {value!r} is invalid: expected one of "
                         f"{', '.join(POSITION_POLICIES)}")


class ConfigError(ValueError):
    """A configuration that cannot run; the message says what and what would be valid."""


def _is_number(value: Any) -> bool:
    """An int or float that is not a bool (TOML's ``true`` is no number of seconds)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _restart_count(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise ValueError(
            f"restart.{attribute.name} = {value!r} is invalid: expected an integer >= 0")


def _restart_seconds(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise ValueError(
            f"restart.{attribute.name} = {value!r} is invalid: expected a number of seconds > 0")


@attrs.frozen(kw_only=True)
class RestartPolicy:
    """How the supervisor restarts a crashed pair (one-for-one)."""

    max_restarts: int = attrs.field(default=5, validator=_restart_count)
    window_s: float = attrs.field(default=60.0, validator=_restart_seconds)
    backoff_initial_s: float = attrs.field(default=0.1, validator=_restart_seconds)
    backoff_max_s: float = attrs.field(default=10.0, validator=_restart_seconds)
    heartbeat_interval_s: float = attrs.field(default=1.0, validator=_restart_seconds)
    heartbeat_timeout_s: float = attrs.field(default=5.0, validator=_restart_seconds)
    """A child that has not answered a heartbeat for this long is hung and replaced."""
    on_failure: str = attrs.field(default="hold", validator=lambda _i, _a, v: _policy(v))
    """What happens to the position of a pair given up on (or removed): hold or flatten."""
    rollback_after: int = attrs.field(default=3, validator=_restart_count)
    """Crashes of a swapped-in strategy, before it ran ``clean_ticks``, that roll the pair back
    to its last clean strategy (0 = never)."""
    clean_ticks: int = attrs.field(default=1000, validator=_restart_count)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff for the ``attempt``-th restart in the window (1-based)."""
        # The exponent is capped so a long crash loop cannot overflow the int-to-float step.
        doubling = 2.0 ** min(max(0, attempt - 1), 1000)
        return float(min(self.backoff_max_s, self.backoff_initial_s * doubling))


FEEDS = ("ws", "rest")


@attrs.frozen(kw_only=True)
class ExchangeSettings:
    """How to reach a ccxt exchange (unused on ``sim``): the ``[exchange]`` table but ``id``.

    ``ccxt`` is handed to the ccxt constructor as is (timeouts, ``options``, ``urls``, rate
    limits), deep-merged over our defaults (``actors.ccxt_client``); it never holds keys, which
    come from the environment or ``secrets_file`` (``supervision.credentials``).
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
    secrets_file: str | None = None
    """A TOML file with ``api_key``, ``secret``, ``password``; must not be readable by others."""


@attrs.frozen(kw_only=True)
class SystemConfig:
    """One run of trade-conductor."""

    pairs: tuple[str, ...]
    exchange: str = SIM
    """``sim`` or a ccxt exchange id."""
    exchange_settings: ExchangeSettings = ExchangeSettings()
    strategy: StrategySpec = StrategySpec.of("ema_cross")
    state_db: str = DEFAULT_STATE_DB
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
    """Worker threads that run the pair actors (``actors.pair_pool``); 0: a thread per pair.
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


# -- parsing helpers ----------------------------------------------------------------------------


def parse_speed(text: str | float) -> float:
    """``"max"`` or a positive number."""
    if isinstance(text, str) and text.strip().lower() == "max":
        return math.inf
    try:
        if isinstance(text, bool):
            raise TypeError(text)
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"speed: {text!r} is not a number; use a positive number "
                          "(1 = real time) or 'max'") from None
    if not value > 0 or math.isnan(value):
        raise ConfigError(f"speed: {text!r} must be > 0 (1 = real time) or 'max'")
    return value


def parse_replay(items: list[str]) -> tuple[tuple[str, str], ...]:
    """``["BTC/USDT=path.csv", ...]`` -> pairs and paths, one file per pair."""
    out: dict[str, str] = {}
    for item in items:
        pair, sep, path = (part.strip() for part in item.partition("="))
        if not sep or not pair or not path:
            raise ConfigError(f"replay: {item!r} is not PAIR=FILE.csv, "
                              "e.g. --replay BTC/USDT=data/btc.csv")
        if pair in out:
            raise ConfigError(f"replay: pair {pair} is given twice; one file per pair")
        out[pair] = path
    return tuple(out.items())


_EXCHANGE_IDS: tuple[str, ...] | None = None


def known_exchanges() -> tuple[str, ...]:
    """ccxt's exchange ids (imported lazily: ccxt takes a while to import)."""
    global _EXCHANGE_IDS
    if _EXCHANGE_IDS is None:
        import ccxt

        _EXCHANGE_IDS = tuple(ccxt.exchanges)
    return _EXCHANGE_IDS


def _section(cls: type[Any], data: Mapping[str, Any], name: str) -> Any:
    """Build the attrs config ``cls`` from a TOML table, naming unknown or bad keys."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"[{name}] must be a table, got {data!r}")
    valid = [f.name for f in attrs.fields(cls)]
    for key in data:
        if key not in valid:
            raise ConfigError(f"[{name}] unknown key {key!r}; valid keys: {', '.join(valid)}")
    values = dict(data)
    if cls is ExitRules and "entry_order_type" in values:
        values["entry_order_type"] = _choice(
            f"{name}.entry_order_type", values["entry_order_type"], OrderType)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{name}] {exc}") from None


def _choice(key: str, value: Any, enum_cls: Any) -> Any:
    try:
        return enum_cls(value)
    except ValueError:
        choices = ", ".join(e.value for e in enum_cls)
        raise ConfigError(f"{key}: {value!r} is not one of {choices}") from None


def strategy_spec_from(data: Mapping[str, Any], where: str = "strategy") -> StrategySpec:
    """``{name = "ema_cross", params = {...}}`` or an aggregate with ``members``; with
    ``isolation = "process"`` the strategy runs in a child process of its own."""
    if not isinstance(data, Mapping) or "name" not in data:
        raise ConfigError(f"[{where}] needs name = \"ema_cross\" (a built-in or "
                          "package.module:ClassName) and optional params = {...}")
    extra = set(data) - {"name", "params", "members", "rule", "threshold", "weight",
                         "isolation", *_ISOLATION_KEYS}
    if extra:
        raise ConfigError(f"[{where}] unknown keys {sorted(extra)}; valid keys: name, params, "
                          "members, rule, threshold (aggregates), weight (members), "
                          f"isolation, {', '.join(_ISOLATION_KEYS)}")
    if "isolation" in data or set(_ISOLATION_KEYS) & set(data):
        return _isolated_spec_from(data, where)
    params = data.get("params", {})
    if not isinstance(params, Mapping):
        raise ConfigError(f"[{where}] params must be a table, e.g. params = {{fast = 10}}; "
                          f"got {params!r}")
    params = dict(params)
    if data["name"] != "aggregate":
        return StrategySpec.of(str(data["name"]), **params)
    for key in ("rule", "threshold"):
        if key in data:
            params[key] = data[key]
    members = data.get("members") or []
    if not members or not isinstance(members, list | tuple):
        raise ConfigError(f"[{where}] an aggregate needs members = [{{name = ...}}, ...]")
    built = tuple(
        (strategy_spec_from(m, f"{where}.members[{i}]"),
         _weight(m.get("weight", 1.0), f"{where}.members[{i}]"))
        for i, m in enumerate(members)
    )
    return StrategySpec(path="aggregate", params=tuple(sorted(params.items())), members=built)


_ISOLATION_KEYS = ("isolation_timeout_s", "isolation_priority")
"""``[strategy]`` keys for an isolated strategy: its ``timeout_s`` and ``priority``."""


def _isolated_spec_from(data: Mapping[str, Any], where: str) -> StrategySpec:
    """``isolation = "thread"`` (the default) or ``"process"``, on the whole [strategy]."""
    from strategies.isolated import ISOLATIONS, isolated

    if ".members[" in where:
        raise ConfigError(f"[{where}] isolation applies to the whole [strategy], not to one "
                          "aggregate member; set it next to name = \"aggregate\"")
    isolation = data.get("isolation", "thread")
    if isolation not in ISOLATIONS:
        raise ConfigError(f"[{where}] isolation = {isolation!r} is invalid: expected one of "
                          f"{', '.join(ISOLATIONS)}")
    given = [key for key in _ISOLATION_KEYS if key in data]
    rest = {k: v for k, v in data.items() if k != "isolation" and k not in given}
    spec = strategy_spec_from(rest, where)
    if isolation == "thread":
        if given:
            raise ConfigError(f"[{where}] {given[0]} needs isolation = \"process\"")
        return spec
    # Checked with the spec (validate_strategy): the errors name timeout_s, priority.
    return isolated(spec, **{key.removeprefix("isolation_"): data[key] for key in given})


def _weight(value: Any, where: str) -> float:
    if not _is_number(value):
        raise ConfigError(f"[{where}] weight = {value!r} is not a number; e.g. weight = 2.0")
    return float(value)


def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML config file, or say clearly why it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path!r} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path!r} is not valid TOML: {exc}") from None


TOP_LEVEL_KEYS = (
    "pairs", "exchange", "strategy", "state_db", "duration", "seed", "speed", "log_level",
    "summary_json", "replay", "status_interval", "initial_balance", "risk", "paper", "exits",
    "restart", "tick_interval_ms", "warmup_ticks", "history_size", "max_inflight_ticks",
    "pair_workers", "gil_switch_ms", "metrics_port", "log_json", "log_dir",
)


def _pair_workers(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 256:
        raise ConfigError(f"pair_workers: {value!r} must be a whole number from 0 (a thread "
                          "per pair) to 256; the default, 4, suits most machines")
    return value


def _gil_switch_ms(value: Any) -> float | None:
    if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    number = _positive("gil_switch_ms", value)
    if number > 1000:
        raise ConfigError(f"gil_switch_ms: {value!r} is more than a second; give milliseconds "
                          '(Python\'s default is 5), or "off" to leave Python\'s setting alone')
    return number


def build_config(file_values: Mapping[str, Any], overrides: Mapping[str, Any]) -> SystemConfig:
    """Merge a config file's values with CLI overrides (which win) and validate the result."""
    for key in file_values:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"unknown config key {key!r}; valid keys: "
                              f"{', '.join(TOP_LEVEL_KEYS)}")
    merged: dict[str, Any] = {**file_values, **{k: v for k, v in overrides.items()
                                                if v is not None}}
    kwargs: dict[str, Any] = {}

    table = _exchange_table(file_values.get("exchange", SIM), overrides)
    kwargs["exchange"] = _validate_exchange(str(table.pop("id", SIM)))
    kwargs["exchange_settings"] = exchange_settings_from(table, kwargs["exchange"])

    replay = merged.get("replay", ())
    if isinstance(replay, Mapping):
        replay = tuple((str(k), str(v)) for k, v in replay.items())
    if not (isinstance(replay, list | tuple)
            and all(isinstance(r, list | tuple) and len(r) == 2 for r in replay)):
        raise ConfigError(f"replay: {replay!r} is not a table of files per pair, e.g. "
                          '[replay] "BTC/USDT" = "data/btc.csv"')
    kwargs["replay"] = tuple((str(p), str(f)) for p, f in replay)
    kwargs["pairs"] = _validate_pairs(merged.get("pairs"), kwargs["replay"])
    if kwargs["exchange"] != SIM and kwargs["replay"]:
        raise ConfigError(f"replay: recorded files cannot be traded on exchange "
                          f"{kwargs['exchange']!r}, whose market data is live; use "
                          "--exchange sim with --replay")

    strategy = merged.get("strategy", {"name": "ema_cross"})
    kwargs["strategy"] = (strategy if isinstance(strategy, StrategySpec)
                          else strategy_spec_from(strategy))
    validate_strategy(kwargs["strategy"])

    if "speed" in merged:
        kwargs["speed"] = parse_speed(merged["speed"])
        if kwargs["exchange"] != SIM and kwargs["speed"] != 1.0:
            shown = "max" if math.isinf(kwargs["speed"]) else repr(merged["speed"])
            raise ConfigError(f"speed: {shown} paces the simulator and replays; "
                              f"market data from {kwargs['exchange']} arrives in real time "
                              "(leave speed at 1)")
    if merged.get("duration") is not None:
        kwargs["duration"] = _positive("duration", merged["duration"])
    for key in ("status_interval", "tick_interval_ms"):
        if key in merged:
            kwargs[key] = _positive(key, merged[key])
    for key in ("warmup_ticks", "history_size", "max_inflight_ticks"):
        if key in merged:
            number = _positive(key, merged[key])
            if not number.is_integer():
                raise ConfigError(f"{key}: {merged[key]!r} must be a positive integer")
            kwargs[key] = int(number)
    if merged.get("initial_balance") is not None:
        kwargs["initial_balance"] = _positive("initial_balance", merged["initial_balance"])
    if "pair_workers" in merged:
        kwargs["pair_workers"] = _pair_workers(merged["pair_workers"])
    if "gil_switch_ms" in merged:
        kwargs["gil_switch_ms"] = _gil_switch_ms(merged["gil_switch_ms"])
    if "seed" in merged:
        seed = merged["seed"]
        try:
            if isinstance(seed, bool) or (isinstance(seed, float) and not seed.is_integer()):
                raise TypeError(seed)
            kwargs["seed"] = int(seed)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"seed: {seed!r} is not an integer") from None
    level = str(merged.get("log_level", "INFO")).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"log_level: {level!r} is not one of {', '.join(LOG_LEVELS)}")
    kwargs["log_level"] = level
    for key in ("state_db", "summary_json"):
        if merged.get(key) is not None:
            kwargs[key] = str(merged[key])
            if not kwargs[key].strip():
                raise ConfigError(f"{key}: {merged[key]!r} is an empty path; give a file name")
            if os.path.isdir(kwargs[key]):
                raise ConfigError(f"{key}: {merged[key]!r} is a folder; give a file name")
    if merged.get("metrics_port") is not None:
        kwargs["metrics_port"] = _port(merged["metrics_port"])
    if merged.get("log_json") is not None:
        if not isinstance(merged["log_json"], bool):
            raise ConfigError(f"log_json: {merged['log_json']!r} is not one of true, false")
        kwargs["log_json"] = merged["log_json"]
    if merged.get("log_dir") is not None:
        log_dir = kwargs["log_dir"] = str(merged["log_dir"])
        if not log_dir.strip():
            raise ConfigError(f"log_dir: {log_dir!r} is an empty path; give a folder")
        if os.path.exists(log_dir) and not os.path.isdir(log_dir):
            raise ConfigError(f"log_dir: {log_dir!r} is a file; give a folder")
    for key, cls in (("risk", RiskConfig), ("paper", PaperConfig), ("exits", ExitRules),
                     ("restart", RestartPolicy)):
        if key in merged:
            kwargs[key] = _section(cls, merged[key], key)
    return SystemConfig(**kwargs)


def _positive(key: str, value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: {value!r} is not a number") from None
    if not number > 0 or math.isinf(number):
        raise ConfigError(f"{key}: {value!r} must be a positive number")
    return number


def _port(value: Any) -> int:
    """A TCP port for the metrics server: 1-65535, or 0 for any free one."""
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535):
        raise ConfigError(f"metrics_port: {value!r} is not a port; use an integer from 1 to "
                          "65535, or 0 for any free port")
    return value


EXCHANGE_KEYS = ("id", *(f.name for f in attrs.fields(ExchangeSettings)))


def _exchange_table(from_file: Any, overrides: Mapping[str, Any]) -> dict[str, Any]:
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
                "retry_initial_s", "retry_max_s", "limit_timeout_s"):
        if key in table:
            values[key] = _positive(f"exchange.{key}", table[key])
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


def _validate_exchange(exchange: str) -> str:
    if exchange == SIM:
        return exchange
    ids = known_exchanges()
    if exchange not in ids:
        close = [i for i in ids if i.startswith(exchange[:3])][:8]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise ConfigError(f"exchange: {exchange!r} is neither 'sim' nor a ccxt exchange id"
                          f"{hint}; ccxt knows {len(ids)} ids, e.g. binance, kraken, coinbase")
    return exchange


def _validate_pairs(pairs: Any, replay: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    from actors.pairs import parse_pair_list

    if pairs is None and replay:
        pairs = [p for p, _ in replay]
    if pairs is None:
        raise ConfigError("pairs: none given; e.g. --pairs BTC/USDT,ETH/USDT")
    if not (isinstance(pairs, str)
            or (isinstance(pairs, list | tuple) and all(isinstance(p, str) for p in pairs))):
        raise ConfigError(f"pairs: {pairs!r} is not a list of BASE/QUOTE symbols; e.g. "
                          'pairs = ["BTC/USDT", "ETH/USDT"]')
    try:
        parsed = parse_pair_list(pairs if isinstance(pairs, str) else ",".join(pairs))
    except PairError as exc:
        raise ConfigError(f"pairs: {exc}") from None
    quotes = {split_pair(p)[1] for p in parsed}
    if len(quotes) > 1:
        raise ConfigError(f"pairs: all pairs must share one quote currency (one account, one "
                          f"equity); got {', '.join(sorted(quotes))}")
    if replay:
        replay_pairs = {p for p, _ in replay}
        if replay_pairs != set(parsed):
            files_for = ", ".join(sorted(replay_pairs))
            raise ConfigError(f"replay: give exactly one file per pair; pairs "
                              f"{', '.join(parsed)} but files for {files_for}")
        for pair, path in replay:
            if not Path(path).is_file():
                problem = "is a folder" if Path(path).is_dir() else "does not exist"
                raise ConfigError(f"replay: file {path!r} for {pair} {problem}")
            try:
                validate_csv(path)
            except FeedError as exc:
                raise ConfigError(f"replay: {exc}") from None
    return parsed


def validate_strategy(spec: StrategySpec) -> None:
    """Build the strategy once, so a bad path or parameter fails before anything starts."""
    from strategies.base import StrategyError
    from strategies.registry import check_strategy

    try:
        check_strategy(spec)  # in this process: an isolated strategy starts no child here
    except StrategyError as exc:
        raise ConfigError(f"strategy: {exc}") from None
