"""Monitoring: /metrics and /health scraped over HTTP from running systems, the latency the
status table shows, and the CLI's logs (JSON lines naming actor and pair, a rotating file)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors.messages import MarketTick, Signal
from actors.router import LATENCY_BUCKETS_S, PairHandle, TickLatency
from strategies.base import Strategy
from supervision import TradingSystem, build_config, format_table
from supervision.app.logs import actor_and_pair
from supervision.config import ConfigError
from supervision.monitoring.health import check_health
from supervision.monitoring.metrics import restart_reason
from tests.helpers import endless_chop, eventually, gate

START_MS = 1_700_000_000_000
PRICES = {"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0}
ROOT = Path(__file__).resolve().parents[3]


# -- a strategy that crashes once ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class _CrashOnceParams:
    timeframe_s: float = 0.0
    token: str = ""
    above: float = 0.0
    """Only pairs priced above this crash."""


class CrashOnce(Strategy):
    """Raises on the first live tick above ``above`` that any instance with this ``token``
    sees once ``gate(token)`` is set (at once for the token ""); holds otherwise: exactly one
    forced restart per token, when the test says so."""

    name = "crash_once"
    Params = _CrashOnceParams
    _crashed: set[str] = set()
    _lock = threading.Lock()

    @property
    def warmup(self) -> int:
        return 0

    def warm_up(self, ticks: Iterable[MarketTick]) -> None:
        """Only live ticks count."""

    def on_price(self, price: float) -> Signal:
        token = self.params.token
        if price > self.params.above and (not token or gate(token).is_set()):
            with CrashOnce._lock:
                first = token not in CrashOnce._crashed
                CrashOnce._crashed.add(token)
            if first:
                raise RuntimeError("crashed once on purpose")
        return Signal.HOLD


# -- helpers ----------------------------------------------------------------------------------


def with_bad_ticks(ticks: Iterator[MarketTick], every: int = 20) -> Iterator[MarketTick]:
    """``ticks``, plus a BTC/USDT tick with a negative price after every ``every``-th."""
    for n, tick in enumerate(ticks, 1):
        yield tick
        if n % every == 0:
            yield attrs.evolve(tick, pair="BTC/USDT", price=-1.0)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """Start a system with a metrics server on a free port, trading an endless paced chop of
    PRICES' pairs; every system started is stopped at the end."""
    started: list[tuple[TradingSystem, threading.Event]] = []

    def _start(strategy: dict[str, Any], bad_ticks: bool = False,
               **overrides: Any) -> TradingSystem:
        stop = threading.Event()
        ticks = endless_chop(PRICES, stop, START_MS, interval_ms=100)
        config = build_config({}, {
            "pairs": ",".join(PRICES), "state_db": str(tmp_path / f"s{len(started)}.sqlite"),
            "speed": 10, "metrics_port": 0, "strategy": strategy, **overrides})
        system = TradingSystem(config, source=with_bad_ticks(ticks) if bad_ticks else ticks)
        started.append((system, stop))
        return system.start()

    yield _start
    for system, stop in started:
        stop.set()
        system.stop()


def get(port: int | None, path: str) -> tuple[int, str]:
    """(status, body) of a GET on 127.0.0.1, errors included."""
    assert port is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(system: TradingSystem) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    code, text = get(system.metrics_port, "/metrics")
    assert code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    """One sample's value; 0 where the series does not exist (yet)."""
    return samples.get((f"trade_conductor_{name}", tuple(sorted(labels.items()))), 0.0)


def health(system: TradingSystem) -> tuple[int, dict[str, Any]]:
    code, body = get(system.metrics_port, "/health")
    return code, json.loads(body)


# -- a healthy system --------------------------------------------------------------------------


