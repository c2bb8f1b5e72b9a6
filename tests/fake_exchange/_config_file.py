"""``to_toml``: a config file for a system run as a subprocess against the fake.

The ccxt table that points a client at the fake (``FakeBinance.ccxt_config``) is nested
dicts of strings, numbers and booleans; the standard library reads TOML but does not write
it, and this is all a test or the chaos bench needs to write.
"""

from __future__ import annotations

import json
from typing import Any


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """TOML for nested tables of strings, numbers, booleans and lists of them."""
    scalars, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            scalars.append(f"{json.dumps(key)} = {_value(value)}")
    out = ""
    if prefix and scalars:
        out += f"[{prefix}]\n"
    out += "".join(line + "\n" for line in scalars)
    for key, value in tables:
        out += to_toml(value, f"{prefix}.{json.dumps(key)}" if prefix else json.dumps(key))
    return out


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value)
