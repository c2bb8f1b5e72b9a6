"""The pair actor's shell: holding ticks for an order's answer (given up at a heartbeat past the
hold limit) and pacing its marks to what the state actor has read."""

from __future__ import annotations

import threading

import pytest

from actors.messages import STATE, Envelope, MarketTick, MarkPrices, Ping, RaisePeak, Side
from actors.pair.actor import OrchestratorActor
from actors.pair.pool import PairPool
from actors.router import Router
from tests.helpers import eventually

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

    def awaiting(self) -> bool:
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


class MarkingCore(StuckCore):
    """Never waits; marks on every tick, with a new trailing peak on the odd ones."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = False

    def process_market_tick(self, tick: MarketTick) -> list[object]:
        self.processed.append(tick.ts_ms)
        peaks = ((PAIR, 1_000.0 + tick.ts_ms),) if tick.ts_ms % 2 else ()
        return [Envelope(STATE, MarkPrices(ts_ms=tick.ts_ms, marks=((PAIR, float(tick.ts_ms)),),
                                           peaks=peaks))]


class Recording(Router):
    """Records everything the pair sends, in order, and its marks on their own; nothing is
    delivered."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, object]] = []
        self.marks: list[MarkPrices] = []

    def tell(self, to: str, message: object) -> None:
        self.sent.append((to, message))
        if to == STATE and isinstance(message, MarkPrices):
            self.marks.append(message)


def _three_ticks_then_state_reads_then_one(core: StuckCore) -> tuple[Recording, bool, int]:
    """Ticks 1-3 while state reads nothing, then state reads the pair's mark, then tick 4.
    Returns what the pair sent, whether a mark was unread after tick 3 and how many marks
    had gone out by then."""
    router = Recording()
    handle = router.add_pair(PAIR, max_inflight=16)
    inbox = handle.new_inbox()
    ref = OrchestratorActor.start(core, router, handle, inbox)
    try:
        handle.attach(ref, 0, inbox)
        for ts in (1, 2, 3):
            assert handle.deliver(_tick(ts), False, threading.Event())
        ref.ask(Ping(), timeout=5)  # after the three ticks
        unread, marks_by_then = handle.mark_unread, len(router.marks)
        handle.mark_unread = False  # what the state actor does when it reads a mark
        assert handle.deliver(_tick(4), False, threading.Event())
        ref.ask(Ping(), timeout=5)
    finally:
        ref.stop(timeout=5)
    return router, unread, marks_by_then


def test_a_pair_sends_its_next_mark_only_once_state_has_read_the_last_one():
    """Marks made meanwhile are merged: the latest price and every peak, sent once."""
    core = MarkingCore()
    router, unread, marks_by_then = _three_ticks_then_state_reads_then_one(core)

    assert unread is True
    assert marks_by_then == 1 and router.marks[0].ts_ms == 1
    merged = router.marks[1]
    assert merged.ts_ms == 4 and merged.marks == ((PAIR, 4.0),)
    assert merged.peaks == ((PAIR, 1_003.0),)  # tick 3's peak, held, rides with tick 4's mark
    assert core.processed == [1, 2, 3, 4]


class SlowCore(MarkingCore):
    """A strategy that takes 30 ms a tick and sends nothing."""

    def process_market_tick(self, tick: MarketTick) -> list[object]:
        threading.Event().wait(0.03)  # the work itself, not a synchronisation
        self.processed.append(tick.ts_ms)
        return []


def test_a_slow_pair_yields_its_pool_worker_to_the_other_pairs_between_ticks():
    """One worker: eight 30-ms ticks wait for the slow pair when the other pair is pinged.
    The ping is answered after a turn of TURN_S (two or so ticks), not after all eight."""
    router = Router()
    pool = PairPool(1, stall_s=60).start()
    slow, other = SlowCore(), StuckCore()
    other.waiting = False
    refs = []
    try:
        for pair, core in ((PAIR, slow), ("ETH/USDT", other)):
            core.pair = pair
            handle = router.add_pair(pair, max_inflight=16)
            inbox = handle.new_inbox()
            ref = OrchestratorActor.start(core, router, handle, inbox, pool=pool)
            handle.attach(ref, 0, inbox)
            refs.append(ref)
        assert refs[1].ask(Ping(), timeout=5) == Ping()  # both started
        for ts in range(1, 9):
            assert router.pairs[PAIR].deliver(_tick(ts), False, threading.Event())
        assert refs[1].ask(Ping(), timeout=5) == Ping()
        processed_by_then = len(slow.processed)
        assert refs[0].ask(Ping(), timeout=5) == Ping()
        eventually(lambda: len(slow.processed) == 8, timeout=5, message="all eight ticks")
    finally:
        for ref in refs:
            ref.stop(timeout=5)
        pool.close()
    assert 1 <= processed_by_then <= 3, processed_by_then


class PeakingCore(StuckCore):
    """Never waits; raises the trailing peak on every tick (a long rise), with no mark of
    its own, and proposes an exit on tick 3."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = False

    def process_market_tick(self, tick: MarketTick) -> list[object]:
        self.processed.append(tick.ts_ms)
        out: list[object] = [Envelope(STATE, RaisePeak(pair=PAIR, price=1_000.0 + tick.ts_ms))]
        if tick.ts_ms == 3:
            out.append(Envelope("risk", "exit proposal"))
        return out


def test_trailing_peaks_ride_on_paced_marks_never_as_messages_of_their_own():
    """Peaks raised while state has not read the pair's last mark are held and merged: the
    highest goes with the next mark, and nothing else the pair sends waits for it."""
    router, _, _ = _three_ticks_then_state_reads_then_one(PeakingCore())

    assert not [m for _, m in router.sent if isinstance(m, RaisePeak)]
    assert [(m.ts_ms, m.marks, m.peaks) for m in router.marks] == [
        (1, ((PAIR, 100.0),), ((PAIR, 1_001.0),)),
        (4, ((PAIR, 100.0),), ((PAIR, 1_004.0),)),  # ticks 2-4's peaks, merged
    ]
    assert ("risk", "exit proposal") in router.sent  # not held back with the peak