def test_ticks_orders_positions_and_latency_move_between_scrapes(start):
    """Two scrapes of a trading system: ticks processed, received and dropped (bad prices)
    grow and the latency histogram counts them; ETH/USDT's one entry shows as orders by
    status and a position, BTC/USDT's entries (too small a lot for ``min_amount``) as risk
    rejections; every actor's mailbox and the pair workers are reported."""
    system = start({"name": "tests.helpers:Flip", "params": {"period": 5, "hold_below": 10_000}},
                   bad_ticks=True, risk={"stake_amount": 500, "min_amount": 0.1})
    first = scrape(system)

    eventually(lambda: metric(scrape(system), "risk_rejections_total", pair="BTC/USDT",
                              reason="below_min_amount") >= 2, message="BTC rejections")
    eventually(lambda: metric(scrape(system), "orders_total", pair="ETH/USDT",
                              status="filled") == 1, message="the ETH fill")
    second = scrape(system)

    for pair in PRICES:
        for name in ("ticks_processed_total", "ticks_received_total"):
            assert metric(second, name, pair=pair) > metric(first, name, pair=pair)
        assert metric(second, "tick_latency_seconds_count", pair=pair) >= metric(
            first, "ticks_processed_total", pair=pair)
        assert metric(second, "tick_latency_seconds_sum", pair=pair) > 0
        assert metric(second, "tick_latency_seconds_bucket", pair=pair, le="+Inf") == metric(
            second, "tick_latency_seconds_count", pair=pair)
        assert metric(second, "pair_state", pair=pair, state="running") == 1
    assert metric(second, "ticks_dropped_total", pair="BTC/USDT", reason="bad_price") > metric(
        first, "ticks_dropped_total", pair="BTC/USDT", reason="bad_price")
    assert [metric(second, "orders_total", pair="ETH/USDT", status=s)
            for s in ("new", "open", "filled")] == [1, 1, 1]
    assert metric(second, "orders_total", pair="BTC/USDT", status="new") == 0
    held = system.status().pair("ETH/USDT").position
    assert held > 0
    assert metric(second, "position", pair="ETH/USDT") == held
    assert metric(second, "position", pair="BTC/USDT") == 0
    assert 0 < metric(second, "cash") < metric(second, "equity")
    assert {labels for name, labels in second if name == "trade_conductor_mailbox_depth"} == {
        (("actor", a),) for a in ("state", "risk", "execution", "market_data", "supervisor",
                                  *PRICES)}
    assert (metric(second, "pair_workers"), metric(second, "pair_workers_replaced_total")) == (
        4, 0)


def test_health_is_200_with_every_actor_alive_and_the_status_table_shows_latency(start):
    """A running system answers /health 200 with each actor alive and each pair's last tick
    age; its status has p50/p99 tick latencies over the last minute, printed in the table."""
    system = start({"name": "tests.helpers:Flip"})
    eventually(lambda: all(p.ticks > 5 for p in system.status().pairs), message="ticks")

    code, body = health(system)
    status = system.status()

    assert code == 200
    assert body["status"] == "ok" and body["problems"] == [] and body["failed_pairs"] == []
    assert all(a["alive"] for a in body["actors"].values())
    assert set(body["actors"]) == {"state", "risk", "execution", "market_data", "supervisor"}
    for pair in PRICES:
        assert body["pairs"][pair]["state"] == "running"
        assert 0 <= body["pairs"][pair]["last_tick_age_s"] < 5
        latency = status.pair(pair)
        assert latency.latency_p50_ms is not None and latency.latency_p99_ms is not None
        assert 0 < latency.latency_p50_ms <= latency.latency_p99_ms
    header, *rows = format_table(status).splitlines()
    assert header.split()[9:11] == ["p50", "p99"]
    assert all(row.split()[9].endswith("ms") for row in rows[:2])
    assert get(system.metrics_port, "/nothing")[0] == 404


# -- restarts and failures ------------------------------------------------------------------------


def test_a_forced_restart_increments_the_restarts_metric_and_health_stays_200(start):
    """BTC/USDT's strategy raises once: restarts_total{actor="BTC/USDT"} goes from 0 to 1
    with the exception's class as reason, and the pair, running again, is healthy."""
    token = "restart-metric"
    system = start({"name": "tests.supervision.monitoring.test_metrics:CrashOnce",
                    "params": {"token": token, "above": 10_000}})
    eventually(lambda: all(p.ticks > 0 for p in system.status().pairs), message="ticks")
    before = scrape(system)

    gate(token).set()

    eventually(lambda: metric(scrape(system), "restarts_total", actor="BTC/USDT",
                              reason="RuntimeError") == 1, message="the restart metric")
    assert metric(before, "restarts_total", actor="BTC/USDT", reason="RuntimeError") == 0
    assert metric(scrape(system), "restarts_total", actor="ETH/USDT", reason="RuntimeError") == 0

    def running_again() -> bool:
        code, body = health(system)
        btc = body["pairs"]["BTC/USDT"]
        return code == 200 and (btc["generation"], btc["state"]) == (1, "running")

    eventually(running_again, message="the restarted pair to be healthy")


