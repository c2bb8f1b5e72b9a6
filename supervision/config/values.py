"""One value checked: the error every config problem raises, and the number checks that all
sections use."""

from __future__ import annotations

import math
from typing import Any


class ConfigError(ValueError):
    """A configuration that cannot run; the message says what and what would be valid."""


def is_number(value: Any) -> bool:
    """An int or float that is not a bool (TOML's ``true`` is no number of seconds)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def positive(key: str, value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: {value!r} is not a number") from None
    if not number > 0 or math.isinf(number):
        raise ConfigError(f"{key}: {value!r} must be a positive number")
    return number



def port(key: str, value: Any) -> int:
    """A TCP port: 1-65535, or 0 for any free one."""
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535):
        raise ConfigError(f"{key}: {value!r} is not a port; use an integer from 1 to "
                          "65535, or 0 for any free port")
    return value
