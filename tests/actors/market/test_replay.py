"""Recorded CSV files replayed as ticks."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from actors.market.core import MarketDataCore
from actors.market.replay import FeedError, open_feeds, read_csv, validate_csv
from actors.messages import Side

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
TRADES = "timestamp_ms,price,amount,side\n"
CANDLES = "timestamp_ms,open,high,low,close,volume\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def shared(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"recorded data {name} not present beside the checkout ({DATA})")
    return path


# -- trades ------------------------------------------------------------------------------------


def test_a_trade_row_becomes_one_tick_at_the_touch_of_its_side(tmp_path: Path) -> None:
    """A taker buy trades at the ask with the bid a tick below; a sell at the bid."""
    path = write(tmp_path, "t.csv", TRADES + "1000,100.5,0.25,buy\n2000,100.49,1.5,sell\n")

    buy, sell = read_csv(path, "BTC/USDT")

    assert (buy.ts_ms, buy.price, buy.amount) == (1000, 100.5, 0.25)
    assert (buy.bid, buy.ask) == (100.49, 100.5)
    assert buy.side is Side.BUY
    assert (sell.price, sell.bid, sell.ask, sell.side) == (100.49, 100.49, 100.5, Side.SELL)


def test_a_trade_with_an_unknown_side_is_quoted_a_tick_either_side(tmp_path: Path) -> None:
    """Without a side the price is assumed to lie inside the book."""
    (tick,) = read_csv(write(tmp_path, "t.csv", TRADES + "1000,100.5,1,?\n"), "BTC/USDT")

    assert (tick.bid, tick.price, tick.ask, tick.side) == (100.49, 100.5, 100.51, None)


def test_a_tiny_price_gets_quotes_on_a_finer_grid(tmp_path: Path) -> None:
    """An unknown asset priced far below its default tick still gets a positive bid."""
    (tick,) = read_csv(write(tmp_path, "t.csv", TRADES + "1000,0.00000123,5,buy\n"), "ZZZ/USDT")

    assert tick.is_sane()
    assert tick.ask == 0.00000123
    assert 0 < tick.bid < tick.ask


def test_rows_that_do_not_parse_become_nan_ticks_and_the_feed_goes_on(tmp_path: Path) -> None:
    """Bad numbers, missing or extra columns yield NaN ticks, which the core counts."""
    text = TRADES + (
        "1000,100,1,buy\n"
        "2000,abc,1,buy\n"
        "3000,101\n"
        "4000,101,1,buy,extra\n"
        "oops,101,1,buy\n"
        "\n"
        "5000,102,1,sell\n"
    )
    core = MarketDataCore(["BTC/USDT"])

    ticks = list(read_csv(write(tmp_path, "t.csv", text), "BTC/USDT"))
    accepted = [t for t in ticks if core.accept(t)]

    assert len(ticks) == 6
    assert [t.price for t in accepted] == [100.0, 102.0]
    assert all(math.isnan(t.price) for t in ticks[1:5])
    assert [t.ts_ms for t in ticks] == [1000, 2000, 3000, 4000, 4000, 5000]
    assert core.dropped()["bad_price"] == 4


def test_undecodable_bytes_and_nul_characters_become_bad_rows(tmp_path: Path) -> None:
    """Binary garbage in the middle of a file is counted, not fatal."""
    path = tmp_path / "t.csv"
    path.write_bytes(
        TRADES.encode() + b"1000,100,1,buy\n2000,\xff\xfe,1,buy\n3\x0000,1,1\n4000,99,1,sell\n"
    )

    ticks = list(read_csv(path, "BTC/USDT"))

    assert [t.is_sane() for t in ticks] == [True, False, False, True]


def test_values_that_parse_but_are_not_prices_reach_the_core_unchanged(tmp_path: Path) -> None:
    """Zero, negative and infinite prices are the core's to drop, and it does."""
    text = TRADES + "1000,0,1,buy\n2000,-5,1,sell\n3000,inf,1,buy\n4000,nan,1,buy\n"
    core = MarketDataCore(["BTC/USDT"])

    results = [core.accept(t) for t in read_csv(write(tmp_path, "t.csv", text), "BTC/USDT")]

    assert results == [False, False, False, False]
    assert core.dropped("BTC/USDT")["bad_price"] == 4


# -- candles -----------------------------------------------------------------------------------


