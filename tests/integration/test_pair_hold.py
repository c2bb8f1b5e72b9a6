"""A pair that holds ticks for an order's answer that never comes decides again at a heartbeat."""

from __future__ import annotations

import threading

import pytest

from actors.messages import MarketTick, Ping, Side
from actors.orchestrator import OrchestratorActor
from actors.router import Router

PAIR = "BTC/USDT"


class _Describes:
    def describe(self) -> str:
        return "stuck"


class StuckCore:
    """Waits for an answer until told to stop waiting; records what it processes."""

    pair = PAIR
    generation = 0
    spec = None

    def __init__(self) -> None:
        self.strategy = _Describes()
        self.waiting = True
        self.stopped_waiting = 0
        self.processed: list[int] = []

    def awaiting(self, ts_ms: int) -> bool:
        return self.waiting

    def stop_waiting(self) -> None:
        self.waiting = False
        self.stopped_waiting += 1

    def process_market_tick(self, tick: MarketTick) -> list[object]:
        self.processed.append(tick.ts_ms)
        return []

    def handle(self, message: object) -> list[object]:
        return []

    def answer(self, query: object) -> object:
        return None


def _tick(ts_ms: int) -> MarketTick:
    return MarketTick(pair=PAIR, ts_ms=ts_ms, price=100.0, bid=99.9, ask=100.1, amount=1.0,
                      side=Side.BUY)


@pytest.mark.parametrize(("hold_limit_s", "released"), [(0.0, True), (60.0, False)])
def test_a_heartbeat_releases_ticks_held_past_the_hold_limit_only(hold_limit_s, released):
    router = Router()
    handle = router.add_pair(PAIR, max_inflight=8)
    core = StuckCore()
    inbox = handle.new_inbox()
    ref = OrchestratorActor.start(core, router, handle, inbox, hold_limit_s=hold_limit_s)
    try:
        handle.attach(ref, 0, inbox)
        for ts in (1, 2, 3):
            assert handle.deliver(_tick(ts), False, threading.Event())
        assert ref.ask(Ping(), timeout=5) == Ping()
        # The ask's reply comes after the doorbell the first tick rang (one pykka inbox).
        if released:
            assert core.stopped_waiting == 1
            assert core.processed == [1, 2, 3]
            assert handle.ticks == 3
            assert len(inbox) == 0
        else:
            assert core.stopped_waiting == 0
            assert core.processed == []
            assert handle.ticks == 0
            assert len(inbox) == 3  # held, taking 3 of the 8 credits
            delivered = [handle.deliver(_tick(ts), False, threading.Event())
                         for ts in range(4, 10)]
            assert delivered == [True] * 5 + [False]
    finally:
        ref.stop(timeout=5)
