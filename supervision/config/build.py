"""The system's configuration: frozen values built from TOML and CLI flags, validated once.

Everything a run needs is checked here, before any actor, thread or file exists: pairs,
strategy (it is built once to prove it can be), exchange id, replay files, numbers. Each
problem raises one ``ConfigError`` whose message names the key, the bad value and the valid
choices; the CLI prints it and exits 2.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from actors.execution import PaperConfig
from actors.market import FeedError, validate_csv
from actors.messages import OrderType, StrategySpec
from actors.pair import ExitRules
from actors.pairs import PairError, parse_pair_list, split_pair
from actors.risk import RiskConfig
from supervision.config.api import api_settings_from
from supervision.config.cluster import cluster_config_from, cluster_table
from supervision.config.exchange import (
    SIM,
    exchange_settings_from,
    exchange_table,
    validate_exchange,
)
from supervision.config.notify import notify_settings_from
from supervision.config.restart import RestartPolicy
from supervision.config.state import state_from
from supervision.config.strategy import strategy_spec_from, validate_strategy
from supervision.config.system import DEFAULT_STATE_DB, LOG_LEVELS, SystemConfig
from supervision.config.values import ConfigError, port, positive

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
    "api", "notify", "cluster", "state",
)


def _pair_workers(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 256:
        raise ConfigError(f"pair_workers: {value!r} must be a whole number from 0 (a thread "
                          "per pair) to 256; the default, 4, suits most machines")
    return value


def _gil_switch_ms(value: Any) -> float | None:
    if value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    number = positive("gil_switch_ms", value)
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
                                                if v is not None and k != "cluster"}}
    kwargs: dict[str, Any] = {}

    table = exchange_table(file_values.get("exchange", SIM), overrides)
    kwargs["exchange"] = validate_exchange(str(table.pop("id", SIM)))
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
        kwargs["duration"] = positive("duration", merged["duration"])
    for key in ("status_interval", "tick_interval_ms"):
        if key in merged:
            kwargs[key] = positive(key, merged[key])
    for key in ("warmup_ticks", "history_size", "max_inflight_ticks"):
        if key in merged:
            number = positive(key, merged[key])
            if not number.is_integer():
                raise ConfigError(f"{key}: {merged[key]!r} must be a positive integer")
            kwargs[key] = int(number)
    if merged.get("initial_balance") is not None:
        kwargs["initial_balance"] = positive("initial_balance", merged["initial_balance"])
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
    kwargs["state_db"], kwargs["state_settings"] = state_from(
        file_values.get("state"), file_values.get("state_db"), overrides.get("state_db"),
        DEFAULT_STATE_DB)
    if merged.get("summary_json") is not None:
        summary = kwargs["summary_json"] = str(merged["summary_json"])
        if not summary.strip():
            raise ConfigError(f"summary_json: {summary!r} is an empty path; give a file name")
        if os.path.isdir(summary):
            raise ConfigError(f"summary_json: {summary!r} is a folder; give a file name")
    if merged.get("metrics_port") is not None:
        kwargs["metrics_port"] = port("metrics_port", merged["metrics_port"])
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
    # Sections given as a table in the overrides (embedding) replace the file's.
    kwargs["api"] = api_settings_from(merged.get("api", {}), overrides)
    if merged.get("notify") is not None:
        kwargs["notify"] = notify_settings_from(merged["notify"])
    cluster = cluster_table(file_values.get("cluster"), overrides.get("cluster"))
    if cluster is not None:
        kwargs["cluster"] = cluster_config_from(cluster, kwargs["pairs"])
    return SystemConfig(**kwargs)



def _validate_pairs(pairs: Any, replay: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
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