def test_a_bullish_candle_visits_low_before_high(tmp_path: Path) -> None:
    """Close >= open: open, low, high, close, a quarter bar apart, a quarter volume each."""
    text = CANDLES + "60000,10,12,9,11,8\n120000,11,11,11,11,4\n"

    ticks = list(read_csv(write(tmp_path, "c.csv", text), "XRP/USDT"))

    assert [t.price for t in ticks[:4]] == [10, 9, 12, 11]
    assert [t.ts_ms for t in ticks[:4]] == [60000, 75000, 90000, 105000]
    assert {t.amount for t in ticks[:4]} == {2.0}
    assert len(ticks) == 8


def test_a_bearish_candle_visits_high_before_low(tmp_path: Path) -> None:
    """Close < open: open, high, low, close."""
    text = CANDLES + "0000000003600000,10,12,9,9.5,1\n7200000,9.5,9.5,9.5,9.5,1\n"

    ticks = list(read_csv(write(tmp_path, "c.csv", text), "XRP/USDT"))

    assert [t.price for t in ticks[:4]] == [10, 12, 9, 9.5]
    assert [t.ts_ms - 3_600_000 for t in ticks[:4]] == [0, 900_000, 1_800_000, 2_700_000]


def test_candle_ticks_are_quoted_a_tick_either_side_with_no_side(tmp_path: Path) -> None:
    """A candle does not say who traded, so its ticks have no side and a two-tick book."""
    ticks = list(read_csv(write(tmp_path, "c.csv", CANDLES + "60000,10,12,9,11,8\n"), "ETH/USDT"))

    assert all(t.side is None for t in ticks)
    assert all(t.bid == pytest.approx(t.price - 0.01) for t in ticks)
    assert all(t.ask == pytest.approx(t.price + 0.01) for t in ticks)


def test_a_single_candle_is_taken_as_a_one_minute_bar(tmp_path: Path) -> None:
    """With no second row to measure, the bar interval is 60 s."""
    ticks = list(read_csv(write(tmp_path, "c.csv", CANDLES + "60000,10,12,9,11,8\n"), "ETH/USDT"))

    assert [t.ts_ms for t in ticks] == [60000, 75000, 90000, 105000]


def test_a_bad_candle_row_is_one_nan_tick(tmp_path: Path) -> None:
    """An unparseable candle is one NaN tick at the previous row's time; the next row follows."""
    text = CANDLES + "60000,10,12,9,11,8\nx,1,1,1,1,1\n180000,11,11,11,11,4\n"

    ticks = list(read_csv(write(tmp_path, "c.csv", text), "ETH/USDT"))

    assert len(ticks) == 9
    assert math.isnan(ticks[4].price)
    assert ticks[4].ts_ms == 60000
    assert ticks[5].ts_ms == 180000


def test_an_empty_candle_file_yields_nothing(tmp_path: Path) -> None:
    """A header alone is a valid, empty feed."""
    assert list(read_csv(write(tmp_path, "c.csv", CANDLES), "ETH/USDT")) == []


# -- headers and files -------------------------------------------------------------------------


def test_validate_csv_names_the_schema_from_the_header(tmp_path: Path) -> None:
    """trades or candles, tolerating spaces, upper case and a byte order mark."""
    trades = write(tmp_path, "t.csv", "\ufeffTimestamp_ms, price ,amount,SIDE\n")
    candles = write(tmp_path, "c.csv", CANDLES)

    assert validate_csv(trades) == "trades"
    assert validate_csv(candles) == "candles"


def test_an_unknown_header_names_the_file_the_header_and_both_valid_ones(tmp_path: Path) -> None:
    """The message says what was found and what would have been accepted."""
    path = write(tmp_path, "odd.csv", "time,price\n1,2\n")

    with pytest.raises(FeedError) as info:
        read_csv(path, "BTC/USDT")

    message = str(info.value)
    assert "odd.csv" in message
    assert "time,price" in message
    assert TRADES.strip() in message
    assert CANDLES.strip() in message


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    """No header at all is a FeedError, not an empty feed."""
    with pytest.raises(FeedError, match="empty"):
        validate_csv(write(tmp_path, "e.csv", ""))


