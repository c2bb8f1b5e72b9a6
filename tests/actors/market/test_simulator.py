"""The embedded market simulator: deterministic, crypto-looking ticks."""

from __future__ import annotations

import itertools
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from actors.market.simulator import (
    MarketSimulator,
    PairProfile,
    decimals_of,
    profile_for,
    reference_usd,
    round_to_tick,
)
from actors.messages import MarketTick, Side

START_MS = 1_700_000_000_000
REPO = Path(__file__).resolve().parents[3]


def take(sim: MarketSimulator, n: int) -> list[MarketTick]:
    return list(itertools.islice(sim.ticks(), n))


def of_pair(ticks: list[MarketTick], pair: str) -> list[MarketTick]:
    return [t for t in ticks if t.pair == pair]


def mid(tick: MarketTick) -> float:
    return (tick.bid + tick.ask) / 2


def log_returns(ticks: list[MarketTick]) -> list[float]:
    mids = [mid(t) for t in ticks]
    return [math.log(b / a) for a, b in itertools.pairwise(mids)]


def on_grid(value: float, step: float) -> bool:
    units = value / step
    return abs(units - round(units)) < 1e-6


# -- determinism -------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_ticks() -> None:
    """Two simulators with one seed produce identical sequences."""
    pairs = ["BTC/USDT", "ETH/USDT", "XRP/USDT"]

    first = take(MarketSimulator(pairs, seed=42, start_ms=START_MS), 3000)
    second = take(MarketSimulator(pairs, seed=42, start_ms=START_MS), 3000)

    assert first == second


def test_each_call_to_ticks_starts_the_same_market_afresh() -> None:
    """Iterating ticks() twice on one simulator replays the same market."""
    sim = MarketSimulator(["BTC/USDT", "ETH/USDT"], seed=1, start_ms=START_MS)

    assert take(sim, 500) == take(sim, 500)


def test_different_seeds_give_different_ticks() -> None:
    """Another seed is another market."""
    a = take(MarketSimulator(["BTC/USDT"], seed=1, start_ms=START_MS), 200)
    b = take(MarketSimulator(["BTC/USDT"], seed=2, start_ms=START_MS), 200)

    assert [t.price for t in a] != [t.price for t in b]


def test_a_pair_follows_its_own_path_whatever_other_pairs_are_simulated() -> None:
    """Adding a pair does not change the ticks of the others (independent streams)."""
    alone = take(MarketSimulator(["BTC/USDT"], seed=5, start_ms=START_MS), 300)
    together = take(MarketSimulator(["ETH/USDT", "BTC/USDT"], seed=5, start_ms=START_MS), 900)

    assert of_pair(together, "BTC/USDT")[:300] == alone


def test_different_pairs_move_independently() -> None:
    """Two pairs with the same profile still take different, uncorrelated paths."""
    ticks = take(MarketSimulator(["BTC/USDT", "BTC/USDC"], seed=3, start_ms=START_MS), 8000)

    a = log_returns(of_pair(ticks, "BTC/USDT"))[:3500]
    b = log_returns(of_pair(ticks, "BTC/USDC"))[:3500]

    assert a != b
    assert abs(statistics.correlation(a, b)) < 0.1


def test_the_market_is_the_same_in_every_process() -> None:
    """Seeding never uses Python's per-process string hash."""
    code = (
        "from actors.market.simulator import MarketSimulator\n"
        "import itertools\n"
        "sim = MarketSimulator(['BTC/USDT', 'DOGE/USDT'], seed=9, start_ms=1_700_000_000_000)\n"
        "print([t.price for t in itertools.islice(sim.ticks(), 20)])\n"
    )

    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": str(hash_seed), "PYTHONPATH": str(REPO)},
        ).stdout
        for hash_seed in (1, 2)
    }

    assert len(outputs) == 1


# -- shape of the ticks ------------------------------------------------------------------------


def test_ticks_are_merged_in_timestamp_order_and_all_sane() -> None:
    """The merged stream never goes back in time and every tick passes is_sane."""
    ticks = take(MarketSimulator(["BTC/USDT", "ETH/USDT", "DOGE/USDT"], 11, START_MS), 20_000)

    assert all(a.ts_ms <= b.ts_ms for a, b in itertools.pairwise(ticks))
    assert all(t.is_sane() for t in ticks)
    assert ticks[0].ts_ms >= START_MS


