"""``[api]``: the HTTP API and dashboard (``supervision.api``), off unless a port is given.

Only values live here; the token itself is read at start (``supervision.api.auth``), from the
environment, ``secrets_file`` or a generated file, so that it never sits in a config value
that could be printed. Checked once, on the starting thread; problems raise ``ConfigError``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any

import attrs

from actors.messages import StrategySpec
from supervision.config.values import ConfigError, is_number, port

DEFAULT_TOKEN_FILE = os.path.join("var", "api-token")
LOOPBACK_NAMES = ("localhost",)


@attrs.frozen(kw_only=True)
class ApiSettings:
    """The ``[api]`` table."""

    port: int | None = None
    """Serve the API and the dashboard on this port (0: any free one); None: off."""
    host: str = "127.0.0.1"
    """Where to listen; anything but a loopback address needs a token given by the operator
    (``CONDUCTOR_API_TOKEN`` or ``secrets_file``), not a generated one."""
    token_file: str = DEFAULT_TOKEN_FILE
    """Where a generated token is kept (mode 600), when none is given."""
    secrets_file: str | None = None
    """A TOML file with ``token = "..."`` that only its owner can read."""
    cors_origins: tuple[str, ...] = ()
    """Origins a browser may call the API from; none: same origin only (CORS off)."""
    allowed_strategies: tuple[str, ...] = ()
    """``package.module:ClassName`` strategies a request may swap in, beside the built-ins and
    the configured strategy. A path from a request is never imported otherwise."""
    max_body_bytes: int = 16_384
    """Larger request bodies are refused with 413 before they are read."""
    event_replay: int = 1000
    """Events kept for clients that reconnect and ask for what they missed."""
    status_interval_s: float = 1.0
    """How often the event stream sends a status snapshot (the dashboard's live table)."""
    cpus: tuple[int, ...] = ()
    """CPUs the API process runs on; the trading process then keeps to the others
    (``actors.cpus``). Empty (the default): neither is pinned."""

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


API_KEYS = tuple(f.name for f in attrs.fields(ApiSettings))


def api_settings_from(table: Any, overrides: Mapping[str, Any]) -> ApiSettings:
    """Validate ``[api]`` with ``--api-port`` and ``--api-host`` laid over it."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"[api] must be a table, e.g. [api] port = 8080; got {table!r}")
    values = dict(table)
    for key in ("port", "host"):
        if overrides.get(f"api_{key}") is not None:
            values[key] = overrides[f"api_{key}"]
    unknown = sorted(set(values) - set(API_KEYS))
    if unknown:
        raise ConfigError(f"[api] unknown key {unknown[0]!r}; valid keys: {', '.join(API_KEYS)}")
    out: dict[str, Any] = {}
    if values.get("port") is not None:
        out["port"] = port("api.port", values["port"])
    for key in ("host", "token_file", "secrets_file"):
        if key in values:
            text = values[key]
            if not isinstance(text, str) or not text.strip():
                kind = "host" if key == "host" else "file name"
                raise ConfigError(f"api.{key}: {text!r} is not a {kind}")
            out[key] = text.strip()
    for key in ("cors_origins", "allowed_strategies"):
        if key in values:
            items = values[key]
            if not (isinstance(items, list | tuple) and all(isinstance(i, str) for i in items)):
                raise ConfigError(f"api.{key}: {items!r} is not a list of strings")
            out[key] = tuple(items)
    for origin in out.get("cors_origins", ()):
        if origin == "*" or not origin.startswith(("http://", "https://")):
            raise ConfigError(f"api.cors_origins: {origin!r} is not an origin such as "
                              "\"https://example.org\" (a wildcard is refused)")
    for path in out.get("allowed_strategies", ()):
        _check_strategy_path(path)
    for key, low, high in (("max_body_bytes", 256, 16 * 1024 * 1024),
                           ("event_replay", 1, 100_000)):
        if key in values:
            number = values[key]
            if not (is_number(number) and float(number).is_integer() and low <= number <= high):
                raise ConfigError(f"api.{key}: {number!r} is not a whole number from {low} "
                                  f"to {high}")
            out[key] = int(number)
    if "status_interval_s" in values:
        seconds = values["status_interval_s"]
        if not (is_number(seconds) and 0.05 <= seconds <= 60):
            raise ConfigError(f"api.status_interval_s: {seconds!r} is not a number of seconds "
                              "from 0.05 to 60")
        out["status_interval_s"] = float(seconds)
    if "cpus" in values:
        out["cpus"] = _cpus(values["cpus"])
    return ApiSettings(**out)


def _cpus(value: Any) -> tuple[int, ...]:
    """``[api] cpus``: distinct CPUs this process may use, leaving at least one to trading."""
    from actors import cpus

    if not cpus.supported():
        raise ConfigError("api.cpus: CPU pinning needs Linux; leave the key out here")
    usable = sorted(cpus.available())
    if not (isinstance(value, list | tuple) and value
            and all(isinstance(c, int) and not isinstance(c, bool) for c in value)
            and len(set(value)) == len(value)):
        raise ConfigError(f"api.cpus: {value!r} is not a list of distinct CPU numbers, e.g. "
                          f"[{usable[-1]}]; this machine offers {usable}")
    unknown = [c for c in value if c not in usable]
    if unknown:
        raise ConfigError(f"api.cpus: CPU {unknown[0]} is not one this process may use; "
                          f"choose from {usable}")
    if len(value) >= len(usable):
        raise ConfigError(f"api.cpus: {list(value)} leaves no CPU for trading; choose fewer "
                          f"of {usable}")
    return tuple(value)


def _check_strategy_path(path: str) -> None:
    from strategies.base import StrategyError
    from strategies.registry import resolve_strategy_class

    try:
        resolve_strategy_class(path)
    except StrategyError as exc:
        raise ConfigError(f"api.allowed_strategies: {exc}") from None


def strategy_allowed(spec: StrategySpec, allowed: tuple[str, ...]) -> str:
    """Why ``spec`` may not be swapped in from outside the process ("" if it may): every path
    in it (members of an aggregate or an isolation wrapper too) must be a built-in short name
    or one of ``allowed``. A ``package.module:Class`` path from a request would otherwise let
    whoever holds the token import code on the server."""
    from strategies.registry import BUILTIN_STRATEGIES, WRAPPERS

    def paths(s: StrategySpec) -> list[str]:
        return [s.path, *(p for member, _ in s.members for p in paths(member))]

    for path in paths(spec):
        if path not in BUILTIN_STRATEGIES and path not in WRAPPERS and path not in allowed:
            choices = ", ".join(dict.fromkeys([*sorted(BUILTIN_STRATEGIES), *allowed]))
            return (f"strategy {path!r} is not allowed here; allowed: {choices} (the operator "
                    "lists more in [api] allowed_strategies)")
    return ""
