"""``[restart]``: how the supervisor restarts a crashed pair, and what a pair given up on keeps."""

from __future__ import annotations

import math

import attrs

from supervision.config.values import is_number

POSITION_POLICIES = ("hold", "flatten")


def _policy(value: object) -> None:
    if value not in POSITION_POLICIES:
        raise ValueError(f"restart.on_failure = {value!r} is invalid: expected one of "
                         f"{', '.join(POSITION_POLICIES)}")



def _restart_count(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise ValueError(
            f"restart.{attribute.name} = {value!r} is invalid: expected an integer >= 0")


def _restart_seconds(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (is_number(value) and math.isfinite(value) and value > 0):
        raise ValueError(
            f"restart.{attribute.name} = {value!r} is invalid: expected a number of seconds > 0")


@attrs.frozen(kw_only=True)
class RestartPolicy:
    """How the supervisor restarts a crashed pair (one-for-one)."""

    max_restarts: int = attrs.field(default=5, validator=_restart_count)
    window_s: float = attrs.field(default=60.0, validator=_restart_seconds)
    backoff_initial_s: float = attrs.field(default=0.1, validator=_restart_seconds)
    backoff_max_s: float = attrs.field(default=10.0, validator=_restart_seconds)
    heartbeat_interval_s: float = attrs.field(default=1.0, validator=_restart_seconds)
    heartbeat_timeout_s: float = attrs.field(default=5.0, validator=_restart_seconds)
    """A child that has not answered a heartbeat for this long is hung and replaced."""
    on_failure: str = attrs.field(default="hold", validator=lambda _i, _a, v: _policy(v))
    """What happens to the position of a pair given up on (or removed): hold or flatten."""
    rollback_after: int = attrs.field(default=3, validator=_restart_count)
    """Crashes of a swapped-in strategy, before it ran ``clean_ticks``, that roll the pair back
    to its last clean strategy (0 = never)."""
    clean_ticks: int = attrs.field(default=1000, validator=_restart_count)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff for the ``attempt``-th restart in the window (1-based)."""
        # The exponent is capped so a long crash loop cannot overflow the int-to-float step.
        doubling = 2.0 ** min(max(0, attempt - 1), 1000)
        return float(min(self.backoff_max_s, self.backoff_initial_s * doubling))


