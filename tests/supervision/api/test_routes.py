"""The HTTP API over real HTTP against a running system: every route, its errors, its token."""

from __future__ import annotations

import sqlite3
import time

import pytest

from actors.messages import HaltChanged, OrderFilled, OrderRejected, PositionClosed
from supervision import TradingSystem
from tests.helpers import eventually
from tests.supervision.api.serving import HOLD, TOKEN, Client, serving

PATH_VALUES = {"pair": "BTC-USDT"}


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """One system for the read-mostly tests of this module (a test that steers puts back what
    it changed)."""
    with pytest.MonkeyPatch.context() as monkeypatch, \
            serving(tmp_path_factory.mktemp("api"), monkeypatch,
                    api={"max_body_bytes": 1024}) as (system, client, log):
        log.wait_for(lambda evs: sum(isinstance(e, OrderFilled) for e in evs) >= 4,
                     timeout=30, message="a few fills")
        yield system, client, log


def operations(client: Client):
    status, spec, _ = client.get("/api/v1/openapi.json")
    assert status == 200
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield path, method.upper(), operation


def concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path


def test_every_route_but_health_refuses_a_request_without_the_token(running):
    """Walks the OpenAPI description: each route answers 401 without a token and with a wrong
    one (before doing anything: the pair is not paused, nothing halts), /health answers."""
    system, client, _ = running
    walked = []
    for path, method, _ in operations(client):
        if path == "/health":
            continue
        for n, token in enumerate((None, "wrong-" + TOKEN)):
            # From its own loopback address each: wrong tokens are slowed per address.
            status, body, headers = client.call(method, concrete(path), token=token,
                                                raw=b"{}" if method != "GET" else None,
                                                source=f"127.0.{n + 1}.{len(walked) + 1}")
            assert status == 401, (method, path, status, body)
            assert headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in str(body)
        walked.append((method, path))
    assert len(walked) >= 20
    assert client.get("/api/v1/openapi.json", token=None)[0] == 401
    assert client.get("/health", token=None)[0] == 200
    assert not system.risk().status.halted
    assert system.pair_status("BTC/USDT").state == "running"


def test_each_route_is_the_facade_method_of_the_same_name(running):
    """Embedding parity: every operationId is a TradingSystem method."""
    _, client, _ = running
    ids = {operation["operationId"] for _, _, operation in operations(client)}
    missing = sorted(i for i in ids if not callable(getattr(TradingSystem, i, None)))
    assert not missing
    assert {"pause", "resume", "add_pair", "remove_pair", "swap_strategy", "force_exit",
            "force_exit_all", "halt_entries", "resume_entries", "reset_halt", "status",
            "orders", "fills", "trades", "equity", "risk", "effective_config", "events",
            "health"} <= ids


def test_status_and_one_pair_show_what_the_facade_shows(running):
    """/status lists both pairs trading; /pairs/BTC-USDT is that pair."""
    _, client, _ = running
    status, body, headers = client.get("/api/v1/status")
    assert status == 200 and headers["cache-control"] == "no-store"
    assert {p["pair"] for p in body["pairs"]} == {"BTC/USDT", "ETH/USDT"}
    assert all(p["ticks"] > 0 and p["state"] == "running" for p in body["pairs"])
    assert body["fills"] >= 4
    status, pair, _ = client.get("/api/v1/pairs/BTC-USDT")
    assert status == 200 and pair["pair"] == "BTC/USDT" and pair["strategy"].startswith("flip")
    assert "set-cookie" not in headers


