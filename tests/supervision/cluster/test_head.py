"""The head's side of a link without Ray: what a shard's batch does to the head's actors."""

from __future__ import annotations

from actors.messages import (
    RISK,
    STATE,
    ExitReason,
    MarkPrices,
    OrderType,
    PairGeneration,
    ProposeOrder,
    Side,
)
from actors.router import Router
from supervision.cluster import ClusterHead, Uplink
from supervision.config import build_config

PAIRS = "BTC/USDT,ETH/USDT,SOL/USDT,XRP/USDT"


class Inbox:
    """Stands in for an actor: keeps what it is told."""

    def __init__(self) -> None:
        self.told: list[object] = []

    def tell(self, message: object) -> None:
        self.told.append(message)


def head_with(inboxes: dict[str, Inbox]) -> ClusterHead:
    config = build_config({"cluster": {"address": "auto", "shards": 2}}, {"pairs": PAIRS})
    router = Router()
    router.services.update(inboxes)  # type: ignore[arg-type]
    return ClusterHead(config, router, session=None, start_ms=1, specs=())


def proposal(pair: str, generation: int = 0) -> ProposeOrder:
    return ProposeOrder(proposal_id=f"p-{pair}", pair=pair, generation=generation,
                        side=Side.BUY, order_type=OrderType.MARKET, reason=ExitReason.ENTRY,
                        price=1.0, bid=1.0, ask=1.0, ts_ms=1)


def mark(pair: str, price: float, peak: float = 0.0) -> MarkPrices:
    return MarkPrices(ts_ms=1, marks=((pair, price),), peaks=((pair, peak),) if peak else ())


def test_a_batch_reaches_risk_and_state_in_order_and_marks_are_paced_per_pair():
    """One mark per pair waits at state; a newer one is held, merged, and sent once read."""
    risk, state = Inbox(), Inbox()
    head = head_with({RISK: risk, STATE: state})

    head.dispatch(Uplink(shard=0, generation=0, messages=(
        (STATE, mark("BTC/USDT", 1.0, peak=5.0)), (RISK, proposal("BTC/USDT")),
        (STATE, mark("BTC/USDT", 2.0)), (STATE, PairGeneration(pair="BTC/USDT",
                                                               generation=3)))))

    assert risk.told == [proposal("BTC/USDT")]
    assert state.told == [mark("BTC/USDT", 1.0, peak=5.0),
                          PairGeneration(pair="BTC/USDT", generation=3)]
    assert head.pair_generation["BTC/USDT"] == 3
    head.release_marks(0)
    assert len(state.told) == 2  # state has not read the first mark yet

    head.router.pairs["BTC/USDT"].mark_unread = False  # what the state actor does on reading
    head.release_marks(0)

    assert state.told[-1] == mark("BTC/USDT", 2.0)


def test_a_batch_of_a_shard_generation_the_head_moved_on_from_reaches_nobody():
    risk, state = Inbox(), Inbox()
    head = head_with({RISK: risk, STATE: state})
    head.fence.advance(1)

    head.dispatch(Uplink(shard=1, generation=0, messages=((RISK, proposal("SOL/USDT")),)))

    assert (risk.told, state.told) == ([], [])
    assert (head.fence.refused_batches, head.fence.refused_proposals) == (1, 1)


def test_every_pair_has_a_handle_on_the_head_that_names_its_shard():
    head = head_with({})

    assert {p: h.shard for p, h in head.router.pairs.items()} == {
        "BTC/USDT": "0", "ETH/USDT": "0", "SOL/USDT": "1", "XRP/USDT": "1"}
