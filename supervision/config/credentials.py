"""API keys for live orders: from the environment or a private secrets file, never the config.

``load_credentials`` looks for ``CONDUCTOR_<EXCHANGE>_API_KEY``, ``..._SECRET`` and
``..._PASSWORD`` (``<EXCHANGE>`` is the ccxt id upper-cased, anything not a letter or digit
as ``_``), then for ``[exchange] secrets_file``, a TOML file with ``api_key``, ``secret`` and
``password``. The file must not be readable by group or others; otherwise the run is refused
with the ``chmod`` that fixes it. A half-given set (a key without its secret) is an error,
never a silent fallback. Messages name variables and files, never a key's value.

Runs once, at start, on the starting thread. Raises ``ConfigError`` (the CLI exits 2).
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from typing import Any

from actors.exchange import Credentials, env_prefix
from supervision.config.values import ConfigError

FILE_KEYS = ("api_key", "secret", "password")


def load_credentials(exchange_id: str, settings: Any,
                     environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The keys for ``exchange_id``, or None where none are given.

    Args:
        settings: ``ExchangeSettings`` (its ``secrets_file``).
        environ: the environment (default ``os.environ``).

    Raises:
        ConfigError: a half-given set, an unreadable or malformed secrets file, or one that
            group or others can read.
    """
    env = os.environ if environ is None else environ
    prefix = env_prefix(exchange_id)
    key, secret, password = (env.get(prefix + n, "") for n in ("API_KEY", "SECRET", "PASSWORD"))
    if key or secret:
        if not (key and secret):
            missing = prefix + ("SECRET" if key else "API_KEY")
            raise ConfigError(f"{missing} is not set: live orders need both "
                              f"{prefix}API_KEY and {prefix}SECRET")
        return Credentials(api_key=key, secret=secret, password=password)
    path = getattr(settings, "secrets_file", None)
    if not path:
        return None
    return _from_file(os.path.expanduser(str(path)))


def require_credentials(exchange_id: str, settings: Any,
                        environ: Mapping[str, str] | None = None) -> Credentials:
    """``load_credentials`` for ``--live``, which cannot run without keys.

    Raises:
        ConfigError: no keys anywhere (the message says where to put them), or as above.
    """
    found = load_credentials(exchange_id, settings, environ)
    if found is None:
        prefix = env_prefix(exchange_id)
        raise ConfigError(
            f"--live on {exchange_id} needs API keys: set {prefix}API_KEY and {prefix}SECRET "
            f"(and {prefix}PASSWORD where the exchange has one), or [exchange] secrets_file = "
            "a TOML file with api_key and secret (chmod 600)")
    return found


def read_private_toml(path: str, key: str) -> dict[str, Any]:
    """The TOML table in the secrets file ``path`` (named ``key`` in messages).

    Raises:
        ConfigError: the file cannot be read, is not TOML, or group or others can read it.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(f"{key} {path!r} cannot be read: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{key} {path!r} is readable by group or others (mode "
            f"{stat.S_IMODE(mode):o}); run: chmod 600 {path}")
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{key} {path!r} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message quotes no values, only where the syntax broke.
        raise ConfigError(f"{key} {path!r} is not valid TOML: {exc}") from None


def _from_file(path: str) -> Credentials:
    data = read_private_toml(path, "exchange.secrets_file")
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise ConfigError(f"exchange.secrets_file {path!r}: unknown key(s) "
                          f"{', '.join(unknown)}; expected {', '.join(FILE_KEYS)}")
    values = {}
    for name in FILE_KEYS:
        value = data.get(name, "")
        if not isinstance(value, str):
            raise ConfigError(f"exchange.secrets_file {path!r}: {name} must be a string")
        values[name] = value
    if not (values["api_key"] and values["secret"]):
        missing = "secret" if values["api_key"] else "api_key"
        raise ConfigError(f"exchange.secrets_file {path!r} has no {missing}: live orders "
                          "need api_key and secret")
    return Credentials(api_key=values["api_key"], secret=values["secret"],
                       password=values["password"])