def test_fills_orders_and_trades_are_paged_and_filtered(running):
    """Newest first, by pair and time window, with the next page's offset."""
    system, client, _ = running
    eventually(lambda: len(system.trades(limit=10)) >= 2, 30, "two closed trades")
    _, page, _ = client.get("/api/v1/fills?limit=2")
    assert len(page["items"]) == 2 and page["next_offset"] == 2
    first, second = page["items"]
    assert first["ts_ms"] >= second["ts_ms"]
    _, older, _ = client.get("/api/v1/fills?limit=2&offset=2")
    assert {f["fill_id"] for f in older["items"]}.isdisjoint({first["fill_id"],
                                                              second["fill_id"]})
    _, eth, _ = client.get("/api/v1/fills?pair=ETH-USDT&limit=50")
    assert eth["items"] and {f["pair"] for f in eth["items"]} == {"ETH/USDT"}
    since = first["ts_ms"]
    _, recent, _ = client.get(f"/api/v1/fills?since_ms={since}")
    assert all(f["ts_ms"] >= since for f in recent["items"])
    _, orders, _ = client.get("/api/v1/orders?status=all&limit=5")
    assert orders["items"] and all(o["status"] in ("filled", "open", "new", "canceled")
                                   for o in orders["items"])
    _, trades, _ = client.get("/api/v1/trades?pair=BTC-USDT")
    trade = trades["items"][0]
    assert trade["pair"] == "BTC/USDT" and trade["reason"] == "exit_signal"
    assert trade["closed_ms"] >= trade["opened_ms"] and trade["amount"] > 0
    assert client.get("/api/v1/fills?limit=0")[0] == 422
    assert client.get("/api/v1/fills?limit=5000")[0] == 422
    status, body, _ = client.get("/api/v1/fills?since_ms=10&until_ms=5")
    assert status == 422 and "since_ms" in body["error"]


def test_equity_risk_config_strategies_and_audit_answer(running):
    """The read routes answer with their values; the config shows no secret."""
    _, client, _ = running
    _, equity, _ = client.get("/api/v1/equity")
    assert equity["items"] and {"ts_ms", "equity", "drawdown"} <= set(equity["items"][0])
    _, risk, _ = client.get("/api/v1/risk")
    assert risk["status"]["halted"] is False and risk["limits"]["max_drawdown"] == 0.15
    _, config, _ = client.get("/api/v1/config")
    assert config["pairs"] == ["BTC/USDT", "ETH/USDT"] and config["api"]["port"] == 0
    assert TOKEN not in str(config)
    _, strategies, _ = client.get("/api/v1/strategies")
    assert {"ema_cross", "rsi_reversion", "tests.helpers:Flip"} <= set(strategies["items"])
    assert client.get("/api/v1/audit")[0] == 200


def test_pausing_a_pair_over_http_stops_its_entries_and_is_audited(running):
    """POST pause: the pair reports paused and opens nothing new; resume undoes it; both are
    audit rows naming the client."""
    system, client, log = running
    status, body, _ = client.post("/api/v1/pairs/ETH-USDT/pause")
    assert status == 200 and body == {"ok": True, "action": "pause", "result": "ETH/USDT"}
    assert system.pair_status("ETH/USDT").state == "paused"
    eventually(lambda: system.status().pair("ETH/USDT").position == 0, 30, "ETH flat")
    fills_before = len([e for e in log.of(OrderFilled) if e.fill.pair == "ETH/USDT"])
    btc = system.status().pair("BTC/USDT").ticks
    eventually(lambda: system.status().pair("BTC/USDT").ticks > btc + 20, 30, "more ticks")
    assert len([e for e in log.of(OrderFilled) if e.fill.pair == "ETH/USDT"]) == fills_before
    assert client.post("/api/v1/pairs/ETH-USDT/resume")[0] == 200
    assert system.pair_status("ETH/USDT").state == "running"
    eventually(lambda: len(system.audit(limit=10)) >= 2, 5, "audit rows")
    rows = {(r.action, r.target, r.actor, r.outcome) for r in system.audit(limit=10)}
    assert ("pause", "ETH/USDT", "api 127.0.0.1", "ok") in rows
    assert ("resume", "ETH/USDT", "api 127.0.0.1", "ok") in rows


