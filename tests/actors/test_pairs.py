"""Pair symbols: what BASE/QUOTE may look like."""

import pytest

from actors.pairs import PairError, parse_pair_list, split_pair


@pytest.mark.parametrize("bad", ["BTCUSDT", "BTC//USDT", "BTC/USDT/", "btc/usdt", "BTC\n/USDT",
                                 "BTC/USDT\n", "BTC/BTC", "/USDT", ""])
def test_malformed_symbols_are_refused_with_the_expected_form(bad):
    """Each names the symbol and the BASE/QUOTE form."""
    with pytest.raises(PairError, match="BASE/QUOTE"):
        split_pair(bad)


def test_a_list_is_parsed_and_checked_for_emptiness_and_duplicates():
    """Spaces are tolerated; an empty list and a repeated pair are not."""
    assert parse_pair_list(" BTC/USDT, ETH/USDT ") == ("BTC/USDT", "ETH/USDT")
    with pytest.raises(PairError):
        parse_pair_list("")
    with pytest.raises(PairError, match="twice"):
        parse_pair_list("BTC/USDT,BTC/USDT")
