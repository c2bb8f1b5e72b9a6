"""Rounding to lot and tick steps."""

from __future__ import annotations

from actors.exchange.steps import ceil_to_step, floor_to_step


def test_step_rounding_tolerates_float_noise_on_the_boundary() -> None:
    """A value already on a step stays there despite binary floating point."""
    assert ceil_to_step(1.1, 0.1) == 1.1
    assert floor_to_step(0.3, 0.1) == 0.3
    assert ceil_to_step(1.101, 0.1) == 1.2
    assert floor_to_step(0.12345678, 1e-8) == 0.12345678
