"""The API in a process of its own: ``ApiServer`` in the trading process, ``main`` in the API's.

Why: served on a thread of the trading process, 20 clients polling ``/status`` and 20 on the
event stream raised the pairs' tick -> decision p99 5.7x (``bench.api_load``; the target is
1.2x): every request's parsing, routing and encoding held the GIL the pairs wait for. In a
process of its own the web stack runs beside trading, not in its way. The trading process
keeps what must be there: the facade calls the routes make (``FACADE``, on ``CALL_THREADS``
threads; a status at most every ``STATUS_MAX_AGE_S`` however many clients poll) and the
journal's events, sent over in batches at most every ``FORWARD_EVERY_S``.

The pipe (a socket pair, ``multiprocessing.connection`` framing): the API process sends
``("call", id, name, args, kwargs)``, ``("serving",)`` and, every ``METRICS_EVERY_S``,
``("metrics", ...)``; the trading process sends ``("hello", ...)``, ``("start",)``,
``("result", id, ok, value)``, ``("events", entries)`` and ``("stop",)``. The listening socket
is bound and the token loaded here before any actor starts, so a port in use or a bad token
file fails the start (``ConfigError``); the API process inherits the socket and gets the token
over the pipe (never on its command line).

Failure: the API process dying leaves trading alone (an error is logged); the trading
process dying closes the pipe, and the API process ends. A call the trading process does not
answer within the system's ``ask_timeout`` (plus a margin) is a 504, as an actor's would be.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from loguru import logger

from actors import cpus
from supervision.api.auth import load_token
from supervision.api.journal import EventJournal
from supervision.config import ConfigError

if TYPE_CHECKING:
    from supervision.system import TradingSystem

FACADE = frozenset({
    "health", "status", "pair_status", "pair_names", "orders", "fills", "trades", "equity",
    "risk", "effective_config", "audit", "allowed_strategies", "add_pair", "remove_pair",
    "pause", "resume", "swap_strategy", "force_exit", "force_exit_all", "halt_entries",
    "resume_entries", "reset_halt", "record_audit",
})
"""The ``TradingSystem`` methods the API process may call (nothing else is looked up)."""
CALL_THREADS = 4
FORWARD_EVERY_S = 0.02
"""Events wait at most this long to be sent over with the ones that follow them."""
METRICS_EVERY_S = 1.0
START_S = 30.0
"""How long ``start`` waits for the API process to serve (its imports take about a second)."""
CLOSE_S = 3.0
CALL_MARGIN_S = 2.0
NICE = 10
"""The API process's niceness (``os.nice``): trading comes first on a busy machine."""


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (``ConfigError`` when the address cannot be had)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        raise ConfigError(f"api.port: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                          "choose another port, or 0 for any free one") from None
    listening.listen(128)
    return listening


class ApiServer:
    """The API of one ``TradingSystem``, served by a process of its own; see the module doc.

    Raises:
        ConfigError: the token cannot be had, or the address cannot be bound.
    """

    def __init__(self, system: TradingSystem) -> None:
        from supervision.api.server import ApiMetrics

        settings = system.config.api
        self.system = system
        self.settings = settings
        self.token = load_token(settings)
        assert settings.port is not None
        self._socket = bind(settings.host, settings.port)
        self.port: int = self._socket.getsockname()[1]
        self.metrics = ApiMetrics(system.metrics.registry)
        self._counted: dict[tuple[str, ...], float] = {}
        self._auth_failures = 0.0
        ours, theirs = socket.socketpair()
        # Spawned now, so that its imports overlap the actors' start; it serves on ``start``.
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, our module
            [sys.executable, "-m", "supervision.api.process", str(theirs.fileno()),
             str(self._socket.fileno())],
            pass_fds=(theirs.fileno(), self._socket.fileno()), stdin=subprocess.DEVNULL,
            start_new_session=True)  # a Ctrl-C at the terminal is the trading process's
        theirs.close()
        self._conn = Connection(ours.detach())
        self._send_lock = threading.Lock()
        self._serving = threading.Event()
        self._closed = threading.Event()
        self._events_due = threading.Event()
        self._calls = ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="api-call")
        config = system.config
        with contextlib.suppress(OSError):  # it ended at once: _receive says so
            self._send(("hello", settings, self.token,
                        {"run_id": config.run_id, "quote": config.quote},
                        {"ask_timeout": config.ask_timeout, "log_level": config.log_level}))
        self._stop_listening = system.journal.listen(self._event_recorded)
        self._threads = [threading.Thread(target=self._receive, name="api-receive", daemon=True),
                         threading.Thread(target=self._forward, name="api-events", daemon=True)]
        for thread in self._threads:
            thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host
        return f"http://{host}:{self.port}/"

    def start(self) -> ApiServer:
        """Let the API process serve; returns once it does, or once it has ended or not served
        within ``START_S`` (trading starts either way: the API dies alone)."""
        with contextlib.suppress(OSError, ValueError):  # gone already: _receive said so
            self._send(("start",))
        self._pin()
        if not self._serving.wait(START_S):
            logger.error("the API process did not start serving within {} s", START_S)
        elif self._process.poll() is None:
            where = ("from " + self.token.source if not self.token.generated
                     else f"in {self.token.source} (chmod 600; or set CONDUCTOR_API_TOKEN)")
            logger.info("dashboard and API on {} ; bearer token {}", self.url, where)
        return self

    def _pin(self) -> None:
        """``[api] cpus``: the API process onto those CPUs, trading onto the others."""
        chosen = frozenset(self.settings.cpus)
        if not chosen:
            return
        cpus.pin_child(self._process.pid, chosen)
        trading = cpus.available() - chosen
        cpus.pin_process(trading)
        logger.info("API process on CPU {}, trading on CPU {}", sorted(chosen), sorted(trading))

    def close(self) -> None:
        """Stop the API process; waits at most ``CLOSE_S`` (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self.settings.cpus:
            cpus.release_process()
        self._stop_listening()
        self._events_due.set()
        with contextlib.suppress(OSError, ValueError):
            self._send(("stop",))
        try:
            self._process.wait(CLOSE_S)
        except subprocess.TimeoutExpired:
            logger.warning("the API process did not stop within {} s; ending it", CLOSE_S)
            self._process.kill()
            self._process.wait(1.0)
        with contextlib.suppress(OSError):
            self._conn.close()
        self._calls.shutdown(wait=False, cancel_futures=True)
        self._socket.close()

    # -- the pipe ------------------------------------------------------------------------------

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _receive(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                if not self._closed.is_set():
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._process.wait(1.0)
                    logger.error("the API process ended (exit {}); trading goes on without "
                                 "the API", self._process.poll())
                self._serving.set()  # nobody waits for it any longer
                return
            kind = message[0]
            if kind == "call":
                self._calls.submit(self._call, *message[1:])
            elif kind == "metrics":
                self._count(*message[1:])
            elif kind == "serving":
                self._serving.set()

    def _call(self, call_id: int, name: str, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> None:
        try:
            if name not in FACADE:
                raise AttributeError(f"the API may not call {name!r}")
            answer: tuple[Any, ...] = ("result", call_id, True, getattr(self.system, name)(
                *args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - the route turns it into its status code
            answer = ("result", call_id, False, _portable(exc))
        try:
            self._send(answer)
        except (OSError, ValueError):
            return  # the API process is gone
        except Exception as exc:  # noqa: BLE001 - an answer that cannot be pickled
            self._send(("result", call_id, False, RuntimeError(
                f"{name}: the answer could not be sent ({type(exc).__name__})")))

    def _event_recorded(self, _seq: int, _event: object) -> None:
        """On the publisher's thread: only a flag."""
        self._events_due.set()

    def _forward(self) -> None:
        """The journal's events, in batches, in order (the API process keeps a copy)."""
        journal = self.system.journal
        sent = journal.last_seq
        while not self._closed.is_set():
            self._events_due.wait()
            if self._closed.wait(FORWARD_EVERY_S):
                return
            self._events_due.clear()
            entries, _missed = journal.since(sent)
            if not entries:
                continue
            sent = entries[-1][0]
            try:
                self._send(("events", entries))
            except (OSError, ValueError):
                return

    def _count(self, requests: dict[tuple[str, ...], float], auth_failures: float,
               stream_clients: float) -> None:
        """The API process's counters, added to the system's own series."""
        metrics = self.metrics
        for labels, total in requests.items():
            delta = total - self._counted.get(labels, 0.0)
            if delta > 0:
                metrics.requests.labels(*labels).inc(delta)
                self._counted[labels] = total
        if auth_failures > self._auth_failures:
            metrics.auth_failures.inc(auth_failures - self._auth_failures)
            self._auth_failures = auth_failures
        metrics.stream_clients.set(stream_clients)


