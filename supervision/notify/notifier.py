"""``Notifier``: the system's events, filtered by level and kind, out to each alert channel;
Telegram commands in, from the configured chat only.

It listens to the facade's ``EventJournal`` (so alerts carry the event stream's sequence
numbers) and runs on the publishing actor's thread only for a dictionary lookup per channel
and a non-blocking put (``supervision.notify.sender``): sending, retrying and formatting
happen on each channel's own thread, so a slow, failing or hanging endpoint can neither slow
trading nor hold up ``stop``. Telegram commands (``/status``, ``/pause PAIR``, ``/resume
PAIR``, ``/halt [reason]``) are read by long polling on a thread of their own and call the
facade as ``telegram chat <id>`` (audited like any other caller); a message from any other
chat is ignored and logged without its text.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from loguru import logger
from prometheus_client import Counter

from supervision.api import kind_of, level_of
from supervision.config import NotifySettings
from supervision.notify.channels import Channel, Request, TelegramChannel, build_channels
from supervision.notify.sender import Sender, SendError, post

if TYPE_CHECKING:
    from supervision.system import TradingSystem

POLL_S = 20
"""How long one Telegram ``getUpdates`` waits for a message (long polling)."""
HELP = ("commands: /status, /pause PAIR, /resume PAIR, /halt [reason] "
        "(PAIR as BTC/USDT or BTC-USDT)")


def _format(seq: int, event: object) -> dict[str, Any]:
    from supervision.api import event_json

    formatted: dict[str, Any] = event_json(seq, event)
    return formatted


class Notifier:
    """Alerts of one system; see the module docstring.

    Raises:
        ConfigError: a channel's secret is missing (``supervision.notify.channels``).
    """

    def __init__(self, system: TradingSystem, settings: NotifySettings) -> None:
        self.system = system
        self.settings = settings
        self.channels: list[Channel] = build_channels(settings)
        self.counts = Counter("trade_conductor_notifications",
                              "Alerts per channel: sent, failed (given up after retries) or "
                              "dropped (the channel's queue was full)",
                              ["channel", "result"], registry=system.metrics.registry)
        self.senders = [Sender(c, settings, format_event=_format, on_result=self._count)
                        for c in self.channels]
        self._stop_listening: Any = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def _count(self, channel: str, result: str) -> None:
        self.counts.labels(channel, result).inc()

    def start(self) -> Notifier:
        for sender in self.senders:
            sender.start()
        self._stop_listening = self.system.journal.listen(self.on_event)
        for sender in self.senders:
            channel = sender.channel
            if isinstance(channel, TelegramChannel) and channel.settings.commands:
                self._poller = threading.Thread(target=self._poll, args=(sender,),
                                                name="notify-telegram-commands", daemon=True)
                self._poller.start()
        return self

    def on_event(self, seq: int, event: object) -> None:
        """On the publisher's thread: hand the event to each channel that wants it."""
        kind = kind_of(event)
        if kind is None:
            return
        level = level_of(event)
        for sender in self.senders:
            if sender.channel.wants(kind, level):
                sender.offer((seq, event))

    def close(self) -> None:
        """Stop listening and sending; waits at most half a second per channel."""
        self._stop.set()
        if self._stop_listening is not None:
            self._stop_listening()
        for sender in self.senders:
            sender.close()

    # -- Telegram commands -----------------------------------------------------------------------

    def _poll(self, sender: Sender) -> None:
        channel = sender.channel
        assert isinstance(channel, TelegramChannel)
        offset = 0
        failures = 0
        while not self._stop.is_set():
            try:
                answer = post(Request(url=channel.method_url("getUpdates"),
                                      body={"offset": offset, "timeout": POLL_S,
                                            "allowed_updates": ["message"]}),
                              self.settings.timeout_s + POLL_S)
                failures = 0
            except SendError as exc:
                failures += 1
                delay = min(self.settings.backoff_max_s,
                            self.settings.backoff_initial_s * 2 ** min(failures, 16))
                logger.debug("telegram commands: {}; again in {:.1f} s", exc, delay)
                self._stop.wait(exc.retry_after or delay)
                continue
            updates = answer.get("result", []) if isinstance(answer, dict) else []
            for update in updates:
                offset = max(offset, int(update.get("update_id", 0)) + 1)
                message = update.get("message") or {}
                chat = str((message.get("chat") or {}).get("id", ""))
                if chat != channel.settings.chat_id:
                    logger.warning("telegram: a command from chat {} ignored (only {} may "
                                   "command)", chat, channel.settings.chat_id)
                    continue
                sender.offer(channel.message(self.command(str(message.get("text", "")),
                                                          chat)))
            if not updates:
                self._stop.wait(0.2)  # a server that answers at once is not polled hot

    def command(self, text: str, chat: str) -> str:
        """Run one command from ``chat``; the reply's text."""
        words = text.strip().split()
        if not words:
            return HELP
        name = words[0].split("@", 1)[0].lower()
        by = f"telegram chat {chat}"
        system = self.system
        try:
            if name == "/status":
                return _status_text(system)
            if name in ("/pause", "/resume") and len(words) == 2:
                pair = words[1].upper().replace("-", "/")
                getattr(system, name[1:])(pair, by=by)
                return f"{pair} {name[1:]}d"
            if name == "/halt":
                status = system.halt_entries(" ".join(words[1:]), by=by)
                return f"new entries halted: {status.halt_reason}"
        except KeyError as exc:
            return str(exc.args[0]) if exc.args else "unknown pair"
        except Exception as exc:  # noqa: BLE001 - the chat gets the reason, the bot goes on
            return f"{name} failed: {exc}"
        return HELP


def _status_text(system: TradingSystem) -> str:
    status = system.status()
    lines = [f"{status.state}: equity {status.equity:,.2f} {status.quote}, realized "
             f"{status.realized_pnl:+,.2f}" + (f", HALTED ({status.halt_reason})"
                                               if status.halted else "")]
    lines += [f"{p.pair} {p.state} {p.price:,.8g} pos {p.position:g} "
              f"pnl {p.realized_pnl + p.unrealized_pnl:+,.2f}" for p in status.pairs]
    return "\n".join(lines)
