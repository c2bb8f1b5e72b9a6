"""The control plane under load: 50 pairs at 20 ticks/s with 20 clients polling ``/status``
and 20 following the event stream, against the same run without them.

Target (issue 13): tick -> decision p99 with the clients within 1.2x of the run without.
Both runs are ``bench.live.run_live`` (the production actors on a paced feed, the pairs'
own latency records); the loaded run also serves the API on a free loopback port (in its own
process, ``supervision.api.process``, on a CPU of its own: ``[api] cpus``, see
``api_settings``). The clients run in a separate process (``python -m bench.api_load
--clients URL ...``) at ``nice 19`` on the API's CPU, and read the streams in whole chunks:
real clients are browsers and scripts on other machines, and here they share two cores with
the system. Each poller asks for ``/status`` every ``POLL_S``; each stream client reads
``/api/v1/events`` to the end. The client process stops by itself after the run's length or
is ended with the run, and prints what it got (the loaded row's note).
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from actors import cpus
from bench.common import Row, check

PAIRS = 50
POLLERS = 20
STREAMS = 20
POLL_S = 0.5
TARGET_RATIO = 1.2


def bench_api_load(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    from bench.live import run_live

    seconds = 5.0 if quick else 20.0
    warm_s = 2.0
    token = secrets.token_urlsafe(24)
    os.environ["CONDUCTOR_API_TOKEN"] = token
    api = api_settings()
    baseline = run_live(PAIRS, seconds, warm_s, api=api)
    clients: list[subprocess.Popen[bytes]] = []
    counts: dict[str, Any] = {}

    def start_clients(system: Any) -> None:
        clients.append(subprocess.Popen(
            ["nice", "-n", "19", sys.executable, "-m", "bench.api_load", "--clients",
             system.api_url, "--seconds", str(warm_s + seconds + 5)],
            env={**os.environ, "CONDUCTOR_API_TOKEN": token}, stdout=subprocess.PIPE))
        if api.get("cpus"):  # real clients are elsewhere: not on trading's CPUs either
            cpus.pin_child(clients[-1].pid, api["cpus"])

    try:
        loaded = run_live(PAIRS, seconds, warm_s, on_started=start_clients, api=api)
    finally:
        for process in clients:
            process.terminate()
            out, _ = process.communicate(timeout=10)
            counts["clients"] = out.decode().strip()
    base, load = baseline["decision"]["p99_ms"], loaded["decision"]["p99_ms"]
    ratio = load / base if base else float("nan")
    rows = [
        Row("api_load", f"{PAIRS} pairs @20 t/s, API on, no clients", "tick->decision p99",
            base, "ms"),
        Row("api_load", f"{PAIRS} pairs @20 t/s, {POLLERS} pollers + {STREAMS} streams",
            "tick->decision p99", load, "ms", note=counts.get("clients", "")),
        Row("api_load", "with clients / without", "p99 ratio", ratio, "x",
            target=f"<= {TARGET_RATIO}", ok=check(ratio, TARGET_RATIO, higher_is_better=False),
            note=(f"[api] cpus = {list(api['cpus'])}: the API process and the clients on "
                  "that CPU, trading on the others" if api.get("cpus") else
                  "one CPU: nothing pinned")),
    ]
    return rows, {"baseline": baseline, "loaded": loaded, **counts}


def api_settings() -> dict[str, Any]:
    """The API as a deployment that cares for trading's latency runs it: on a CPU of its own
    (``[api] cpus``, the machine's last), the clients beside it; where this process may use
    only one CPU, unpinned."""
    usable = sorted(cpus.available()) if cpus.supported() else []
    return {"port": 0, "cpus": [usable[-1]]} if len(usable) >= 2 else {"port": 0}


# -- the client process ---------------------------------------------------------------------


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def _poll(url: str, token: str, until: float, done: list[int]) -> None:
    conn = _connection(url)
    while time.monotonic() < until:
        began = time.monotonic()
        try:
            conn.request("GET", "/api/v1/status", headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            done.append(response.status)
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = _connection(url)
        time.sleep(max(0.0, POLL_S - (time.monotonic() - began)))


def _follow(url: str, token: str, until: float, seen: list[int]) -> None:
    """Reads the stream, one entry in ``seen`` per event (-1: the stream failed)."""
    conn = _connection(url)
    try:
        conn.request("GET", "/api/v1/events", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        tail = b"\n"
        # Whole chunks, counted with bytes.count: on a 2-core machine the clients share the
        # cores with the system, and real ones would not (they are browsers elsewhere).
        while time.monotonic() < until and (chunk := response.read1(65536)):
            text = tail + chunk
            seen.extend([1] * text.count(b"\nevent:"))
            tail = text[-6:]  # shorter than the marker: never counted twice
    except (OSError, http.client.HTTPException):
        seen.append(-1)


def run_clients(url: str, seconds: float) -> None:
    token = os.environ["CONDUCTOR_API_TOKEN"]
    until = time.monotonic() + seconds
    polled: list[int] = []
    streamed: list[int] = []
    threads = [threading.Thread(target=_poll, args=(url, token, until, polled), daemon=True)
               for _ in range(POLLERS)]
    threads += [threading.Thread(target=_follow, args=(url, token, until, streamed),
                                 daemon=True) for _ in range(STREAMS)]

    def report(*_: Any) -> None:
        """What the clients got: printed when the run ends them (SIGTERM) or they end."""
        ok = sum(1 for s in polled if s == 200)
        print(f"{ok} status answers ({len(polled) - ok} not 200), {streamed.count(1)} stream "
              f"events, {streamed.count(-1)} streams failed", flush=True)
        os._exit(0)

    for thread in threads:
        thread.start()
    signal.signal(signal.SIGTERM, report)
    for thread in threads:
        thread.join(seconds + 5)
    report()


if __name__ == "__main__":
    cli = argparse.ArgumentParser(prog="python -m bench.api_load")
    cli.add_argument("--clients", metavar="URL")
    cli.add_argument("--seconds", type=float, default=10.0)
    cli.add_argument("--quick", action="store_true")
    args = cli.parse_args()
    if args.clients:
        run_clients(args.clients, args.seconds)
    else:
        for row in bench_api_load(args.quick)[0]:
            print(row)
