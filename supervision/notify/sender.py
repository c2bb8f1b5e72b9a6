"""``Sender``: one channel's queue and the thread that empties it, with retries.

The publishing actor's thread only calls ``offer``: a non-blocking put into a bounded queue;
when the queue is full the alert is dropped and counted, never waited for. The sender's own
daemon thread formats each event, POSTs it (``timeout_s`` per request) and retries a failure
that may pass (no answer, a timeout, 5xx, 429) with exponential backoff from
``backoff_initial_s`` to ``backoff_max_s``, never sooner than a ``Retry-After``; after
``retries`` retries, or on any other 4xx, it gives the alert up (counted as failed, one
warning naming the channel and the status, never the address). ``close`` stops the thread
between requests and waits at most ``CLOSE_S``: a server that hangs holds up at most its own
request's timeout on a thread nobody waits for, so neither trading nor ``stop`` ever waits.
"""

from __future__ import annotations

import email.utils
import json
import queue
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from loguru import logger

from supervision.config import NotifySettings
from supervision.notify.channels import Channel, Request

CLOSE_S = 0.5
MAX_RETRY_AFTER_S = 3600.0


class SendError(Exception):
    """A request that did not get a 2xx answer; ``retry_after`` when the server set one."""

    def __init__(self, reason: str, *, retriable: bool, retry_after: float | None = None):
        super().__init__(reason)
        self.retriable = retriable
        self.retry_after = retry_after


def post(request: Request, timeout: float) -> Any:
    """POST ``request.body`` as JSON; the decoded JSON answer (or None).

    Raises:
        SendError: saying whether a retry may pass; never quoting the address.
    """
    if not request.url.startswith(("http://", "https://")):
        raise SendError("the address is not http(s)", retriable=False)
    data = json.dumps(request.body, separators=(",", ":")).encode()
    http = urllib.request.Request(request.url, data=data, method="POST",  # noqa: S310 - http(s)
                                  headers={"Content-Type": "application/json",
                                           "User-Agent": "trade-conductor"})
    try:
        with urllib.request.urlopen(http, timeout=timeout) as answer:  # noqa: S310 - http(s)
            raw = answer.read()
    except urllib.error.HTTPError as exc:
        status = exc.code
        retry_after = retry_after_s(exc.headers.get("Retry-After"))
        raise SendError(f"HTTP {status}", retriable=status == 429 or status >= 500,
                        retry_after=retry_after) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SendError(f"no answer ({type(reason).__name__})", retriable=True) from None
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(MAX_RETRY_AFTER_S, seconds))


class Sender:
    """One channel's queue and thread; see the module docstring."""

    def __init__(self, channel: Channel, settings: NotifySettings, *,
                 format_event: Callable[[int, object], dict[str, Any]],
                 on_result: Callable[[str, str], None] = lambda channel, result: None) -> None:
        self.channel = channel
        self.settings = settings
        self.format_event = format_event
        self.on_result = on_result
        """Called with (channel name, ``sent`` | ``failed`` | ``dropped``)."""
        self.queue: queue.Queue[tuple[int, object] | Request] = queue.Queue(settings.queue_size)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"notify-{channel.name}",
                                        daemon=True)

    def start(self) -> Sender:
        self._thread.start()
        return self

    def offer(self, item: tuple[int, object] | Request) -> bool:
        """Queue an event (``(seq, event)``) or a ready request; False (dropped) when full."""
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            self.on_result(self.channel.name, "dropped")
            return False
        return True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(CLOSE_S)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                request = item if isinstance(item, Request) else \
                    self.channel.request(self.format_event(*item))
            except Exception:  # noqa: BLE001 - one bad alert must not end the sender
                logger.exception("notify {}: cannot format an alert", self.channel.name)
                continue
            self._deliver(request)

    def _deliver(self, request: Request) -> None:
        settings = self.settings
        for attempt in range(settings.retries + 1):
            try:
                post(request, settings.timeout_s)
            except SendError as exc:
                if not exc.retriable or attempt == settings.retries or self._stop.is_set():
                    self.failed += 1
                    self.on_result(self.channel.name, "failed")
                    logger.warning("notify {}: alert not delivered ({}{})", self.channel.name,
                                   exc, "" if exc.retriable else ", not retried")
                    return
                step = min(settings.backoff_max_s, settings.backoff_initial_s * 2 ** attempt)
                delay = random.uniform(step / 2, step)
                if exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                logger.debug("notify {}: {}; retry in {:.2f} s", self.channel.name, exc, delay)
                if self._stop.wait(delay):
                    return
                continue
            self.sent += 1
            self.on_result(self.channel.name, "sent")
            return
