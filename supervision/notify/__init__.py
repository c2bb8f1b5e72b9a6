"""Alerts: the system's events out to a JSON webhook, Telegram and Discord, and Telegram
commands in.

``channels`` says where and how an alert is written (and holds the secrets), ``sender`` queues
and sends one channel's alerts on its own thread with retries, ``notifier`` ties them to the
system's events and reads Telegram commands. Nothing here can slow or stop trading.
"""

from supervision.notify.channels import build_channels
from supervision.notify.notifier import Notifier
from supervision.notify.sender import Sender, post, retry_after_s

__all__ = [
    "Notifier",
    "Sender",
    "build_channels",
    "post",
    "retry_after_s",
]
