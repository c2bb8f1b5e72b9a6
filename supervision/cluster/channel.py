"""The data path between the head and one shard: one TCP connection, batches both ways.

Ray places the shards and carries their rare calls (start, drain, report, fence, stop). What
the pairs and the head's actors say to each other goes over this connection instead: a Ray
call to an actor took 0.8-1.2 ms p50 and 1.5-2.8 ms p99 on the 2-core machine, a proposal's
round trip made two (the shard's long poll answering, the head's push), and its p99 was
5.3-9.5 ms against a 5 ms target.

The shard listens on its node's address (``ShardHello.host``) on a port the system picks, for
one connection. The head connects with the key it made for that shard incarnation
(``ShardSpec.link_key``, which reached the shard through Ray and is never logged);
``multiprocessing.connection``'s challenge refuses a client without the key before anything
it sends is unpickled. Batches are pickled ``Uplink`` and ``Downlink`` values, in order.

Liveness: each end sends at least every ``heartbeat_s`` (an empty batch if there is nothing
else), so silence means a shard or a head that is gone or cut off: the head's monitor gives
the shard up after ``shard_timeout_s``, and the shard's lease stops its trading after the same
time without a batch from the head. A connection that breaks (the shard's process died) is
reported to the head at once.
"""

from __future__ import annotations

import contextlib
import secrets
import select
import socket
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from typing import Any

from loguru import logger

KEY_BYTES = 32
POLL_S = 0.05
"""How often the head's reading thread looks up from an idle connection (held marks)."""
CONNECT_S = 5.0
"""Longest the head waits to reach a shard's host before it counts the shard lost."""
ACCEPT_POLL_S = 0.2
"""How often the shard's waiting for the head looks whether it was closed."""


def heartbeat_s(shard_timeout_s: float) -> float:
    """How often each end sends when it has nothing to say: four times per timeout, at most
    every half second."""
    return min(0.5, shard_timeout_s / 4)


def new_key() -> bytes:
    """A key for one shard incarnation's connection."""
    return secrets.token_bytes(KEY_BYTES)


def connect(host: str, port: int, key: bytes, timeout: float = CONNECT_S) -> Connection:
    """The head's end of a shard's connection, as ``multiprocessing.connection.Client``
    makes it but with a time limit on reaching the host (raises ``OSError``, ``TimeoutError``
    or ``multiprocessing.AuthenticationError``)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(None)
    conn = Connection(sock.detach())
    try:
        answer_challenge(conn, key)
        deliver_challenge(conn, key)
    except BaseException:
        conn.close()
        raise
    return conn


class ShardChannel:
    """The shard's end: accepts the head, hands what comes down to ``apply`` and sends what
    ``uplink`` returns whenever ``ready`` is set, and at least every ``heartbeat_s``."""

    def __init__(self, host: str, key: bytes, *, apply: Callable[[Any], None],
                 uplink: Callable[[], Any], ready: threading.Event, heartbeat_s: float,
                 name: str = "shard") -> None:
        self._socket = socket.create_server((host, 0))
        self.port: int = self._socket.getsockname()[1]
        self._key = key
        self._apply = apply
        self._uplink = uplink
        self._ready = ready
        self._heartbeat_s = heartbeat_s
        self._name = name
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        threading.Thread(target=self._accept, daemon=True, name=f"{name}-accept").start()

    def _accept(self) -> None:
        """Take connections until one answers the key's challenge (each on a thread of its
        own, so a client that never answers holds up nobody)."""
        listening = self._socket
        while not self._closed.is_set() and self._conn is None:
            try:
                if not select.select([listening], [], [], ACCEPT_POLL_S)[0]:
                    continue
                client, _ = listening.accept()
            except OSError:
                return  # closed
            client.setblocking(True)
            threading.Thread(target=self._challenge, args=(Connection(client.detach()),),
                             daemon=True, name=f"{self._name}-down").start()

    def _challenge(self, conn: Connection) -> None:
        try:
            deliver_challenge(conn, self._key)
            answer_challenge(conn, self._key)
        except Exception as exc:  # noqa: BLE001 - a wrong key or none: refuse it
            logger.warning("{}: refused a connection without the head's key ({})",
                           self._name, type(exc).__name__)
            conn.close()
            return
        with self._lock:
            if self._conn is not None or self._closed.is_set():
                conn.close()
                return
            self._conn = conn
        with contextlib.suppress(OSError):
            self._socket.close()
        threading.Thread(target=self._send, args=(conn,), daemon=True,
                         name=f"{self._name}-up").start()
        self._receive(conn)

    def _receive(self, conn: Connection) -> None:
        apply = self._apply
        while not self._closed.is_set():
            try:
                batch = conn.recv()
            except Exception:  # noqa: BLE001 - closed or broken: the lease decides
                return
            apply(batch)

    def _send(self, conn: Connection) -> None:
        ready, uplink = self._ready, self._uplink
        while not self._closed.is_set():
            ready.wait(self._heartbeat_s)
            ready.clear()
            try:
                conn.send(uplink())
            except Exception:  # noqa: BLE001 - closed or broken: the head sees it too
                return

    def close(self) -> None:
        self._closed.set()
        self._ready.set()
        with contextlib.suppress(OSError):
            self._socket.close()
        with self._lock:
            conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
