"""``[state]``: where the trading state lives (an SQLite file or a PostgreSQL database) and
where the database password comes from.

The location is ``--state-db``, else ``[state] url``, else the top-level ``state_db`` of the
file, else ``var/trade-conductor.sqlite``; a path means SQLite, a ``postgresql://`` URL a
server (``actors.state.location`` tells them apart, and refuses a scheme it does not serve or
a password in the URL). The password is read at start, never stored in the config:
``CONDUCTOR_DB_PASSWORD``, else ``[state] secrets_file`` (a TOML file with ``password``, which
group and others must not read), else none (libpq's ``~/.pgpass`` still applies). Messages
name variables and files, never the password.

Runs on the starting thread. Raises ``ConfigError`` (the CLI exits 2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs

from actors.state import StateLocation, StateLocationError, parse_location
from supervision.config.secrets import read_private_toml
from supervision.config.values import ConfigError

PASSWORD_ENV = "CONDUCTOR_DB_PASSWORD"  # noqa: S105 - the variable's name, not a password
STATE_KEYS = ("url", "secrets_file")


@attrs.frozen(kw_only=True)
class StateSettings:
    """The ``[state]`` table beside the location itself (``SystemConfig.state_db``)."""

    secrets_file: str | None = None
    """A TOML file (chmod 600) with ``password = "..."`` for the database login."""


def state_from(table: Any, file_state_db: Any, cli_state_db: Any,
               default: str) -> tuple[str, StateSettings]:
    """The checked location and ``[state]`` settings.

    Raises:
        ConfigError: an unknown key, a location that names no database we serve, a folder
            for an SQLite file, or the location given twice in the file.
    """
    table = {} if table is None else table
    if not isinstance(table, Mapping):
        raise ConfigError(f"[state] must be a table, got {table!r}")
    unknown = sorted(set(table) - set(STATE_KEYS))
    if unknown:
        raise ConfigError(f"[state] unknown key {unknown[0]!r}; valid keys: "
                          f"{', '.join(STATE_KEYS)}")
    if table.get("url") is not None and file_state_db is not None:
        raise ConfigError("state_db and [state] url both name the state database; keep one")
    secrets = table.get("secrets_file")
    if secrets is not None and (not isinstance(secrets, str) or not secrets.strip()):
        raise ConfigError(f"state.secrets_file: {secrets!r} is not a file name")
    chosen = next((v for v in (cli_state_db, table.get("url"), file_state_db) if v is not None),
                  default)
    if not isinstance(chosen, str):
        raise ConfigError(f"state_db: {chosen!r} is not a path or a URL")
    location = check_location(chosen)
    if not location.is_postgresql and os.path.isdir(location.path):
        raise ConfigError(f"state_db: {chosen!r} is a folder; give a file name")
    return chosen, StateSettings(secrets_file=secrets)


def check_location(text: str) -> StateLocation:
    """``text`` parsed as a state database location, or a ``ConfigError`` naming ``state_db``."""
    try:
        return parse_location(text)
    except StateLocationError as exc:
        raise ConfigError(f"state_db: {exc}") from None


def load_db_password(settings: StateSettings,
                     environ: Mapping[str, str] | None = None) -> str | None:
    """The database password: ``CONDUCTOR_DB_PASSWORD``, else the secrets file, else None.

    Raises:
        ConfigError: the secrets file cannot be read, is open to others, or is malformed.
    """
    env = os.environ if environ is None else environ
    if env.get(PASSWORD_ENV):
        return env[PASSWORD_ENV]
    if not settings.secrets_file:
        return None
    path = os.path.expanduser(settings.secrets_file)
    data = read_private_toml(path, "state.secrets_file")
    unknown = sorted(set(data) - {"password"})
    if unknown:
        raise ConfigError(f"state.secrets_file {path!r}: unknown key(s) {', '.join(unknown)}; "
                          "expected password")
    password = data.get("password")
    if not isinstance(password, str) or not password:
        raise ConfigError(f"state.secrets_file {path!r}: password must be a non-empty string")
    return password
