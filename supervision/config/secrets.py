"""Secrets kept in files: a TOML file only its owner can read (API keys, the API token, a bot
token). Read once, at start, on the starting thread; problems raise ``ConfigError``."""

from __future__ import annotations

import os
import stat
import tomllib
from typing import Any

from supervision.config.values import ConfigError


def read_private_toml(path: str, what: str) -> dict[str, Any]:
    """A TOML file that holds secrets: it must exist and be readable by its owner only.

    Raises:
        ConfigError: naming ``what`` (the config key) and the ``chmod`` that fixes a file
            others can read; never a value from the file.
    """
    path = os.path.expanduser(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(f"{what} {path!r} cannot be read: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{what} {path!r} is readable by group or others (mode "
                          f"{stat.S_IMODE(mode):o}); run: chmod 600 {path}")
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{what} {path!r} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message quotes no values, only where the syntax broke.
        raise ConfigError(f"{what} {path!r} is not valid TOML: {exc}") from None
