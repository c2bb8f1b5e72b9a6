"""The registry: names and dotted paths to classes, specs to strategies, CLI params to pairs."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from actors.messages import StrategySpec
from strategies.aggregate import AggregateStrategy
from strategies.base import StrategyError
from strategies.donchian_breakout import DonchianBreakout
from strategies.ema_cross import EmaCross
from strategies.registry import (
    BUILTIN_STRATEGIES,
    build_strategy,
    parse_param,
    resolve_strategy_class,
)
from strategies.rsi_reversion import RsiReversion

BUILTINS_LISTED = "aggregate, donchian_breakout, ema_cross, rsi_reversion"
FORMS = f"expected a built-in name ({BUILTINS_LISTED}) or 'package.module:ClassName'"


@pytest.fixture
def user_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, str], None]]:
    """Write importable modules into a temporary directory; forget them afterwards."""
    written: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str) -> None:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)

    yield write
    for name in written:
        sys.modules.pop(name, None)


USER_STRATEGY = """
    import attrs
    from actors.messages import Signal
    from strategies.base import Strategy

    class AlwaysBuy(Strategy):
        name = "always_buy"

        @attrs.frozen(kw_only=True)
        class Params:
            timeframe_s: float = 0.0

        @property
        def warmup(self):
            return 1

        def on_price(self, price):
            return Signal.BUY

    def helper():
        return None
"""


# -- resolve_strategy_class ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("ema_cross", EmaCross),
        ("rsi_reversion", RsiReversion),
        ("donchian_breakout", DonchianBreakout),
        ("aggregate", AggregateStrategy),
    ],
)
def test_every_builtin_short_name_resolves_to_its_class(name, cls):
    """The short names map to the strategy classes whose ``name`` they are."""
    assert resolve_strategy_class(name) is cls
    assert cls.name == name
    assert BUILTIN_STRATEGIES[name] == f"{cls.__module__}:{cls.__name__}"


def test_a_dotted_path_resolves_a_builtin_class_too():
    """``package.module:ClassName`` works for any importable strategy."""
    assert resolve_strategy_class("strategies.rsi_reversion:RsiReversion") is RsiReversion


def test_a_user_strategy_class_resolves_by_its_dotted_path(user_module):
    """A strategy outside the package is found by module and class name."""
    user_module("my_strats", USER_STRATEGY)

    cls = resolve_strategy_class("my_strats:AlwaysBuy")

    assert cls.name == "always_buy"
    assert build_strategy(StrategySpec.of("my_strats:AlwaysBuy")).describe() == "always_buy()"


def test_an_unknown_short_name_lists_the_builtins_and_the_dotted_form():
    """A typo in a short name tells the user every valid choice."""
    with pytest.raises(StrategyError) as info:
        resolve_strategy_class("ema_cros")

    assert str(info.value) == f"unknown strategy 'ema_cros'; {FORMS}"


@pytest.mark.parametrize(
    "path", ["a.b:C:D", "strategies.ema_cross:", ":EmaCross", "my-mod:Cls", "a..b:C"]
)
def test_a_malformed_path_is_refused_with_the_expected_form(path):
    """Paths that cannot be module:Class are rejected before any import."""
    with pytest.raises(StrategyError) as info:
        resolve_strategy_class(path)

    assert str(info.value) == f"malformed strategy path {path!r}; {FORMS}"


def test_a_module_that_cannot_be_imported_is_named():
    """A missing module is reported by name, with the import error."""
    with pytest.raises(
        StrategyError,
        match=r"^cannot import module 'no_such\.module' for strategy "
        r"'no_such\.module:X': ModuleNotFoundError: No module named 'no_such'",
    ):
        resolve_strategy_class("no_such.module:X")


def test_a_module_that_fails_while_importing_is_a_strategy_error(user_module):
    """Any exception raised by importing a user module becomes a StrategyError."""
    user_module("broken_strats", "raise RuntimeError('boom')\n")

    with pytest.raises(
        StrategyError, match=r"cannot import module 'broken_strats' .*RuntimeError: boom"
    ):
        resolve_strategy_class("broken_strats:Anything")


def test_a_missing_class_lists_the_strategy_classes_in_that_module(user_module):
    """The error names the missing attribute and what the module does offer."""
    user_module("my_strats", USER_STRATEGY)

    with pytest.raises(StrategyError) as info:
        resolve_strategy_class("my_strats:AlwaysSell")

    assert str(info.value) == (
        "module 'my_strats' has no attribute 'AlwaysSell'; strategy classes there: AlwaysBuy"
    )


def test_a_missing_class_in_a_module_without_strategies_says_so():
    """A module with no strategy classes is reported as offering none."""
    with pytest.raises(
        StrategyError, match="module 'json' has no attribute 'Nope'; strategy classes there: none"
    ):
        resolve_strategy_class("json:Nope")


def test_something_that_is_not_a_strategy_class_is_refused(user_module):
    """A function, or any class not derived from Strategy, is not a strategy."""
    user_module("my_strats", USER_STRATEGY)

    with pytest.raises(
        StrategyError, match=r"'my_strats:helper' is <function helper .*>, not a Strategy subclass"
    ):
        resolve_strategy_class("my_strats:helper")
    with pytest.raises(
        StrategyError, match=r"'collections:OrderedDict' is .*, not a Strategy subclass"
    ):
        resolve_strategy_class("collections:OrderedDict")


def test_the_abstract_base_is_not_a_strategy_to_run():
    """Strategy itself resolves to an error naming what it lacks."""
    with pytest.raises(
        StrategyError, match=r"'strategies.base:Strategy' is abstract .*on_price, warmup"
    ):
        resolve_strategy_class("strategies.base:Strategy")


# -- build_strategy ----------------------------------------------------------------------------


def test_build_strategy_passes_the_spec_params():
    """A spec with params builds a configured strategy."""
    strategy = build_strategy(StrategySpec.of("ema_cross", fast=5, slow=20))

    assert strategy.describe() == "ema_cross(fast=5, slow=20)"


def test_build_strategy_accepts_cli_strings():
    """Params typed on the command line arrive as text and are coerced."""
    spec = StrategySpec.of(
        "donchian_breakout", **dict(map(parse_param, ["entry_period=55", "exit_period=20"]))
    )

    assert build_strategy(spec).describe() == "donchian_breakout(entry_period=55, exit_period=20)"


def test_build_strategy_reports_bad_params_from_the_strategy():
    """Validation errors reach the caller unchanged."""
    with pytest.raises(StrategyError, match=r"^rsi_reversion: unknown parameter 'level'"):
        build_strategy(StrategySpec.of("rsi_reversion", level=3))


def test_build_strategy_builds_an_aggregate_with_its_members_and_rule():
    """Members are built from their own specs; the aggregate's params are its rule and threshold."""
    spec = StrategySpec(
        path="aggregate",
        params=(("rule", "weighted"), ("threshold", "0.4")),
        members=(
            (StrategySpec.of("ema_cross"), 2.0),
            (StrategySpec.of("rsi_reversion", period=7), 1.0),
        ),
    )

    strategy = build_strategy(spec)

    assert isinstance(strategy, AggregateStrategy)
    assert strategy.describe() == (
        "aggregate(rule=weighted, threshold=0.4; ema_cross(fast=10, slow=30) x2, "
        "rsi_reversion(period=7, oversold=30, overbought=70) x1)"
    )


