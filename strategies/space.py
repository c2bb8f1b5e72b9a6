"""Search ranges a strategy declares for its parameters, next to its ``Params``.

An optimiser (``supervision.research.optimize``) reads ``Strategy.space`` and samples each
named parameter from its range; the sampled values go through the same ``Params`` validation
as any other, so a combination the strategy refuses (``fast >= slow``) is refused there, not
here. Plain values only: no optimiser is imported, so strategies stay free of it.

Failure: a range that cannot be searched (low above high, a step that is not positive, a
name that is not a parameter) raises ``StrategyError`` from ``check_space``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen
class IntRange:
    """Whole numbers from ``low`` to ``high`` inclusive, every ``step``."""

    low: int
    high: int
    step: int = 1

    def describe(self) -> str:
        step = f" step {self.step}" if self.step != 1 else ""
        return f"int {self.low}..{self.high}{step}"


@attrs.frozen
class FloatRange:
    """Numbers from ``low`` to ``high``; ``log`` samples evenly on a log scale."""

    low: float
    high: float
    log: bool = False

    def describe(self) -> str:
        return f"float {self.low:g}..{self.high:g}{' log' if self.log else ''}"


@attrs.frozen
class Choice:
    """One of a closed set of values."""

    values: tuple[Any, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.values))


Range = IntRange | FloatRange | Choice


class SpaceError(ValueError):
    """A declared search range that cannot be searched."""


def check_space(owner: str, space: Mapping[str, Range], fields: Mapping[str, Any]) -> None:
    """Raise ``SpaceError`` naming ``owner`` if a range is empty or names no parameter.

    Args:
        owner: the strategy (or section) the space belongs to, for the message.
        fields: the parameter names the ranges may use.
    """
    for name, spec in space.items():
        if name not in fields:
            raise SpaceError(f"{owner}: search range for {name!r}, which is not a "
                             f"parameter; parameters: {', '.join(fields)}")
        if isinstance(spec, IntRange | FloatRange) and not spec.low < spec.high:
            raise SpaceError(f"{owner}: range of {name} is empty ({spec.describe()})")
        if isinstance(spec, IntRange) and spec.step < 1:
            raise SpaceError(f"{owner}: range of {name} needs a step >= 1")
        if isinstance(spec, FloatRange) and spec.log and spec.low <= 0:
            raise SpaceError(f"{owner}: log range of {name} must start above 0")
        if isinstance(spec, Choice) and not spec.values:
            raise SpaceError(f"{owner}: choice of {name} has no values")
