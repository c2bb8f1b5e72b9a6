"""``[strategy]``: which strategy a pair trades, as a spec proven buildable before anything
starts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actors.messages import StrategySpec
from supervision.config.values import ConfigError, is_number


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
    if not is_number(value):
        raise ConfigError(f"[{where}] weight = {value!r} is not a number; e.g. weight = 2.0")
    return float(value)



def validate_strategy(spec: StrategySpec) -> None:
    """Build the strategy once, so a bad path or parameter fails before anything starts."""
    from strategies.base import StrategyError
    from strategies.registry import check_strategy

    try:
        check_strategy(spec)  # in this process: an isolated strategy starts no child here
    except StrategyError as exc:
        raise ConfigError(f"strategy: {exc}") from None