def test_health_turns_503_once_a_pair_has_failed(start):
    """With no restarts allowed, BTC/USDT's first crash fails it: /health answers 503 naming
    it, while ETH/USDT keeps trading; the pair_state metric says failed."""
    system = start({"name": "tests.helpers:RaiseAbove", "params": {"above": 10_000}},
                   restart={"max_restarts": 0})

    eventually(lambda: health(system)[0] == 503, message="/health to answer 503")

    code, body = health(system)
    assert code == 503
    assert body["status"] == "unhealthy"
    assert body["failed_pairs"] == ["BTC/USDT"]
    assert any("BTC/USDT failed" in p for p in body["problems"])
    assert body["pairs"]["ETH/USDT"]["state"] == "running"
    assert metric(scrape(system), "pair_state", pair="BTC/USDT", state="failed") == 1


# -- the server's life cycle ----------------------------------------------------------------


def test_the_server_stops_with_the_system_and_a_busy_port_is_refused_before_anything_starts(
        tmp_path):
    """stop() closes the port; a second system on a port in use raises ConfigError naming
    metrics_port, and creates no database."""
    stop = threading.Event()
    config = build_config({}, {"pairs": "BTC/USDT", "state_db": str(tmp_path / "a.sqlite"),
                               "metrics_port": 0, "speed": 10})
    system = TradingSystem(config, source=endless_chop({"BTC/USDT": 60_000.0}, stop,
                                                       START_MS)).start()
    port = system.metrics_port
    try:
        busy = build_config({}, {"pairs": "BTC/USDT", "state_db": str(tmp_path / "b.sqlite"),
                                 "metrics_port": port})
        with pytest.raises(ConfigError, match="metrics_port"):
            TradingSystem(busy).start()
        assert not (tmp_path / "b.sqlite").exists()
    finally:
        stop.set()
        system.stop()
    assert port is not None
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


# -- the parts, without threads ---------------------------------------------------------------


def test_latency_percentiles_cover_the_last_minute_and_the_histogram_is_cumulative():
    """Samples older than a minute leave the percentiles but stay in the histogram."""
    latency = TickLatency()
    minute = 60 * 10**9
    latency.record(0, 5_000_000_000)  # 5 s, long ago
    for i in range(1, 101):
        latency.record(minute + i, i * 1_000_000)  # 1..100 ms

    p50, p99 = latency.percentiles(minute + 200) or (0, 0)
    counts, total_s = latency.histogram()

    assert (p50, p99) == (50.0, 99.0)
    assert latency.percentiles(10 * minute) is None
    assert counts[-1] == 101 and counts == sorted(counts)
    assert counts[LATENCY_BUCKETS_S.index(0.001)] == 1  # <= 1 ms
    assert total_s == pytest.approx(5 + 5.05)


def test_health_flags_a_pair_whose_last_tick_is_too_old_on_a_live_feed_only():
    """A running pair silent for longer than the limit is unhealthy; without the check (a
    replay) or before the feed starts it is not."""
    handle = PairHandle("BTC/USDT", 10)
    handle.state = "running"
    handle.last_tick_ns = 1 * 10**9
    now = 40 * 10**9

    def judge(max_age: float | None, started: int = 10**9) -> list[str]:
        return list(check_health(state="running", error="", services={},
                                 pairs={"BTC/USDT": handle}, now_ns=now,
                                 feed_started_ns=started, max_tick_age_s=max_age).problems)

    assert judge(30.0) == ["pair BTC/USDT processed no tick for 39.0 s (limit 30 s)"]
    assert judge(60.0) == []
    assert judge(None) == []
    assert judge(30.0, started=0) == []


@pytest.mark.parametrize(("thread", "expected"), [
    ("OrchestratorActor[BTC/USDT]", ("orchestrator", "BTC/USDT")),
    ("MarketDataActor-7", ("market_data", "")),
    ("StateActor-1", ("state", "")),
    ("feed", ("market_data", "")),
    ("watchdog", ("watchdog", "")),
    ("MainThread", ("main", "")),
])
def test_the_thread_name_tells_the_actor_and_pair_of_a_log_record(thread, expected):
    """pykka's thread names (and the orchestrator's own) map to actor and pair."""
    assert actor_and_pair(thread) == expected