def test_spreads_are_positive_and_prices_sit_on_the_tick_grid() -> None:
    """Bid below ask, both multiples of the pair's tick size; the trade is at one of them."""
    pairs = ["BTC/USDT", "XRP/USDT", "ETH/BTC", "SHIB/USDT"]
    ticks = take(MarketSimulator(pairs, seed=4, start_ms=START_MS), 20_000)

    for t in ticks:
        step = profile_for(t.pair).tick_size
        assert t.ask > t.bid > 0
        assert on_grid(t.bid, step)
        assert on_grid(t.ask, step)
        assert t.price == (t.ask if t.side is Side.BUY else t.bid)


def test_prices_have_no_binary_noise() -> None:
    """A BTC price prints with at most two decimals, as an exchange would send it."""
    ticks = take(MarketSimulator(["BTC/USDT"], seed=8, start_ms=START_MS), 2000)

    assert all(len(repr(t.price).split(".")[1]) <= 2 for t in ticks)


def test_amounts_are_positive_whole_lots_of_varied_size() -> None:
    """Trade sizes are lot multiples, mostly small, occasionally large."""
    ticks = take(MarketSimulator(["ETH/USDT"], seed=6, start_ms=START_MS), 5000)
    lot = profile_for("ETH/USDT").lot_size
    amounts = [t.amount for t in ticks]

    assert all(a >= lot and on_grid(a, lot) for a in amounts)
    assert max(amounts) > 20 * statistics.median(amounts)


def test_both_sides_trade_about_equally() -> None:
    """Takers buy and sell in roughly equal numbers."""
    ticks = take(MarketSimulator(["SOL/USDT"], seed=12, start_ms=START_MS), 10_000)

    buys = sum(t.side is Side.BUY for t in ticks)

    assert 0.45 < buys / len(ticks) < 0.55


def test_arrival_times_are_jittered_around_the_interval() -> None:
    """Gaps average tick_interval_ms and vary within +-50 %."""
    sim = MarketSimulator(["BTC/USDT"], seed=2, start_ms=START_MS, tick_interval_ms=250.0)
    gaps = [b.ts_ms - a.ts_ms for a, b in itertools.pairwise(take(sim, 10_000))]

    assert 240 < statistics.mean(gaps) < 260
    assert min(gaps) >= 124
    assert max(gaps) <= 375
    assert len(set(gaps)) > 100


# -- the price process -------------------------------------------------------------------------


