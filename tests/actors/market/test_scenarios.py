"""Scripted scenario paths: known shapes for scenario tests."""

from __future__ import annotations

import itertools

import pytest

from actors.market.scenarios import SCENARIOS, scenario_ticks
from actors.market.simulator import profile_for
from actors.messages import MarketTick, Side

START_MS = 1_700_000_000_000


def prices(ticks: list[MarketTick]) -> list[float]:
    return [t.price for t in ticks]


def ema_crosses(values: list[float], fast_n: int = 10, slow_n: int = 30) -> int:
    fast = slow = values[0]
    above, crosses = False, 0
    for i, v in enumerate(values):
        fast += 2 / (fast_n + 1) * (v - fast)
        slow += 2 / (slow_n + 1) * (v - slow)
        if i >= slow_n and (fast > slow) != above:
            crosses += 1
        above = fast > slow
    return crosses


@pytest.mark.parametrize("kind", SCENARIOS)
def test_every_scenario_is_deterministic_sane_and_ordered(kind: str) -> None:
    """n sane ticks of the pair, in time order, identical for identical arguments."""
    first = scenario_ticks(kind, "BTC/USDT", seed=3, start_ms=START_MS)
    second = scenario_ticks(kind, "BTC/USDT", seed=3, start_ms=START_MS)

    assert first == second
    assert len(first) == 600
    assert all(t.is_sane() and t.pair == "BTC/USDT" for t in first)
    assert all(a.ts_ms < b.ts_ms for a, b in itertools.pairwise(first))
    assert first[0].ts_ms == START_MS


@pytest.mark.parametrize("kind", SCENARIOS)
def test_the_seed_changes_the_noise_not_the_shape(kind: str) -> None:
    """Another seed gives other ticks."""
    a = scenario_ticks(kind, "ETH/USDT", seed=1, start_ms=START_MS)
    b = scenario_ticks(kind, "ETH/USDT", seed=2, start_ms=START_MS)

    assert prices(a) != prices(b)


def test_quotes_are_one_tick_wide_and_the_trade_side_follows_the_move() -> None:
    """An up-move is a buy at the ask, anything else a sell at the bid, one tick apart."""
    ticks = scenario_ticks("chop", "BTC/USDT", start_ms=START_MS)

    for prev, t in itertools.pairwise(ticks):
        assert t.ask - t.bid == pytest.approx(0.01)
        assert t.side is (Side.BUY if t.price > prev.price else Side.SELL)
        assert t.price == (t.ask if t.side is Side.BUY else t.bid)


def test_uptrend_rises_steadily() -> None:
    """+0.1 % a tick: 600 ticks end ~80 % higher, and most ticks are up-moves."""
    p = prices(scenario_ticks("uptrend", "BTC/USDT", start_ms=START_MS))

    assert 1.6 < p[-1] / p[0] < 2.0
    assert sum(b > a for a, b in itertools.pairwise(p)) > 0.9 * len(p)


def test_downtrend_falls_steadily() -> None:
    """-0.1 % a tick: 600 ticks end ~45 % lower."""
    p = prices(scenario_ticks("downtrend", "SOL/USDT", start_ms=START_MS))

    assert 0.5 < p[-1] / p[0] < 0.62
    assert sum(b < a for a, b in itertools.pairwise(p)) > 0.9 * len(p)


def test_chop_stays_in_a_narrow_range_with_many_crosses() -> None:
    """The price keeps within a percent or two of where it began; the EMAs cross many times."""
    p = prices(scenario_ticks("chop", "ETH/USDT", start_ms=START_MS))

    assert max(p) / min(p) - 1 < 0.02
    assert abs(p[-1] / p[0] - 1) < 0.01
    assert ema_crosses(p) >= 10


def test_flash_crash_drops_thirty_percent_within_ten_seconds_then_recovers_partly() -> None:
    """Calm, then -30 % within ~10 s, then about half of it won back."""
    ticks = scenario_ticks("flash_crash", "BTC/USDT", start_ms=START_MS, interval_ms=1000)
    p = prices(ticks)
    before = p[299]
    bottom_i = min(range(len(p)), key=p.__getitem__)

    assert max(p[:300]) / min(p[:300]) - 1 < 0.01
    assert p[bottom_i] / before == pytest.approx(0.70, abs=0.01)
    assert ticks[bottom_i].ts_ms - ticks[300].ts_ms <= 10_000
    assert 0.8 < p[-1] / before < 0.9


def test_flash_crash_at_minute_bars_happens_within_one_bar() -> None:
    """With one tick a minute the whole crash is a single tick."""
    p = prices(scenario_ticks("flash_crash", "BTC/USDT", start_ms=START_MS, interval_ms=60_000))

    assert p[300] / p[299] == pytest.approx(0.70, abs=0.01)


def test_gap_leaves_ten_minutes_without_ticks_and_resumes_five_percent_away() -> None:
    """One silent stretch of 10 minutes, after which the price is ~5 % lower."""
    ticks = scenario_ticks("gap", "BTC/USDT", start_ms=START_MS, interval_ms=1000)
    gaps = [(b.ts_ms - a.ts_ms, i) for i, (a, b) in enumerate(itertools.pairwise(ticks))]
    longest, at = max(gaps)

    assert longest >= 600_000
    assert sorted(gaps)[-2][0] == 1000
    assert ticks[at + 1].price / ticks[at].price == pytest.approx(0.95, abs=0.005)


def test_start_price_interval_and_length_are_honoured() -> None:
    """A given start price, interval and n shape the ticks."""
    ticks = scenario_ticks(
        "chop", "XRP/USDT", n=50, start_ms=START_MS, interval_ms=250, start_price=0.61,
    )

    assert len(ticks) == 50
    assert ticks[0].price == pytest.approx(0.61, abs=0.0002)
    assert ticks[1].ts_ms - ticks[0].ts_ms == 250


def test_the_default_start_price_is_the_pairs_profile_price() -> None:
    """Without a start price the scenario starts where the simulator would."""
    ticks = scenario_ticks("uptrend", "ETH/BTC", start_ms=START_MS)

    assert ticks[0].price == pytest.approx(profile_for("ETH/BTC").start_price, rel=1e-3)


def test_a_tiny_start_price_still_gets_positive_quotes() -> None:
    """A start price far below the pair's tick size switches to a finer grid."""
    ticks = scenario_ticks("flash_crash", "BTC/USDT", start_ms=START_MS, start_price=0.0005)

    assert all(t.is_sane() for t in ticks)


def test_an_unknown_kind_names_the_valid_ones() -> None:
    """A typo fails with every valid scenario in the message."""
    with pytest.raises(ValueError, match="moon") as info:
        scenario_ticks("moon", "BTC/USDT", start_ms=START_MS)

    assert all(kind in str(info.value) for kind in SCENARIOS)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 3}, "n >= 10"),
        ({"interval_ms": 0}, "interval_ms"),
        ({"start_price": -1.0}, "start_price"),
        ({"start_price": float("nan")}, "start_price"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, float], match: str) -> None:
    """Too few ticks, a non-positive interval or a bad start price raise ValueError."""
    with pytest.raises(ValueError, match=match):
        scenario_ticks("uptrend", "BTC/USDT", start_ms=START_MS, **kwargs)  # type: ignore[arg-type]
