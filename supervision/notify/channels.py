"""Where an alert goes and what it looks like there: a JSON webhook, a Telegram chat, a Discord
channel.

A ``Channel`` turns one event into one HTTP request (address, JSON body); it holds the
channel's secret (the bot token, the Discord webhook address) and never shows it: ``name`` is
what logs and metrics say. Secrets are read once at start on the starting thread, from the
environment or ``[notify] secrets_file``; a configured channel without its secret raises
``ConfigError`` (the run does not start). Formatting runs on the channel's sender thread.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs

from supervision.config import ChannelSettings, ConfigError, NotifySettings, read_private_toml

TELEGRAM_TOKEN_ENV = "CONDUCTOR_TELEGRAM_TOKEN"  # noqa: S105 - a variable's name
DISCORD_WEBHOOK_ENV = "CONDUCTOR_DISCORD_WEBHOOK"
WEBHOOK_URL_ENV = "CONDUCTOR_WEBHOOK_URL"
SECRET_FILE_KEYS = ("telegram_token", "discord_webhook")


@attrs.frozen(kw_only=True)
class Request:
    url: str = attrs.field(repr=False)
    body: dict[str, Any]


class Channel:
    """One destination; subclasses say how an event is written there."""

    kind = "channel"

    def __init__(self, settings: ChannelSettings) -> None:
        self.settings = settings
        self.name = settings.kind

    def wants(self, kind: str, level: str) -> bool:
        return self.settings.wants(kind, level)

    def request(self, entry: dict[str, Any]) -> Request:
        """The HTTP request for one event (``supervision.api.events.event_json``)."""
        raise NotImplementedError

    def text(self, entry: dict[str, Any]) -> str:
        mark = {"critical": "🚨 ", "warning": "⚠️ "}.get(entry["level"], "")
        return f"{mark}trade-conductor: {entry['text']}"


class WebhookChannel(Channel):
    """POSTs the event as the stream shows it, plus a one-line ``text``."""

    def __init__(self, settings: ChannelSettings, url: str) -> None:
        super().__init__(settings)
        self._url = url

    def request(self, entry: dict[str, Any]) -> Request:
        return Request(url=self._url, body={**entry, "text": self.text(entry)})


class TelegramChannel(Channel):
    """``sendMessage`` to ``chat_id`` through the Bot API."""

    def __init__(self, settings: ChannelSettings, token: str) -> None:
        super().__init__(settings)
        self._token = token

    def method_url(self, method: str) -> str:
        return f"{self.settings.api_url.rstrip('/')}/bot{self._token}/{method}"

    def request(self, entry: dict[str, Any]) -> Request:
        return self.message(self.text(entry))

    def message(self, text: str) -> Request:
        return Request(url=self.method_url("sendMessage"),
                       body={"chat_id": self.settings.chat_id, "text": text[:4000],
                             "disable_web_page_preview": True})


class DiscordChannel(Channel):
    """A message through an incoming webhook (no mentions: an alert pings nobody)."""

    def __init__(self, settings: ChannelSettings, url: str) -> None:
        super().__init__(settings)
        self._url = url

    def request(self, entry: dict[str, Any]) -> Request:
        return Request(url=self._url, body={"content": self.text(entry)[:1900],
                                            "allowed_mentions": {"parse": []}})


def build_channels(settings: NotifySettings,
                   environ: Mapping[str, str] | None = None) -> list[Channel]:
    """The configured channels with their secrets.

    Raises:
        ConfigError: a channel's secret is in neither the environment nor the secrets file,
            or the secrets file is unreadable, readable by others, or has unknown keys.
    """
    env = os.environ if environ is None else environ
    secrets: dict[str, Any] = {}
    if settings.secrets_file:
        secrets = read_private_toml(settings.secrets_file, "notify.secrets_file")
        unknown = sorted(set(secrets) - set(SECRET_FILE_KEYS))
        if unknown:
            raise ConfigError(f"notify.secrets_file {settings.secrets_file!r}: unknown key "
                              f"{unknown[0]!r}; expected {', '.join(SECRET_FILE_KEYS)}")
    out: list[Channel] = []
    for channel in settings.channels:
        if channel.kind == "webhook":
            out.append(WebhookChannel(channel, env.get(WEBHOOK_URL_ENV) or channel.url))
        elif channel.kind == "telegram":
            token = env.get(TELEGRAM_TOKEN_ENV) or secrets.get("telegram_token")
            out.append(TelegramChannel(channel, _secret(token, "telegram_token",
                                                        TELEGRAM_TOKEN_ENV)))
        else:
            url = env.get(DISCORD_WEBHOOK_ENV) or secrets.get("discord_webhook")
            out.append(DiscordChannel(channel, _secret(url, "discord_webhook",
                                                       DISCORD_WEBHOOK_ENV)))
    return out


def _secret(value: Any, key: str, env: str) -> str:
    if not isinstance(value, str) or not value.strip():
        kind = key.split("_", maxsplit=1)[0]
        raise ConfigError(f"[notify.{kind}] is configured but has no {key}: set {env}, or put "
                          f"{key} = \"...\" in notify.secrets_file (chmod 600)")
    return value.strip()
