"""MarketDataCore: the one place ticks are dropped, counted and remembered."""

from __future__ import annotations

import math

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.market.core import DROP_REASONS, MarketDataCore
from actors.messages import MarketTick, Side

PAIRS = ("BTC/USDT", "ETH/USDT")


def tick(pair: str = "BTC/USDT", ts: int = 1000, price: float = 100.0, **kw: float) -> MarketTick:
    bid = kw.get("bid", price - 0.01)
    ask = kw.get("ask", price + 0.01)
    return MarketTick(pair=pair, ts_ms=ts, price=price, bid=bid, ask=ask)


# -- accepting ---------------------------------------------------------------------------------


def test_a_sane_tick_is_accepted_and_becomes_the_latest() -> None:
    """accept returns True, counts it and remembers it."""
    core = MarketDataCore(PAIRS)
    t = tick()

    assert core.accept(t) is True
    assert core.latest("BTC/USDT") == t
    assert core.accepted("BTC/USDT") == 1
    assert core.history("BTC/USDT") == (t,)
    assert core.latest("ETH/USDT") is None


def test_a_tick_of_an_unknown_pair_is_dropped_and_counted() -> None:
    """Unknown pairs count under unknown_pair, overall and for that pair."""
    core = MarketDataCore(PAIRS)

    assert core.accept(tick(pair="DOGE/USDT")) is False
    assert core.dropped()["unknown_pair"] == 1
    assert core.dropped("DOGE/USDT")["unknown_pair"] == 1
    assert core.dropped_for("DOGE/USDT") == 1
    assert core.last_drop_reason == "unknown_pair"


@pytest.mark.parametrize(
    "bad",
    [
        tick(price=math.nan),
        tick(price=math.inf),
        tick(price=0.0, bid=0.0, ask=0.01),
        tick(price=-1.0),
        tick(bid=101.0, ask=100.0),
        tick(bid=math.nan),
        tick(ask=-math.inf),
        MarketTick(pair="BTC/USDT", ts_ms=1000, price=1.0, bid=1.0, ask=1.0, amount=-1.0),
        MarketTick(pair="BTC/USDT", ts_ms=0, price=1.0, bid=1.0, ask=1.0),
    ],
    ids=["nan", "inf", "zero", "negative", "crossed", "nan-bid", "neg-inf-ask", "neg-amount",
         "ts-zero"],
)
def test_an_insane_tick_is_dropped_as_bad_price(bad: MarketTick) -> None:
    """Anything MarketTick.is_sane rejects is counted as bad_price and not remembered."""
    core = MarketDataCore(PAIRS)

    assert core.accept(bad) is False
    assert core.dropped("BTC/USDT")["bad_price"] == 1
    assert core.latest("BTC/USDT") is None
    assert core.history("BTC/USDT") == ()


def test_a_tick_older_than_the_last_accepted_is_dropped_as_time_backwards() -> None:
    """Going back in time is dropped; the same millisecond is fine."""
    core = MarketDataCore(PAIRS)
    core.accept(tick(ts=2000))

    assert core.accept(tick(ts=1999)) is False
    assert core.accept(tick(ts=2000, price=100.5)) is True
    assert core.dropped("BTC/USDT")["time_backwards"] == 1
    assert core.latest("BTC/USDT") == tick(ts=2000, price=100.5)


def test_time_is_checked_per_pair() -> None:
    """One pair's clock running ahead does not drop another pair's ticks."""
    core = MarketDataCore(PAIRS)
    core.accept(tick(pair="BTC/USDT", ts=5000))

    assert core.accept(tick(pair="ETH/USDT", ts=1000)) is True


def test_drop_counts_are_kept_per_pair_and_per_reason() -> None:
    """dropped() sums all pairs, dropped(pair) one pair, dropped_for(pair) its total."""
    core = MarketDataCore(PAIRS)
    core.accept(tick(pair="BTC/USDT", price=math.nan))
    core.accept(tick(pair="ETH/USDT", price=math.nan))
    core.accept(tick(pair="ETH/USDT", ts=5))
    core.accept(tick(pair="ETH/USDT", ts=4))

    assert core.dropped() == {"unknown_pair": 0, "bad_price": 2, "time_backwards": 1}
    assert core.dropped("ETH/USDT") == {"unknown_pair": 0, "bad_price": 1, "time_backwards": 1}
    assert core.dropped("BTC/USDT")["bad_price"] == 1
    assert core.dropped_for("ETH/USDT") == 2
    assert core.dropped_for("SOL/USDT") == 0


def test_the_returned_drop_counts_are_copies() -> None:
    """Changing a returned dict does not change the core's counts."""
    core = MarketDataCore(PAIRS)

    core.dropped()["bad_price"] = 99
    core.dropped("BTC/USDT")["bad_price"] = 99

    assert core.dropped()["bad_price"] == 0
    assert core.dropped("BTC/USDT")["bad_price"] == 0


# -- history -----------------------------------------------------------------------------------


@pytest.mark.parametrize("packed", [False, True])
def test_history_is_bounded_and_oldest_first(packed: bool) -> None:
    """The ring keeps the last history_size ticks; limit takes the newest of them."""
    core = MarketDataCore(PAIRS, history_size=5, packed=packed)
    for ts in range(1, 9):
        core.accept(tick(ts=ts))

    assert [t.ts_ms for t in core.history("BTC/USDT")] == [4, 5, 6, 7, 8]
    assert [t.ts_ms for t in core.history("BTC/USDT", 2)] == [7, 8]
    assert [t.ts_ms for t in core.history("BTC/USDT", 50)] == [4, 5, 6, 7, 8]
    assert core.history("BTC/USDT", 0) == ()
    assert core.accepted("BTC/USDT") == 8


