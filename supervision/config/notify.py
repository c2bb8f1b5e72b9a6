"""``[notify]``: where alerts go (``supervision.notify``): a JSON webhook, a Telegram chat, a
Discord channel, each with a least level and an optional list of event kinds.

Only values live here. The Telegram bot token and the Discord webhook address are secrets
(whoever has them can post as the bot): they come from the environment or ``secrets_file`` at
start (``supervision.notify.channels``), never from this table. Checked once, on the starting
thread; problems raise ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from supervision.config.values import ConfigError, is_number

LEVELS = ("debug", "info", "warning", "critical")
"""Event levels, least first; a channel sends its level and above."""
CHANNELS = ("webhook", "telegram", "discord")
EVENT_KINDS = ("fill", "order", "trade", "rejected", "signal", "swap", "rollback", "restart",
               "service_restarted", "pair_failed", "pair_added", "pair_removed", "halt",
               "stale", "failure", "audit")
"""What the event stream and the notifiers call each event (``supervision.api.journal``)."""
TELEGRAM_API = "https://api.telegram.org"


@attrs.frozen(kw_only=True)
class ChannelSettings:
    """One destination: ``webhook`` (``url``), ``telegram`` (``chat_id``) or ``discord``."""

    kind: str
    level: str = "info"
    events: tuple[str, ...] = ()
    """Only these kinds (none: every kind at ``level`` or above)."""
    url: str = ""
    """The webhook's address (``webhook``); Discord's comes from the secrets."""
    chat_id: str = ""
    api_url: str = TELEGRAM_API
    """Telegram's Bot API root (a local Bot API server, or a test's fake)."""
    commands: bool = False
    """Telegram: obey /status, /pause PAIR, /resume PAIR, /halt from ``chat_id``."""

    def wants(self, kind: str, level: str) -> bool:
        if self.events:
            return kind in self.events
        return LEVELS.index(level) >= LEVELS.index(self.level)


@attrs.frozen(kw_only=True)
class NotifySettings:
    """The ``[notify]`` table."""

    channels: tuple[ChannelSettings, ...] = ()
    queue_size: int = 1000
    """Alerts waiting per channel; more are dropped and counted, never waited for."""
    timeout_s: float = 5.0
    """One HTTP request's limit."""
    retries: int = 4
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    """Retries back off exponentially between these (never sooner than a ``Retry-After``)."""
    secrets_file: str | None = None
    """A TOML file (chmod 600) with ``telegram_token`` and ``discord_webhook``."""


_COMMON = ("level", "events")
_CHANNEL_KEYS = {"webhook": (*_COMMON, "url"),
                 "telegram": (*_COMMON, "chat_id", "api_url", "commands"),
                 "discord": _COMMON}
_SECRETS = {"telegram": ("token", "CONDUCTOR_TELEGRAM_TOKEN"),
            "discord": ("url", "CONDUCTOR_DISCORD_WEBHOOK")}
NOTIFY_KEYS = ("level", "queue_size", "timeout_s", "retries", "backoff_initial_s",
               "backoff_max_s", "secrets_file", *CHANNELS)


def notify_settings_from(table: Any) -> NotifySettings:
    """Validate the ``[notify]`` table."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"[notify] must be a table, e.g. [notify.webhook] url = \"...\"; "
                          f"got {table!r}")
    unknown = sorted(set(table) - set(NOTIFY_KEYS))
    if unknown:
        raise ConfigError(f"[notify] unknown key {unknown[0]!r}; valid keys: "
                          f"{', '.join(NOTIFY_KEYS)}")
    level = _level("notify.level", table.get("level", "info"))
    out: dict[str, Any] = {}
    for key, low in (("queue_size", 1), ("retries", 0)):
        if key in table:
            value = table[key]
            if not (is_number(value) and float(value).is_integer() and value >= low):
                raise ConfigError(f"notify.{key}: {value!r} is not a whole number >= {low}")
            out[key] = int(value)
    for key in ("timeout_s", "backoff_initial_s", "backoff_max_s"):
        if key in table:
            value = table[key]
            if not (is_number(value) and 0 < value <= 3600):
                raise ConfigError(f"notify.{key}: {value!r} is not a number of seconds from "
                                  "0 to 3600")
            out[key] = float(value)
    if "secrets_file" in table:
        path = table["secrets_file"]
        if not isinstance(path, str) or not path.strip():
            raise ConfigError(f"notify.secrets_file: {path!r} is not a file name")
        out["secrets_file"] = path
    out["channels"] = tuple(_channel(kind, table[kind], level)
                            for kind in CHANNELS if kind in table)
    settings = NotifySettings(**out)
    if settings.backoff_initial_s > settings.backoff_max_s:
        raise ConfigError(f"notify.backoff_initial_s: {settings.backoff_initial_s!r} is above "
                          f"notify.backoff_max_s ({settings.backoff_max_s!r})")
    return settings


def _channel(kind: str, table: Any, level: str) -> ChannelSettings:
    where = f"notify.{kind}"
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{where}] must be a table; got {table!r}")
    secret = _SECRETS.get(kind)
    if secret is not None and secret[0] in table:
        raise ConfigError(f"{where}.{secret[0]}: a secret never goes in the config file; set "
                          f"{secret[1]} or put {kind}_{secret[0]} in notify.secrets_file "
                          "(chmod 600)")
    unknown = sorted(set(table) - set(_CHANNEL_KEYS[kind]))
    if unknown:
        raise ConfigError(f"[{where}] unknown key {unknown[0]!r}; valid keys: "
                          f"{', '.join(_CHANNEL_KEYS[kind])}")
    values: dict[str, Any] = {"kind": kind, "level": _level(f"{where}.level",
                                                            table.get("level", level))}
    events = table.get("events", [])
    if not (isinstance(events, list | tuple) and all(e in EVENT_KINDS for e in events)):
        raise ConfigError(f"{where}.events: {events!r} is not a list of event kinds from "
                          f"{', '.join(EVENT_KINDS)}")
    values["events"] = tuple(events)
    for key in ("url", "chat_id", "api_url"):
        if key in table:
            text = table[key]
            if isinstance(text, int) and not isinstance(text, bool) and key == "chat_id":
                text = str(text)
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"{where}.{key}: {text!r} is empty or not a string")
            if key != "chat_id" and not text.startswith(("http://", "https://")):
                raise ConfigError(f"{where}.{key}: {text!r} is not an http(s) address")
            values[key] = text.strip()
    if kind == "webhook" and not values.get("url"):
        raise ConfigError(f"[{where}] needs url = \"https://...\" (where the JSON is posted)")
    if kind == "telegram" and not values.get("chat_id"):
        raise ConfigError(f"[{where}] needs chat_id (the chat the bot writes to and takes "
                          "commands from)")
    if "commands" in table:
        if not isinstance(table["commands"], bool):
            raise ConfigError(f"{where}.commands: {table['commands']!r} is not one of true, "
                              "false")
        values["commands"] = table["commands"]
    return ChannelSettings(**values)


def _level(key: str, value: Any) -> str:
    if value not in LEVELS:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(LEVELS)}")
    return str(value)