def test_calm_volatility_is_about_one_basis_point_per_tick() -> None:
    """The quietest minutes of BTC move ~1e-4 per 250 ms tick, like a calm crypto market."""
    returns = log_returns(take(MarketSimulator(["BTC/USDT"], 21, START_MS), 4 * 3600))
    windows = sorted(statistics.pstdev(returns[i:i + 240]) for i in range(0, 14_000, 240))

    assert 0.7e-4 < windows[len(windows) // 10] < 1.3e-4


def test_volatility_regimes_alternate_in_a_long_run() -> None:
    """Over three hours some minutes are about three times as volatile as others."""
    returns = log_returns(take(MarketSimulator(["BTC/USDT"], 0, START_MS), 4 * 3600 * 3))
    no_jumps = [r for r in returns if abs(r) < 0.004]
    windows = sorted(statistics.pstdev(no_jumps[i:i + 240]) for i in range(0, 43_000, 240))
    quiet, busy = windows[len(windows) // 10], windows[9 * len(windows) // 10]

    assert busy / quiet > 2.2


def test_volatile_regimes_widen_the_spread() -> None:
    """BTC quotes one tick wide when calm and several ticks wide when volatile."""
    ticks = take(MarketSimulator(["BTC/USDT"], 0, START_MS), 4 * 3600 * 3)
    widths = {round((t.ask - t.bid) / 0.01) for t in ticks}

    assert 1 in widths
    assert max(widths) >= 3


def test_jumps_occur_in_a_long_run() -> None:
    """Six hours of three pairs contain several one-tick moves of at least half a percent."""
    pairs = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    ticks = take(MarketSimulator(pairs, seed=0, start_ms=START_MS), 3 * 4 * 3600 * 6)

    jumps = [r for p in pairs for r in log_returns(of_pair(ticks, p)) if abs(r) > 0.0045]

    assert len(jumps) >= 5
    assert all(abs(r) < 0.035 for r in jumps)
    assert any(r > 0 for r in jumps)
    assert any(r < 0 for r in jumps)


def test_prices_move_some_percent_within_an_hour() -> None:
    """An hour of BTC spans a range of at least one percent, but not a crash."""
    ticks = take(MarketSimulator(["BTC/USDT"], seed=13, start_ms=START_MS), 4 * 3600)
    prices = [t.price for t in ticks]

    assert 0.01 < max(prices) / min(prices) - 1 < 0.25


def test_an_ema_crossover_happens_within_240_ticks_after_warm_up() -> None:
    """A fast/slow EMA strategy warmed up on history sees a cross within a minute of live ticks."""
    pairs = ["BTC/USDT", "ETH/USDT", "XRP/USDT", "ETH/BTC"]
    for seed in range(10):
        sim = MarketSimulator(pairs, seed=seed, start_ms=START_MS)
        live = take(sim, 240 * len(pairs) * 2)
        for pair in pairs:
            prices = [t.price for t in sim.warmup_history(pair, 100)]
            fast = slow = prices[0]
            for p in prices:
                fast += (2 / 11) * (p - fast)
                slow += (2 / 31) * (p - slow)
            above = fast > slow

            crossed = False
            for t in of_pair(live, pair)[:240]:
                fast += (2 / 11) * (t.price - fast)
                slow += (2 / 31) * (t.price - slow)
                if (fast > slow) != above:
                    crossed = True
                    break

            assert crossed, f"no EMA(10)/EMA(30) cross for {pair} with seed {seed}"


# -- warm-up -----------------------------------------------------------------------------------


def test_warm_up_history_ends_just_before_the_start() -> None:
    """n ticks, oldest first, all before start_ms and about n intervals long."""
    sim = MarketSimulator(["BTC/USDT"], seed=1, start_ms=START_MS)

    history = sim.warmup_history("BTC/USDT", 400)

    assert len(history) == 400
    assert all(a.ts_ms < b.ts_ms for a, b in itertools.pairwise(history))
    assert START_MS - 1000 < history[-1].ts_ms < START_MS
    assert 90_000 < START_MS - history[0].ts_ms < 110_000
    assert all(t.is_sane() and t.pair == "BTC/USDT" for t in history)


def test_warm_up_history_joins_the_live_path_without_a_seam() -> None:
    """The last warm-up tick and the first live tick are about one tick's move apart."""
    sim = MarketSimulator(["BTC/USDT", "XRP/USDT"], seed=3, start_ms=START_MS)
    live = take(sim, 10)

    for pair in sim.pairs:
        last_warm = sim.warmup_history(pair, 50)[-1]
        first_live = of_pair(live, pair)[0]

        assert abs(math.log(mid(first_live) / mid(last_warm))) < 0.002


def test_asking_for_warm_up_does_not_change_the_live_ticks() -> None:
    """Live ticks are the same whether or not history was requested first."""
    plain = MarketSimulator(["ETH/USDT"], seed=4, start_ms=START_MS)
    warmed = MarketSimulator(["ETH/USDT"], seed=4, start_ms=START_MS)

    warmed.warmup_history("ETH/USDT", 1000)

    assert take(plain, 300) == take(warmed, 300)


def test_a_longer_warm_up_only_adds_older_ticks() -> None:
    """The last 100 ticks of a 300-tick history are the 100-tick history."""
    sim = MarketSimulator(["SOL/USDT"], seed=9, start_ms=START_MS)

    assert sim.warmup_history("SOL/USDT", 300)[-100:] == sim.warmup_history("SOL/USDT", 100)


def test_warm_up_of_an_unknown_pair_or_reaching_before_epoch_is_refused() -> None:
    """Misuse raises with a message instead of yielding odd ticks."""
    sim = MarketSimulator(["BTC/USDT"], seed=0, start_ms=10_000)

    with pytest.raises(KeyError, match="ETH/USDT"):
        sim.warmup_history("ETH/USDT", 10)
    with pytest.raises(ValueError, match="epoch"):
        sim.warmup_history("BTC/USDT", 1000)


def test_bad_constructor_arguments_are_refused() -> None:
    """No pairs, a duplicate, a bad pair, a non-positive start or interval raise ValueError."""
    with pytest.raises(ValueError, match="at least one"):
        MarketSimulator([], seed=0, start_ms=START_MS)
    with pytest.raises(ValueError, match="twice"):
        MarketSimulator(["BTC/USDT", "BTC/USDT"], seed=0, start_ms=START_MS)
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        MarketSimulator(["btcusdt"], seed=0, start_ms=START_MS)
    with pytest.raises(ValueError, match="start_ms"):
        MarketSimulator(["BTC/USDT"], seed=0, start_ms=0)
    with pytest.raises(ValueError, match="tick_interval_ms"):
        MarketSimulator(["BTC/USDT"], seed=0, start_ms=START_MS, tick_interval_ms=0)


# -- profiles ----------------------------------------------------------------------------------


def test_well_known_pairs_get_realistic_profiles() -> None:
    """BTC, ETH and XRP start near their market prices on their exchange grids."""
    assert profile_for("BTC/USDT") == PairProfile(60_000.0, 0.01, 0.00001, 1, 2.0e-4)
    eth = profile_for("ETH/USDC")
    xrp = profile_for("XRP/FDUSD")

    assert (eth.start_price, eth.tick_size, eth.lot_size) == (3000.0, 0.01, 0.0001)
    assert (xrp.start_price, xrp.tick_size) == (0.5, 0.0001)


@pytest.mark.parametrize(
    "base", ["SOL", "BNB", "DOGE", "ADA", "LTC", "DOT", "AVAX", "LINK", "TRX", "SHIB"],
)
def test_other_known_bases_start_on_their_own_grid(base: str) -> None:
    """Each known base has a start price that is a whole number of at least 100 ticks."""
    profile = profile_for(f"{base}/USDT")

    assert on_grid(profile.start_price, profile.tick_size)
    assert profile.start_price >= 100 * profile.tick_size
    assert profile.start_price != 1.0


def test_euro_quotes_are_slightly_lower_than_dollar_quotes() -> None:
    """BTC/EUR starts a little under BTC/USDT, on the same grid."""
    usd, eur = profile_for("BTC/USDT"), profile_for("BTC/EUR")

    assert 0.85 * usd.start_price < eur.start_price < usd.start_price
    assert eur.tick_size == usd.tick_size


def test_cross_pairs_derive_their_price_and_a_relative_tick() -> None:
    """ETH/BTC is ETH's dollar price over BTC's, on a tick near 1e-4 of that price."""
    eth_btc = profile_for("ETH/BTC")
    xrp_eth = profile_for("XRP/ETH")

    assert eth_btc.start_price == pytest.approx(3000 / 60_000)
    assert xrp_eth.start_price == pytest.approx(0.5 / 3000, rel=1e-3)
    for p in (eth_btc, xrp_eth):
        assert 2e-5 < p.tick_size / p.start_price < 4e-4
        assert on_grid(p.start_price, p.tick_size)


def test_unknown_bases_default_to_one_dollar_with_four_decimals() -> None:
    """A base the table does not know starts at 1.0 on a 0.0001 grid."""
    profile = profile_for("ZZZ/USDT")

    assert (profile.start_price, profile.tick_size) == (1.0, 0.0001)


def test_reference_usd_values_known_assets_and_quotes() -> None:
    """Stable coins are worth one dollar, BTC its price, an unknown asset nothing known."""
    assert reference_usd("USDT") == 1.0
    assert reference_usd("BTC") == 60_000.0
    assert 1.0 < (reference_usd("EUR") or 0) < 1.2
    assert reference_usd("ZZZ") is None


def test_rounding_helpers_remove_binary_noise() -> None:
    """round_to_tick snaps to the grid and prints cleanly; decimals_of reads the grid."""
    assert round_to_tick(61837.619999999995, 0.01) == 61837.62
    assert round_to_tick(0.123456, 0.0001) == 0.1235
    assert decimals_of(0.01) == 2
    assert decimals_of(1e-8) == 8
    assert decimals_of(10.0) == 0


def test_a_pair_added_while_running_ticks_from_the_current_market_time() -> None:
    """add_pair from another thread: the new pair joins the merged stream at "now"."""
    sim = MarketSimulator(["BTC/USDT"], seed=1, start_ms=1_700_000_000_000)
    ticks = sim.ticks()
    before = [next(ticks) for _ in range(100)]

    sim.add_pair("SOL/USDT")
    after = [next(ticks) for _ in range(200)]

    sol = [t for t in after if t.pair == "SOL/USDT"]
    assert sol and sol[0].ts_ms >= before[-1].ts_ms
    assert [t.ts_ms for t in after] == sorted(t.ts_ms for t in after)


def test_a_removed_pair_stops_ticking_and_can_come_back() -> None:
    """remove_pair ends a pair's ticks; add_pair brings it back from the current time."""
    sim = MarketSimulator(["BTC/USDT", "ETH/USDT"], seed=1, start_ms=1_700_000_000_000)
    ticks = sim.ticks()
    [next(ticks) for _ in range(10)]

    sim.remove_pair("ETH/USDT")
    gone = [next(ticks) for _ in range(50)]
    sim.add_pair("ETH/USDT")
    back = [next(ticks) for _ in range(50)]

    assert {t.pair for t in gone[1:]} == {"BTC/USDT"}
    assert any(t.pair == "ETH/USDT" for t in back)
