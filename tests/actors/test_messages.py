"""Message helpers that the hot path uses instead of ``attrs.evolve`` and class calls."""

from __future__ import annotations

import attrs
import pytest

from actors import messages
from actors.messages import Envelope, Fill, MarketTick, Side, builder

MESSAGES = sorted((c for c in vars(messages).values() if isinstance(c, type) and attrs.has(c)
                   and c.__module__ == messages.__name__), key=lambda c: c.__name__)


def test_a_stamped_tick_is_the_same_tick_with_its_arrival_time() -> None:
    """``stamped`` rebuilds the tick field by field: every field but ``recv_ns`` is kept."""
    tick = MarketTick(pair="ETH/USDT", ts_ms=1_700_000_000_123, price=3_000.5, bid=3_000.25,
                      ask=3_000.75, amount=0.42, side=Side.SELL, recv_ns=7)

    stamped = tick.stamped(99)

    assert stamped == attrs.evolve(tick, recv_ns=99)


def test_market_ticks_have_exactly_the_fields_stamped_copies() -> None:
    """A new field must be copied by ``MarketTick.stamped`` too, or it would silently fall
    back to its default on every tick the feed delivers."""
    assert [f.name for f in attrs.fields(MarketTick)] == [
        "pair", "ts_ms", "price", "bid", "ask", "amount", "side", "recv_ns"]


def _arguments(cls: type) -> tuple[list[object], dict[str, object]]:
    """A distinct value for every field: positional ones as a list, keyword-only as a dict."""
    positional: list[object] = []
    keywords: dict[str, object] = {}
    for n, field in enumerate(attrs.fields(cls)):
        value = f"{field.name}-{n}"
        if field.kw_only:
            keywords[field.name] = value
        else:
            positional.append(value)
    return positional, keywords


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.__name__)
def test_every_message_is_built_alike_by_its_class_and_its_builder_and_stays_frozen(
        cls: type) -> None:
    """The direct ``__init__`` and the builder set every field from its argument; the value
    is the same attrs value either way, and nobody can change it."""
    positional, keywords = _arguments(cls)

    by_class = cls(*positional, **keywords)
    by_builder = builder(cls)(*positional, **keywords)

    assert cls.__init__.__code__.co_filename.startswith("<direct init")  # type: ignore[misc]
    assert type(by_builder) is cls
    assert by_builder == by_class
    assert attrs.astuple(by_class, recurse=False) == (*positional, *keywords.values())
    assert attrs.evolve(by_builder) == by_class
    field = attrs.fields(cls)[0].name if attrs.fields(cls) else "anything"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(by_builder, field, "changed")


def test_defaults_apply_when_an_argument_is_left_out_and_a_missing_one_is_named() -> None:
    """The generated signature is attrs': keyword-only, with the same defaults."""
    fill = builder(Fill)(fill_id="f", order_id="o", pair="BTC/USDT", side=Side.BUY,
                         amount=1.0, price=2.0, fee=0.0, ts_ms=3)

    assert fill.maker is False
    with pytest.raises(TypeError, match="order_id"):
        Fill(fill_id="f")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="positional"):
        builder(Fill)("f")  # type: ignore[misc]
    assert builder(Envelope)("risk", fill) == Envelope(to="risk", message=fill)


def test_a_class_without_a_builder_is_refused_by_name() -> None:
    """Only this module's messages have builders."""

    @attrs.frozen
    class Elsewhere:
        x: int

    with pytest.raises(TypeError, match="Elsewhere"):
        builder(Elsewhere)


def test_a_subclass_of_a_message_keeps_its_own_class_when_built() -> None:
    """The direct ``__init__`` lends the value a writable class only when it is exactly the
    message's; a subclass's instance is set field by field and stays what it is."""

    class Tagged(Fill):
        pass

    tagged = Tagged(fill_id="f", order_id="o", pair="BTC/USDT", side=Side.BUY, amount=1.0,
                    price=2.0, fee=0.0, ts_ms=3)

    assert type(tagged) is Tagged
    assert tagged.pair == "BTC/USDT" and tagged.maker is False
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        tagged.pair = "ETH/USDT"  # type: ignore[misc]