def test_history_of_an_unknown_pair_names_it() -> None:
    """Asking for a pair the core does not track raises KeyError with the pair in it."""
    with pytest.raises(KeyError, match="DOGE/USDT"):
        MarketDataCore(PAIRS).history("DOGE/USDT")


@pytest.mark.parametrize("packed", [False, True])
def test_seeded_history_is_remembered_without_counting_anything(packed: bool) -> None:
    """Warm-up ticks fill the ring and set the latest, but are neither accepted nor dropped."""
    core = MarketDataCore(PAIRS, packed=packed)
    warm = [tick(ts=1), tick(ts=2, price=math.nan), tick(ts=3), tick(pair="ETH/USDT", ts=4)]

    kept = core.seed_history("BTC/USDT", warm)

    assert kept == 2
    assert [t.ts_ms for t in core.history("BTC/USDT")] == [1, 3]
    assert core.latest("BTC/USDT") == tick(ts=3)
    assert core.accepted("BTC/USDT") == 0
    assert sum(core.dropped().values()) == 0


def test_live_ticks_continue_after_seeded_history() -> None:
    """A live tick after the warm-up is appended; one before it is time_backwards."""
    core = MarketDataCore(PAIRS)
    core.seed_history("BTC/USDT", [tick(ts=10), tick(ts=20)])

    assert core.accept(tick(ts=15)) is False
    assert core.accept(tick(ts=30)) is True
    assert [t.ts_ms for t in core.history("BTC/USDT")] == [10, 20, 30]


def test_pairs_can_be_added_and_removed() -> None:
    """A new pair is accepted from then on; a removed one is unknown again."""
    core = MarketDataCore(["BTC/USDT"])

    core.add_pair("SOL/USDT")
    assert core.accept(tick(pair="SOL/USDT")) is True
    core.remove_pair("SOL/USDT")

    assert core.accept(tick(pair="SOL/USDT", ts=2000)) is False
    assert core.pairs == ("BTC/USDT",)
    assert core.dropped("SOL/USDT")["unknown_pair"] == 1


def test_bad_sizes_are_refused() -> None:
    """A history below one tick raises ValueError."""
    with pytest.raises(ValueError, match="history_size"):
        MarketDataCore(PAIRS, history_size=0)


# -- properties --------------------------------------------------------------------------------

any_float = st.floats(allow_nan=True, allow_infinity=True)
any_tick = st.builds(
    MarketTick,
    pair=st.sampled_from(["BTC/USDT", "ETH/USDT", "DOGE/USDT"]),
    ts_ms=st.integers(min_value=-10, max_value=10_000),
    price=any_float,
    bid=any_float,
    ask=any_float,
    amount=any_float,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(any_tick, max_size=60), st.booleans())
def test_accept_never_raises_and_only_remembers_sane_ticks(ticks: list[MarketTick],
                                                           packed: bool) -> None:
    """Arbitrary floats: no exception, accepted ticks are sane and in time, counts add up."""
    core = MarketDataCore(PAIRS, history_size=1000, packed=packed)

    results = [core.accept(t) for t in ticks]

    accepted = [t for t, ok in zip(ticks, results, strict=True) if ok]
    assert all(t.is_sane() and t.pair in PAIRS for t in accepted)
    assert sum(core.accepted(p) for p in PAIRS) == len(accepted)
    assert len(accepted) + sum(core.dropped().values()) == len(ticks)
    assert sum(core.dropped_for(p) for p in (*PAIRS, "DOGE/USDT")) == len(ticks) - len(accepted)
    for reason in DROP_REASONS:
        per_pair = sum(core.dropped(p)[reason] for p in (*PAIRS, "DOGE/USDT"))
        assert per_pair == core.dropped()[reason]
    for pair in PAIRS:
        stamps = [t.ts_ms for t in core.history(pair)]
        assert stamps == sorted(stamps)
        assert list(core.history(pair)) == [t for t in accepted if t.pair == pair]


@pytest.mark.parametrize("packed", [False, True])
def test_kept_ticks_come_back_equal_field_for_field_after_the_ring_wraps(packed: bool):
    """History gives back what was accepted (sides none, buy and sell, receive stamps: packed,
    those are 0), the newest ``history_size``, oldest first, however often the ring has
    wrapped."""
    core = MarketDataCore(("BTC/USDT",), history_size=7, packed=packed)
    sides = (None, Side.BUY, Side.SELL)
    ticks = [MarketTick(pair="BTC/USDT", ts_ms=1_000 + i, price=100.0 + i / 3, bid=99.5 + i / 7,
                        ask=100.5 + i / 3, amount=0.1 * i, side=sides[i % 3],
                        recv_ns=10**15 + i) for i in range(23)]
    for t in ticks:
        assert core.accept(t)

    kept = [attrs.evolve(t, recv_ns=0) for t in ticks] if packed else ticks
    assert core.history("BTC/USDT") == tuple(kept[-7:])
    assert core.history("BTC/USDT", 3) == tuple(kept[-3:])
    assert core.latest("BTC/USDT") is ticks[-1]