def test_bad_requests_get_one_clear_error_each(running):
    """Unknown pair 404, malformed JSON 400, unknown field and bad value 422, a strategy not
    allowed 403 (and audited), a body over the limit 413; never a traceback."""
    system, client, _ = running
    status, body, _ = client.post("/api/v1/pairs/XRP-USDT/pause")
    assert status == 404 and "XRP/USDT" in body["error"] and "BTC/USDT" in body["error"]
    assert client.post("/api/v1/pairs/nonsense/pause")[0] == 404
    status, body, _ = client.call("POST", "/api/v1/halt", raw=b"{not json")
    assert status == 400 and "JSON" in body["error"]
    status, body, _ = client.post("/api/v1/halt", {"reason": "x", "force": True})
    assert status == 422 and "force" in body["error"]
    status, body, _ = client.call("PUT", "/api/v1/pairs/BTC-USDT/strategy",
                                  {"name": "os.path:join"})
    assert status == 403 and "not allowed" in body["error"] and "ema_cross" in body["error"]
    status, body, _ = client.call("PUT", "/api/v1/pairs/BTC-USDT/strategy",
                                  {"name": "ema_cross", "params": {"fast": "quick"}})
    assert status == 422 and "fast" in body["error"]
    status, body, _ = client.call("DELETE", "/api/v1/pairs/BTC-USDT?policy=sell")
    assert status == 422 and "policy" in body["error"]
    status, body, _ = client.post("/api/v1/halt", raw=b'{"reason": "' + b"x" * 2000 + b'"}')
    assert status == 413 and "1024" in body["error"]
    status, body, _ = client.post("/api/v1/pairs", {"pair": "BTC/USDT"})
    assert status == 409 and "already trading" in body["error"]
    status, body, _ = client.post("/api/v1/pairs", {"pair": "SOL/EUR"})
    assert status == 422 and "USDT" in body["error"]
    for answer in (body,):
        assert "Traceback" not in str(answer)
    refused = [r for r in system.audit(limit=20) if r.outcome.startswith("refused")]
    assert any(r.action == "swap_strategy" and "os.path:join" in r.detail for r in refused)
    assert system.pair_status("BTC/USDT").strategy.startswith("flip")


def test_a_swap_to_an_allowed_strategy_takes_effect(running):
    """PUT strategy with a built-in swaps the pair's strategy; swapping back restores it."""
    system, client, _ = running
    status, _, _ = client.call("PUT", "/api/v1/pairs/ETH-USDT/strategy",
                               {"name": "rsi_reversion", "params": {"period": 10}})
    assert status == 200
    eventually(lambda: system.pair_status("ETH/USDT").strategy.startswith("rsi"), 10, "swap")
    client.call("PUT", "/api/v1/pairs/ETH-USDT/strategy",
                {"name": "tests.helpers:Flip", "params": {"period": 5}})
    eventually(lambda: system.pair_status("ETH/USDT").strategy.startswith("flip"), 10, "back")


def test_halting_entries_by_hand_refuses_entries_until_resumed(running):
    """POST /halt: risk refuses entries with 'halted' and a HaltChanged event goes out;
    POST /resume lifts it."""
    _, client, log = running
    status, body, _ = client.post("/api/v1/halt", {"reason": "maintenance"})
    assert status == 200 and body["result"]["halted"] is True
    assert "maintenance" in body["result"]["halt_reason"]
    log.wait_for(lambda evs: any(isinstance(e, OrderRejected) and e.reason == "halted"
                                 for e in evs), 30, "an entry refused as halted")
    assert any(isinstance(e, HaltChanged) and e.halted for e in log.events)
    status, body, _ = client.post("/api/v1/resume")
    assert status == 200 and body["result"]["halted"] is False
    assert any(isinstance(e, HaltChanged) and not e.halted for e in log.events)
    status, body, _ = client.post("/api/v1/halt/reset")
    assert status == 200 and body["result"]["halted"] is False


