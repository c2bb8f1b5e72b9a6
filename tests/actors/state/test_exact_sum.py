"""The ledger's running sums: whatever terms come and go, in any order, the total is the
correctly rounded sum of those present (``math.fsum`` over them)."""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.state.exact_sum import ExactSum

finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)  # seeded
@given(st.lists(finite, max_size=20),
       st.lists(st.tuples(st.sampled_from(["add", "remove", "replace"]), finite,
                          st.integers(0, 1000)), max_size=40))
def test_the_total_is_math_fsum_of_the_terms_present(start, steps):
    terms = list(start)
    total = ExactSum(terms)
    for kind, x, where in steps:
        if kind == "add" or not terms:
            terms.append(x)
            total.add(x)
        elif kind == "remove":
            total.remove(terms.pop(where % len(terms)))
        else:
            i = where % len(terms)
            total.replace(terms[i], x)
            terms[i] = x
        try:
            expected = math.fsum(terms)
        except OverflowError:  # fsum gives up near the largest float: round the exact sum
            exact = sum(map(Fraction, terms), Fraction(0))
            try:
                expected = float(exact)
            except OverflowError:
                expected = math.inf if exact > 0 else -math.inf
        assert total.value == expected


def test_a_sum_fsum_overflows_on_is_rounded_to_the_largest_float():
    """Found by the property above: fsum overflows on the way, the exact sum does not."""
    total = ExactSum([2.9937604643020797e+292, 1.7976931348623155e+308])
    total.add(-1.0)
    assert total.value == sys.float_info.max


def test_a_naive_sum_drifts_where_the_running_sum_does_not():
    total = ExactSum()
    naive = 0.0
    for _ in range(1000):
        for x in (0.1, 1e16, -1e16):
            total.add(x)
            naive += x
    assert total.value == math.fsum([0.1] * 1000) == pytest.approx(100.0)
    assert naive != total.value


def test_a_term_that_is_not_a_finite_number_is_refused():
    with pytest.raises(ValueError, match="finite numbers only"):
        ExactSum().add(math.nan)