def test_a_missing_file_fails_when_the_feed_is_opened_not_when_read(tmp_path: Path) -> None:
    """read_csv checks the file eagerly and names it."""
    with pytest.raises(FeedError, match=r"nope\.csv.*does not exist"):
        read_csv(tmp_path / "nope.csv", "BTC/USDT")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    """A path that is not a readable file is a FeedError naming it."""
    with pytest.raises(FeedError, match="cannot be read"):
        validate_csv(tmp_path)


def test_open_feeds_merges_files_by_timestamp(tmp_path: Path) -> None:
    """Two pairs' files interleave into one stream in time order."""
    btc = write(tmp_path, "b.csv", TRADES + "1000,100,1,buy\n3000,101,1,buy\n5000,102,1,buy\n")
    eth = write(tmp_path, "e.csv", TRADES + "2000,10,1,buy\n3000,11,1,buy\n6000,12,1,buy\n")

    ticks = list(open_feeds({"BTC/USDT": str(btc), "ETH/USDT": str(eth)}))

    assert [(t.ts_ms, t.pair) for t in ticks] == [
        (1000, "BTC/USDT"), (2000, "ETH/USDT"), (3000, "BTC/USDT"), (3000, "ETH/USDT"),
        (5000, "BTC/USDT"), (6000, "ETH/USDT"),
    ]


def test_open_feeds_checks_every_file_before_reading_any(tmp_path: Path) -> None:
    """One bad file among good ones fails at once."""
    good = write(tmp_path, "b.csv", TRADES + "1000,100,1,buy\n")

    with pytest.raises(FeedError, match=r"missing\.csv"):
        open_feeds({"BTC/USDT": str(good), "ETH/USDT": str(tmp_path / "missing.csv")})


# -- the recorded files ------------------------------------------------------------------------


@pytest.mark.shared_data
def test_the_recorded_btc_trade_tape_replays_every_trade() -> None:
    """All 19,904 Binance trades arrive sane, in order, at the touch of their side."""
    path = shared("binance_btcusdt_trades_2024-08-08T2354_2024-08-09T0005.csv")
    core = MarketDataCore(["BTC/USDT"])

    ticks = list(read_csv(path, "BTC/USDT"))

    assert len(ticks) == 19_904
    assert all(core.accept(t) for t in ticks)
    assert ticks[0].price == 61837.63
    assert ticks[0].side is Side.SELL
    assert all(t.price == (t.ask if t.side is Side.BUY else t.bid) for t in ticks)


@pytest.mark.shared_data
def test_the_long_hourly_candle_file_streams_with_hour_quarters() -> None:
    """58,419 hourly bars give four ticks each, 15 minutes apart."""
    path = shared("binance_btcusdt_1h_2017-08-17_2024-04-21.csv")

    first = list(itertools.islice(read_csv(path, "BTC/USDT"), 4))
    count = sum(1 for _ in read_csv(path, "BTC/USDT"))

    assert count == 4 * 58_419
    assert [t.ts_ms - first[0].ts_ms for t in first] == [0, 900_000, 1_800_000, 2_700_000]


@pytest.mark.shared_data
def test_a_tiny_cross_pair_price_is_replayed_with_sane_quotes() -> None:
    """XRP/ETH around 0.0014 ETH gets positive quotes on an 8-decimal grid."""
    path = shared("xrpeth_trades_2019-10-11_2019-10-13.csv")

    ticks = list(read_csv(path, "XRP/ETH"))

    assert len(ticks) == 12_477
    assert all(t.is_sane() for t in ticks)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "name",
    [
        "binance_btcusdt_1m_2021-04-20_2021-05-20.csv",
        "binance_ethusdt_1m_2022-08-14_2022-08-15.csv",
        "binance-usdm_btcusdt-perp_1m_2022-09-05_2022-09-06.csv",
        "bybit_btcusdt_1m_2022-12-13.csv",
        "coinbase_ethusd_1m_2018-04-04_2018-04-05.csv",
        "binance_btcusdt_trades_2021-01-08.csv",
        "binance_ethusdt_trades_2024-08-08T2354_2024-08-09T0005.csv",
    ],
)
def test_recorded_files_replay_without_a_single_drop(name: str) -> None:
    """Every recorded file passes the core's checks tick for tick, gaps and all."""
    pair = "ETH/USDT" if "eth" in name else "BTC/USDT"
    core = MarketDataCore([pair])

    for tick in read_csv(shared(name), pair):
        core.accept(tick)

    assert sum(core.dropped().values()) == 0
    assert core.accepted(pair) > 1000
