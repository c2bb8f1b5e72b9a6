"""The README's code is real: its strategy example builds, validates and trades."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from actors.messages import MarketTick, Signal
from strategies.base import StrategyError

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    return next(b for b in blocks if marker in b)


def test_the_readme_strategy_example_signals_on_a_breakout_and_its_reversal():
    """Momentum from the README: BUY when price breaks above its EMA, SELL when it falls back."""
    namespace: dict[str, object] = {}
    exec(compile(readme_block("class Momentum"), "README.md", "exec"), namespace)
    strategy = namespace["Momentum"](period=5, threshold="0.01")  # CLI-style string coerced
    prices = [100.0] * 10 + [105.0, 106.0] + [95.0]

    signals = [strategy.on_tick(MarketTick(pair="BTC/USDT", ts_ms=1_000 + i, price=p, bid=p,
                                           ask=p)) for i, p in enumerate(prices)]

    assert signals.count(Signal.BUY) == 1 and signals[10] is Signal.BUY
    assert signals[-1] is Signal.SELL
    with pytest.raises(StrategyError, match="period"):
        namespace["Momentum"](period=1)