def test_aggregates_can_nest():
    """A member may itself be an aggregate."""
    inner = StrategySpec(path="aggregate", members=((StrategySpec.of("ema_cross"), 1.0),))
    outer = StrategySpec(
        path="aggregate", members=((inner, 1.0), (StrategySpec.of("donchian_breakout"), 1.0))
    )

    strategy = build_strategy(outer)

    assert strategy.warmup == 30


def test_a_bad_member_is_named_by_position_and_path():
    """An error inside an aggregate says which member caused it."""
    spec = StrategySpec(
        path="aggregate",
        members=((StrategySpec.of("ema_cross"), 1.0), (StrategySpec.of("ema_cross", fast=50), 1.0)),
    )

    with pytest.raises(StrategyError) as info:
        build_strategy(spec)

    assert str(info.value) == (
        "aggregate member 2 (ema_cross): ema_cross: fast=50 is invalid: must be less than slow=30"
    )


def test_an_aggregate_without_members_is_refused():
    """There is nothing to combine, so the spec is an error."""
    with pytest.raises(
        StrategyError, match="'aggregate' needs members: \\(StrategySpec, weight\\) pairs"
    ):
        build_strategy(StrategySpec.of("aggregate", rule="majority"))


def test_members_on_a_plain_strategy_are_refused():
    """Only the aggregate combines strategies."""
    spec = StrategySpec(path="ema_cross", members=((StrategySpec.of("rsi_reversion"), 1.0),))

    with pytest.raises(
        StrategyError, match="'ema_cross' takes no members; only 'aggregate' combines strategies"
    ):
        build_strategy(spec)


# -- parse_param -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("fast=10", ("fast", "10")),
        (" slow = 30 ", ("slow", "30")),
        ("label=a=b", ("label", "a=b")),
    ],
)
def test_parse_param_splits_at_the_first_equals_sign(text, pair):
    """The key is trimmed and must be an identifier; the value stays text."""
    assert parse_param(text) == pair


@pytest.mark.parametrize("text", ["fast", "=10", "fast=", "fast= ", "2fast=1", "fa st=1", ""])
def test_parse_param_names_the_bad_text_and_the_expected_form(text):
    """Anything that is not key=value is refused with an example."""
    with pytest.raises(StrategyError) as info:
        parse_param(text)

    assert str(info.value) == f"bad parameter {text!r}: expected key=value, e.g. fast=10"
