"""Rounding to lot and tick steps."""

from __future__ import annotations

import math
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.exchange.steps import _decimals, _multiple, ceil_to_step, floor_to_step


def test_step_rounding_tolerates_float_noise_on_the_boundary() -> None:
    """A value already on a step stays there despite binary floating point."""
    assert ceil_to_step(1.1, 0.1) == 1.1
    assert floor_to_step(0.3, 0.1) == 0.3
    assert ceil_to_step(1.101, 0.1) == 1.2
    assert floor_to_step(0.12345678, 1e-8) == 0.12345678


STEPS = [10.0**-e for e in range(9)] + [5 * 10.0**-e for e in range(9)] + [
    2.5, 0.25, 0.05, 25.0, 0.3, 0.15, 0.00025, 1 / 3]


def _reference(value: float, step: float, towards: Callable[[float], int]) -> float:
    """The rounding as first written (``towards`` is ``math.floor`` or ``math.ceil``):
    ``round`` to the step's decimals."""
    n = value / step
    k = round(n)
    if abs(n - k) > 1e-9 * max(1.0, abs(n)):
        k = towards(n)
    return round(k * step, _decimals(step))


@settings(max_examples=3000, deadline=None)
@given(step=st.sampled_from(STEPS),
       value=st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_subnormal=False))
def test_rounding_is_the_same_float_as_rounding_to_the_steps_decimals(step, value) -> None:
    """The fast multiple (an integer division for a decimal step) gives bit for bit what
    ``round(k * step, decimals)`` gave, for any value and step, odd ones included."""
    assert floor_to_step(value, step) == _reference(value, step, math.floor)
    assert ceil_to_step(value, step) == _reference(value, step, math.ceil)


@settings(max_examples=3000, deadline=None)
@given(step=st.sampled_from(STEPS), k=st.integers(min_value=-10**17, max_value=10**17))
def test_a_multiple_of_a_step_is_the_float_nearest_its_decimal_value(step, k) -> None:
    assert _multiple(k, step) == round(k * step, _decimals(step))