def test_adding_and_removing_a_pair_over_http_on_the_simulator(tmp_path, monkeypatch):
    """On the simulator: POST /pairs starts SOL/USDT, which then gets ticks; DELETE removes
    it; a scripted feed that cannot add a pair answers 409 naming why."""
    with serving(tmp_path, monkeypatch, simulator=True, speed=10.0) as (system, client, _):
        status, body, _ = client.post("/api/v1/pairs", {"pair": "SOL/USDT",
                                                        "strategy": {"name": "ema_cross"}})
        assert status == 201, body
        eventually(lambda: system.pair_status("SOL/USDT").ticks > 0, 30, "SOL ticks")
        status, _, _ = client.call("DELETE", "/api/v1/pairs/SOL-USDT?policy=flatten")
        assert status == 200
        assert "SOL/USDT" not in {p.pair for p in system.status().pairs}
        assert client.get("/api/v1/pairs/SOL-USDT")[0] == 404


def test_wrong_tokens_are_answered_ever_more_slowly(running):
    """After three wrong tokens from one address each refusal waits longer; the right token
    still answers at once and clears the count."""
    _, client, _ = running
    waits = []
    for _ in range(6):
        started = time.monotonic()
        assert client.get("/api/v1/status", token="nope-" + TOKEN)[0] == 401
        waits.append(time.monotonic() - started)
    assert waits[4] >= 0.45 and waits[5] >= 0.9
    started = time.monotonic()
    assert client.get("/api/v1/status")[0] == 200
    assert client.get("/api/v1/status", token="nope-" + TOKEN)[0] == 401
    assert time.monotonic() - started < 0.4


def test_force_exit_sells_the_position_through_the_pairs_exit_path(tmp_path, monkeypatch):
    """A pair that buys and holds: POST exit closes it with reason flatten; a second exit of
    a flat pair is a 409; exit-all on no positions answers an empty list."""
    with serving(tmp_path, monkeypatch, strategy=HOLD) as (system, client, log):
        eventually(lambda: system.status().pair("BTC/USDT").position > 0, 30, "a position")
        status, body, _ = client.post("/api/v1/pairs/BTC-USDT/exit")
        assert status == 200 and body["result"]["amount"] > 0
        log.wait_for(lambda evs: any(isinstance(e, PositionClosed) and e.pair == "BTC/USDT"
                                     for e in evs), 30, "BTC closed")
        closed = next(e for e in log.of(PositionClosed) if e.pair == "BTC/USDT")
        assert closed.reason.value == "flatten"
        eventually(lambda: system.trades(pair="BTC/USDT"), 5, "the trade row")
        assert system.trades(pair="BTC/USDT")[0].reason.value == "flatten"
        eventually(lambda: system.status().pair("ETH/USDT").position > 0, 30, "ETH position")
        status, body, _ = client.post("/api/v1/exit")
        assert status == 200 and "ETH/USDT" in body["result"]
        log.wait_for(lambda evs: any(isinstance(e, PositionClosed) and e.pair == "ETH/USDT"
                                     for e in evs), 30, "ETH closed")
        eventually(lambda: system.status().pair("ETH/USDT").position == 0, 10, "ETH flat")
        # HOLD buys again at once; pause both so they stay flat, then a flat exit is refused.
        for pair in ("BTC-USDT", "ETH-USDT"):
            client.post(f"/api/v1/pairs/{pair}/pause")
        client.post("/api/v1/exit")
        eventually(lambda: all(p.position == 0 for p in system.status().pairs), 30, "flat")
        status, body, _ = client.post("/api/v1/pairs/BTC-USDT/exit")
        assert status == 409 and "no position" in body["error"]
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        actions = [row[0] for row in db.execute("SELECT action FROM audit")]
    assert actions.count("force_exit") >= 2 and "force_exit_all" in actions
