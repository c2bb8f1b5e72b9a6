"""From a ``StrategySpec`` (CLI, config, a ``SwapStrategy`` message) to a built strategy.

A spec names a built-in strategy by short name or any importable class as
``package.module:ClassName``. Everything that can go wrong while building one (an unknown
name, an import that fails, bad params) surfaces as ``StrategyError`` naming the valid choices,
so that a swap can be refused without harming the pair that asked for it.
"""

from __future__ import annotations

import importlib
import inspect
import re
from types import ModuleType

from actors.messages import StrategySpec
from strategies.aggregate import AggregateStrategy
from strategies.base import Strategy, StrategyError, _build_params
from strategies.isolated import ProcessStrategy, inner_spec

BUILTIN_STRATEGIES: dict[str, str] = {
    "ema_cross": "strategies.ema_cross:EmaCross",
    "rsi_reversion": "strategies.rsi_reversion:RsiReversion",
    "donchian_breakout": "strategies.donchian_breakout:DonchianBreakout",
    "aggregate": "strategies.aggregate:AggregateStrategy",
}

WRAPPERS: dict[str, str] = {
    "process": "strategies.isolated:ProcessStrategy",
}
"""Specs that run another strategy (their single member) differently; not strategies of their
own, so not listed among the built-ins."""

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED_PATH = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}$")
_FORMS = "a built-in name ({}) or 'package.module:ClassName'"


def _forms() -> str:
    return _FORMS.format(", ".join(sorted(BUILTIN_STRATEGIES)))


def resolve_strategy_class(path: str) -> type[Strategy]:
    """The class a built-in short name or a ``package.module:ClassName`` path names.

    Raises:
        StrategyError: unknown short name, malformed path, module not importable, no such
            attribute, or not a concrete ``Strategy`` subclass.
    """
    if ":" not in path:
        path = WRAPPERS.get(path, path)
    if ":" not in path:
        if path not in BUILTIN_STRATEGIES:
            raise StrategyError(f"unknown strategy {path!r}; expected {_forms()}")
        path = BUILTIN_STRATEGIES[path]
    if not _DOTTED_PATH.match(path):
        raise StrategyError(f"malformed strategy path {path!r}; expected {_forms()}")
    module_name, class_name = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a user's module can fail on import in any way
        raise StrategyError(
            f"cannot import module {module_name!r} for strategy {path!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    found = getattr(module, class_name, None)
    if found is None:
        available = _strategy_classes_in(module)
        raise StrategyError(
            f"module {module_name!r} has no attribute {class_name!r}; strategy classes there: "
            f"{', '.join(available) if available else 'none'}"
        )
    if not (isinstance(found, type) and issubclass(found, Strategy)):
        raise StrategyError(
            f"{path!r} is {found!r}, not a Strategy subclass; "
            "a strategy class derives from strategies.base.Strategy"
        )
    if inspect.isabstract(found):
        raise StrategyError(
            f"{path!r} is abstract (it does not implement "
            f"{', '.join(sorted(found.__abstractmethods__))}); name a concrete strategy"
        )
    return found


def build_strategy(spec: StrategySpec) -> Strategy:
    """Build the strategy a spec describes, members first for an aggregate; a ``process``
    spec starts the child process that builds and runs its member.

    Raises:
        StrategyError: from resolving the path, building a member (the message says which
            member) or validating params.
    """
    return _build(spec, start_processes=True)


def check_strategy(spec: StrategySpec) -> None:
    """Build a spec once to prove it can be built, in this process: a ``process`` spec has
    its params checked and its member built here, and no child process is started.

    Raises:
        StrategyError: as ``build_strategy``.
    """
    _build(spec, start_processes=False).close()


def _build(spec: StrategySpec, *, start_processes: bool) -> Strategy:
    cls = resolve_strategy_class(spec.path)
    if issubclass(cls, ProcessStrategy):
        inner = inner_spec(spec)
        if not start_processes:
            _build_params(cls.name, cls.Params, spec.params_dict())
            return _build(inner, start_processes=False)
        return cls(inner, **spec.params_dict())
    if issubclass(cls, AggregateStrategy):
        if not spec.members:
            raise StrategyError(
                f"{spec.path!r} needs members: (StrategySpec, weight) pairs to combine"
            )
        members: list[tuple[Strategy, float]] = []
        for number, (member_spec, weight) in enumerate(spec.members, start=1):
            if member_spec.path in WRAPPERS:
                raise StrategyError(
                    f"aggregate member {number} ({member_spec.path}): isolation applies to a "
                    "whole strategy; isolate the aggregate instead of one of its members")
            try:
                members.append((_build(member_spec, start_processes=start_processes), weight))
            except StrategyError as exc:
                raise StrategyError(
                    f"aggregate member {number} ({member_spec.path}): {exc}"
                ) from None
        return cls(members, **spec.params_dict())
    if spec.members:
        raise StrategyError(f"{spec.path!r} takes no members; only 'aggregate' combines strategies")
    return cls(**spec.params_dict())


def parse_param(text: str) -> tuple[str, str]:
    """Split a CLI ``key=value`` into its parts (the value stays a string until validated)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(_IDENTIFIER, key) or not value.strip():
        raise StrategyError(f"bad parameter {text!r}: expected key=value, e.g. fast=10")
    return key, value.strip()


def _strategy_classes_in(module: ModuleType) -> list[str]:
    return sorted(
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, Strategy) and not inspect.isabstract(value)
    )