@pytest.mark.parametrize(("error", "reason"), [
    ("RuntimeError('boom')", "RuntimeError"),
    ("sqlite3.OperationalError('disk I/O error')", "OperationalError"),
    ("hung: no heartbeat reply within 5 s", "hung"),
    ("???", "crash"),
])
def test_restart_reasons_are_a_bounded_label(error, reason):
    """An error text becomes the exception's class name, ``hung``, or ``crash``."""
    assert restart_reason(error) == reason


@pytest.mark.parametrize(("values", "fragments"), [
    ({"metrics_port": 70_000}, ["metrics_port: 70000", "1 to 65535", "0 for any free port"]),
    ({"metrics_port": "9100"}, ["metrics_port: '9100'"]),
    ({"metrics_port": True}, ["metrics_port: True"]),
    ({"log_json": "yes"}, ["log_json: 'yes'", "true, false"]),
    ({"log_dir": " "}, ["log_dir: ' '", "give a folder"]),
], ids=["port-out-of-range", "port-string", "port-bool", "log-json-string", "log-dir-empty"])
def test_bad_monitoring_keys_name_the_key_and_the_valid_choices(values, fragments):
    """The new keys are validated like the others."""
    with pytest.raises(ConfigError) as error:
        build_config(values, {"pairs": "BTC/USDT"})
    for fragment in fragments:
        assert fragment in str(error.value)


def test_a_log_dir_that_is_a_file_is_refused(tmp_path):
    """``log_dir`` naming a file says so."""
    path = tmp_path / "a-file"
    path.write_text("")
    with pytest.raises(ConfigError, match="is a file; give a folder"):
        build_config({"log_dir": str(path)}, {"pairs": "BTC/USDT"})


# -- the CLI's logs -----------------------------------------------------------------------------


def test_the_cli_logs_json_lines_with_actor_and_pair_to_stderr_and_a_file(tmp_path):
    """``--log-json --log-dir logs``: every stderr line is a JSON object with actor and pair;
    the crash is logged by the BTC/USDT orchestrator, fills by the state actor naming their
    pair; the same records land in logs/trade-conductor.log."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "supervision.main", "--pairs", "BTC/USDT,ETH/USDT",
         "--speed", "20", "--duration", "3", "--state-db", "s.sqlite", "--log-json",
         "--log-dir", "logs", "--metrics-port", "0",
         "--strategy", "tests.supervision.monitoring.test_metrics:CrashOnce",
         "--strategy-param", "above=10000"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records
    assert all({"actor", "pair", "level", "message", "time"} <= set(r) for r in records)
    assert any(r["actor"] == "orchestrator" and r["pair"] == "BTC/USDT"
               and "crashed" in r["message"] for r in records)
    assert any(r["actor"] == "main" and "metrics on http://127.0.0.1:" in r["message"]
               for r in records)
    logged = (tmp_path / "logs" / "trade-conductor.log").read_text(encoding="utf-8")
    # Two sinks, each behind its own lock: records from different threads may land in a
    # different order in each, so compare the records, not their order.
    def canonical(rs):
        return sorted(json.dumps(r, sort_keys=True) for r in rs)

    assert canonical(json.loads(line) for line in logged.splitlines()) == canonical(records)


def test_a_pair_s_mailbox_depth_counts_the_ticks_waiting_in_its_tick_inbox():
    import queue
    import types

    from actors.messages import Side
    from actors.router import TICKS_READY, Router
    from supervision.monitoring.metrics import SystemMetrics

    router = Router()
    handle = router.add_pair("BTC/USDT", max_inflight=8)
    inbox = handle.new_inbox()
    pykka_inbox: queue.Queue[object] = queue.Queue()
    ref = types.SimpleNamespace(actor_inbox=pykka_inbox)
    handle.attach(ref, 0, inbox)  # type: ignore[arg-type]
    for ts in (1, 2, 3):
        assert handle.deliver(MarketTick(pair="BTC/USDT", ts_ms=ts, price=100.0, bid=99.0,
                                         ask=101.0, amount=1.0, side=Side.BUY),
                              False, threading.Event())

    def no_status():
        raise RuntimeError("not running")

    text = SystemMetrics(router, lambda: None, no_status).exposition().decode()

    # the doorbell in its pykka inbox (one: the first tick into an empty inbox), and 3 ticks
    assert 'trade_conductor_mailbox_depth{actor="BTC/USDT"} 4.0' in text
    assert [envelope.message for envelope in pykka_inbox.queue] == [TICKS_READY]