def _portable(exc: Exception) -> Exception:
    """``exc`` if the API process can rebuild it, else a ``RuntimeError`` with its message (an
    exception whose constructor wants more than its message does not unpickle)."""
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes, just made
    except Exception:  # noqa: BLE001 - whatever the reason, send what surely arrives
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


# -- the API process -----------------------------------------------------------------------------


class _Call:
    __slots__ = ("done", "ok", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self.value: Any = None


class TradingLink:
    """The API process's end of the pipe: calls into the trading process, and the copy of
    its journal."""

    def __init__(self, conn: Connection, journal: EventJournal, ask_timeout: float) -> None:
        self.conn = conn
        self.journal = journal
        self.timeout = ask_timeout + CALL_MARGIN_S
        self.started = threading.Event()
        self.ended = threading.Event()
        self._ids = itertools.count(1)
        self._calls: dict[int, _Call] = {}
        self._lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            self.conn.send(message)

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        import pykka

        from supervision.system import SystemNotRunningError

        call_id = next(self._ids)
        pending = self._calls[call_id] = _Call()
        try:
            try:
                self.send(("call", call_id, name, args, kwargs))
            except (OSError, ValueError):
                raise SystemNotRunningError("the trading process is gone") from None
            if not pending.done.wait(self.timeout):
                if self.ended.is_set():
                    raise SystemNotRunningError("the trading process is gone")
                raise pykka.Timeout(f"{name} took longer than {self.timeout:g} s")
        finally:
            del self._calls[call_id]
        if not pending.ok:
            raise pending.value
        return pending.value

    def receive(self, on_stop: Any) -> None:
        """Until the trading process says stop or is gone (then ``on_stop()``)."""
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # noqa: BLE001 - one message that did not unpickle: the next may
                logger.exception("a message from the trading process could not be read")
                continue
            kind = message[0]
            if kind == "result":
                _, call_id, ok, value = message
                pending = self._calls.get(call_id)
                if pending is not None:
                    pending.ok, pending.value = ok, value
                    pending.done.set()
            elif kind == "events":
                self.journal.extend(message[1])
            elif kind == "start":
                self.started.set()
            elif kind == "stop":
                break
        self.ended.set()
        self.started.set()
        for pending in list(self._calls.values()):
            pending.done.set()
        on_stop()


class RemoteSystem:
    """The ``TradingSystem`` as the routes see it, from the API process: each ``FACADE``
    method is a call over the pipe."""

    def __init__(self, link: TradingLink, journal: EventJournal) -> None:
        self._link = link
        self.journal = journal

    def __getattr__(self, name: str) -> Any:
        if name not in FACADE:
            raise AttributeError(name)
        link = self._link

        def call(*args: Any, **kwargs: Any) -> Any:
            return link.call(name, *args, **kwargs)

        return call


def _report_metrics(link: TradingLink, registry: Any) -> None:
    prefix = "trade_conductor_api_"
    while not link.ended.wait(METRICS_EVERY_S):
        requests: dict[tuple[str, ...], float] = {}
        failures = clients = 0.0
        for family in registry.collect():
            for sample in family.samples:
                if sample.name == prefix + "requests_total":
                    labels = sample.labels
                    requests[(labels["method"], labels["route"], labels["status"])] = \
                        sample.value
                elif sample.name == prefix + "auth_failures_total":
                    failures = sample.value
                elif sample.name == prefix + "event_stream_clients":
                    clients = sample.value
        with contextlib.suppress(OSError, ValueError):
            link.send(("metrics", requests, failures, clients))


def main(argv: list[str]) -> int:
    """The API process: ``python -m supervision.api.process PIPE_FD SOCKET_FD``."""
    from prometheus_client import CollectorRegistry

    from supervision.api.server import ApiMetrics, ApiService

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the trading process decides when to stop
    with contextlib.suppress(OSError):
        # Trading first: a smaller share of a busy machine's cores than the trading process,
        # never none (a kill switch must still be reachable when trading is overloaded).
        os.nice(NICE)
    conn = Connection(int(argv[0]))
    listening = socket.socket(fileno=int(argv[1]))
    _, settings, token, hello, options = conn.recv()
    logger.remove()
    logger.add(sys.stderr, level=options["log_level"],
               format="{time:HH:mm:ss.SSS} {level: <8} api: {message}")
    journal = EventJournal(settings.event_replay)
    link = TradingLink(conn, journal, options["ask_timeout"])
    registry = CollectorRegistry()
    service = ApiService(RemoteSystem(link, journal), settings, token, listening, hello=hello,
                         metrics=ApiMetrics(registry), ask_timeout=options["ask_timeout"],
                         on_serving=lambda: link.send(("serving",)))
    threading.Thread(target=link.receive, args=(service.stop,), name="api-link",
                     daemon=True).start()
    threading.Thread(target=_report_metrics, args=(link, registry), name="api-metrics",
                     daemon=True).start()
    link.started.wait()
    if not link.ended.is_set():
        service.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
