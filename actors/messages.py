"""Every value that crosses an actor boundary.

Messages are frozen, slotted, keyword-only attrs classes: cheap to build on the hot path, safe
to share between threads because nobody can mutate them. Commands are imperative
(``ProposeOrder``), events past tense (``OrderUpdated``), queries end in a reply value and are
the only messages sent with ``ask``.

Addresses are plain strings: the shared services below, or a pair symbol such as
``"BTC/USDT"`` for that pair's orchestrator. A core returns ``Envelope`` values; the actor
shell or the threadless runtime delivers them.
"""

from __future__ import annotations

import enum
import math
import types
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import attrs

_INF = math.inf

# -- addresses ---------------------------------------------------------------------------------

STATE = "state"
RISK = "risk"
EXECUTION = "execution"
MARKET_DATA = "market_data"
SUPERVISOR = "supervisor"
EVENTS = "events"
"""Subscribers outside the actor system (embedding API, status table)."""

SERVICES = (STATE, RISK, EXECUTION, MARKET_DATA, SUPERVISOR, EVENTS)


@attrs.frozen
class Envelope:
    """A message and where it goes; what every core returns (positional: it is built often)."""

    to: str
    message: Any


# -- enums -------------------------------------------------------------------------------------


class Signal(enum.Enum):
    """What a strategy thinks the pair should do now."""

    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.Enum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(enum.Enum):
    NEW = "new"
    """Intended and recorded, not yet acknowledged by the exchange (write-ahead)."""
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"

    def __init__(self, value: str) -> None:
        # A plain attribute, not a property: it is read several times per order.
        self.is_terminal: bool = value in ("filled", "canceled", "rejected")


class ExitReason(enum.Enum):
    """Why an order exists; a stop-loss exit starts the risk cooldown for its pair."""

    ENTRY = "entry"
    EXIT_SIGNAL = "exit_signal"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    FLATTEN = "flatten"


# -- market data -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class MarketTick:
    """One trade or quote for one pair.

    ``bid``/``ask`` are the best quotes at that moment (a trade feed models them from the
    price and the pair's tick size). ``recv_ns`` is ``time.perf_counter_ns()`` when the tick
    entered the market data actor, 0 where nobody measures latency.
    """

    pair: str
    ts_ms: int
    price: float
    bid: float
    ask: float
    amount: float = 0.0
    side: Side | None = None
    recv_ns: int = 0

    def stamped(self, recv_ns: int) -> MarketTick:
        """This tick as it entered the market data actor at ``recv_ns``. Built directly:
        ``attrs.evolve`` introspects the class on every call (4.5 against 2.7 µs, per tick),
        and by its builder (see ``builder``)."""
        return _market_tick(pair=self.pair, ts_ms=self.ts_ms, price=self.price, bid=self.bid,
                            ask=self.ask, amount=self.amount, side=self.side, recv_ns=recv_ns)

    def is_sane(self) -> bool:
        """True where prices are finite and positive and the book is not crossed. Chained
        comparisons only (every one is False for NaN): this runs on every tick."""
        b = self.bid
        return (0.0 < self.price < _INF and 0.0 < b <= self.ask < _INF
                and 0.0 <= self.amount < _INF and self.ts_ms > 0)


@attrs.frozen(kw_only=True)
class MarkPrices:
    """Latest price per pair, sent to the state actor about once a market second for equity."""

    ts_ms: int
    marks: tuple[tuple[str, float], ...]
    generation: int = 0
    """The sending pair's generation (fencing)."""
    peaks: tuple[tuple[str, float], ...] = ()
    """Trailing peaks raised since the last mark that no exit depends on yet (stored as
    ``RaisePeak`` would, without a message of their own)."""


@attrs.frozen(kw_only=True)
class FeedEnded:
    """A finite feed (replay) has delivered its last tick."""

    ts_ms: int
    ticks: int


@attrs.frozen(kw_only=True)
class FeedStale:
    """Live feed -> risk (and events): ``pair`` has had no valid market data for ``age_s``
    (``stale=True``: no new positions on it), or data is back (``stale=False``, ``age_s`` the
    length of the silence). Exits are never blocked."""

    pair: str
    stale: bool
    age_s: float
    ts_ms: int
    """Wall-clock milliseconds of the change."""


@attrs.frozen(kw_only=True)
class StateAvailabilityChanged:
    """State -> risk (and events): the state database cannot be written (``available=False``:
    no new positions, refused with ``state_unavailable``, while exits still go out and their
    records wait in the state actor) or is written again. Never holds a password."""

    available: bool
    reason: str
    """Why it was lost ("" when it is back)."""
    waiting: int
    """Messages waiting to be written when this was sent."""
    ts_ms: int
    """Wall-clock milliseconds of the change."""


@attrs.frozen(kw_only=True)
class TickDropped:
    """A malformed or out-of-order tick that was never traded on."""

    pair: str
    reason: str
    ts_ms: int


# -- strategy ----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class StrategySpec:
    """How to build a strategy: a short name or ``package.module:ClassName`` and its params.

    ``params`` is a sorted tuple of (key, value) so the spec is hashable and compares equal
    however it was written. An aggregate has ``path="aggregate"`` and its members in
    ``members``.
    """

    path: str
    params: tuple[tuple[str, Any], ...] = ()
    members: tuple[tuple[StrategySpec, float], ...] = ()

    @classmethod
    def of(cls, path: str, /, **params: Any) -> StrategySpec:
        return cls(path=path, params=tuple(sorted(params.items())))

    def params_dict(self) -> dict[str, Any]:
        return dict(self.params)


@attrs.frozen(kw_only=True)
class SignalRaised:
    """A strategy's non-HOLD opinion, published as an event."""

    pair: str
    signal: Signal
    price: float
    ts_ms: int


@attrs.frozen(kw_only=True)
class SwapStrategy:
    """Replace a pair's strategy while it runs (validated before it takes effect)."""

    pair: str
    spec: StrategySpec


@attrs.frozen(kw_only=True)
class StrategyAssigned:
    """Persist a pair's strategy spec so that a restart keeps it."""

    pair: str
    spec: StrategySpec
    generation: int = 0


# -- orders ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ProposeOrder:
    """Orchestrator -> risk: the pair wants to trade.

    For entries ``amount`` is None and risk sizes the order; for exits ``amount`` is the
    position to sell. ``bid``/``ask``/``ts_ms`` are the quote the decision was made on, which
    the paper exchange fills market orders against.
    """

    proposal_id: str
    pair: str
    generation: int
    side: Side
    order_type: OrderType
    reason: ExitReason
    price: float
    bid: float
    ask: float
    ts_ms: int
    amount: float | None = None
    limit_price: float | None = None


def order_id_for(proposal_id: str) -> str:
    """The order id risk gives an approved proposal: derived, so a retry cannot mint a twin."""
    return f"o-{proposal_id}"


@attrs.frozen(kw_only=True)
class OrderRejected:
    """Risk -> pair (and events): a proposal that will not become an order, and why."""

    proposal_id: str
    pair: str
    reason: str
    detail: str
    ts_ms: int


@attrs.frozen(kw_only=True)
class SubmitOrder:
    """Risk -> execution: an approved, sized order."""

    order_id: str
    proposal_id: str
    pair: str
    generation: int
    side: Side
    order_type: OrderType
    reason: ExitReason
    amount: float
    bid: float
    ask: float
    ts_ms: int
    limit_price: float | None = None

    def as_order(self, status: OrderStatus, amount: float | None = None,
                 limit_price: float | None = None) -> Order:
        """The order this command creates, as first recorded (``amount``/``limit_price``
        override the requested ones where the exchange rounded them)."""
        return Order(
            order_id=self.order_id, pair=self.pair, side=self.side,
            order_type=self.order_type, reason=self.reason,
            amount=self.amount if amount is None else amount, status=status,
            created_ms=self.ts_ms, updated_ms=self.ts_ms,
            limit_price=self.limit_price if limit_price is None else limit_price,
        )


@attrs.frozen(kw_only=True)
class CancelOrder:
    order_id: str
    pair: str
    ts_ms: int


@attrs.frozen(kw_only=True)
class CancelPairOrders:
    """Supervisor -> execution: cancel every resting order of a pair that failed or was
    removed, so that nothing fills that no actor manages any more."""

    pair: str
    ts_ms: int


@attrs.frozen(kw_only=True)
class Order:
    """An order as last known; a new value on every change."""

    order_id: str
    pair: str
    side: Side
    order_type: OrderType
    reason: ExitReason
    amount: float
    status: OrderStatus
    created_ms: int
    updated_ms: int
    limit_price: float | None = None
    filled: float = 0.0
    average_price: float = 0.0
    fee: float = 0.0
    reject_reason: str = ""

    @property
    def remaining(self) -> float:
        return self.amount - self.filled


@attrs.frozen(kw_only=True)
class Fill:
    """One execution; ``fee`` is in the quote currency."""

    fill_id: str
    order_id: str
    pair: str
    side: Side
    amount: float
    price: float
    fee: float
    ts_ms: int
    maker: bool = False


@attrs.frozen(kw_only=True)
class OrderUpdated:
    """Execution -> state (persist), then state -> pair and risk (publish)."""

    order: Order


@attrs.frozen(kw_only=True)
class OrderFilled:
    """Execution -> state: a fill to apply to balances and positions, exactly once.

    ``order`` is the order's final value when this fill finished it on the paper exchange:
    state applies both at once, so an order filled on arrival costs one message, not a NEW,
    an OPEN, the fill and a FILLED. Live gateways send the updates on their own (None).
    """

    fill: Fill
    order: Order | None = None


@attrs.frozen(kw_only=True)
class FillReplaced:
    """Execution -> state: the real trades of an order arrived after an inferred fill was
    booked for them (from the order's cumulative fill and average price, when its trades
    did not appear in time). State swaps the one for the others and moves balances and the
    position only by the difference, so nothing is counted twice."""

    inferred: Fill
    fills: tuple[Fill, ...]


# -- positions and portfolio ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Position:
    """An open long position. ``cost`` is the quote spent on it, fees included."""

    pair: str
    amount: float
    entry_price: float
    cost: float
    opened_ms: int
    peak_price: float

    @property
    def break_even(self) -> float:
        return self.cost / self.amount if self.amount else 0.0


@attrs.frozen(kw_only=True)
class PairBook:
    """Everything the state actor knows about one pair; the orchestrator's cache."""

    pair: str
    position: Position | None
    open_orders: tuple[Order, ...]
    realized_pnl: float
    trades: int
    strategy: StrategySpec | None


@attrs.frozen(kw_only=True)
class PositionChanged:
    """State -> pair: its book after a change.

    ``settled`` names the order this change finished when the pair never saw it open (a paper
    order filled on arrival): it answers the pair's proposal as an open order would have.
    """

    book: PairBook
    settled: str = ""


@attrs.frozen(kw_only=True)
class RequestBook:
    """Pair -> state: send me my book (a tell; the reply is a ``PositionChanged``).

    A starting orchestrator uses it instead of a blocking ask, and trades only once the book
    has arrived.
    """

    pair: str


@attrs.frozen(kw_only=True)
class StrategySwapped:
    """Event: a pair now runs ``spec`` (or kept its old one, with ``error`` set)."""

    pair: str
    spec: StrategySpec
    description: str
    error: str = ""


@attrs.frozen(kw_only=True)
class PositionClosed:
    """State -> risk: a round trip finished (drives daily loss and stop-loss cooldown)."""

    pair: str
    reason: ExitReason
    pnl: float
    ts_ms: int


@attrs.frozen(kw_only=True)
class OrderSettled:
    """State -> risk: a fill that finished its order is booked. One message for what would
    be the final ``OrderUpdated``, the ``PortfolioChanged`` and the ``PositionClosed``."""

    order: Order
    portfolio: PortfolioChanged
    closed: PositionClosed | None = None


@attrs.frozen(kw_only=True)
class RaisePeak:
    """Orchestrator core -> state: the highest price since entry rose (for the trailing stop).

    Persisted only, never answered: the pair keeps its peak itself, and a restarted pair gets
    the stored one with its book. The pair actor sends it on a paced ``MarkPrices`` instead
    (``OrchestratorActor._peak_on_mark``); the threadless runtime delivers it as it is."""

    pair: str
    price: float
    generation: int = 0


@attrs.frozen(kw_only=True)
class PortfolioChanged:
    """State -> risk: what the portfolio looks like now, in the quote currency."""

    ts_ms: int
    cash: float
    equity: float
    peak_equity: float
    exposure: tuple[tuple[str, float], ...]
    realized_pnl: float
    full: bool = True
    """True: ``exposure`` lists every open position (risk replaces its view). False: only the
    pairs this change moved, 0.0 for one that closed (risk updates its view), which is what
    state sends after a fill or a mark: with 1,000 pairs a full list per change made both
    sides work in the number of open positions. Risk asks for a full one when it starts
    (``RequestPortfolio``)."""


@attrs.frozen(kw_only=True)
class RequestPortfolio:
    """Risk -> state: send me the whole portfolio (a tell, answered with a full
    ``PortfolioChanged``); risk trades no entry before it has one."""


# -- supervision and queries ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ChildFailed:
    """A child actor died; ``name`` is a service address or a pair."""

    name: str
    generation: int
    error: str


@attrs.frozen(kw_only=True)
class PairGeneration:
    """Supervisor -> risk and state: from now on only ``generation`` speaks for ``pair``."""

    pair: str
    generation: int


@attrs.frozen(kw_only=True)
class PausePair:
    """Stop opening positions on ``pair``; its open position is still managed."""

    pair: str


@attrs.frozen(kw_only=True)
class ResumePair:
    pair: str


@attrs.frozen(kw_only=True)
class FlattenPosition:
    """Supervisor -> state: sell the pair's whole position at market (the ``flatten`` policy
    for a pair that failed or was removed). State owns the position, so it proposes the exit."""

    pair: str
    ts_ms: int


@attrs.frozen(kw_only=True)
class PairRestarted:
    """Event: a pair's orchestrator was replaced."""

    pair: str
    generation: int
    restarts: int
    error: str


@attrs.frozen(kw_only=True)
class ServiceRestarted:
    """Event: a shared actor recovered from a failure (state reloads from its database)."""

    name: str
    restarts: int
    error: str


@attrs.frozen(kw_only=True)
class PairAdded:
    """Event: a pair started trading while the system ran."""

    pair: str
    strategy: str


@attrs.frozen(kw_only=True)
class PairRemoved:
    """Event: a pair stopped trading; ``policy`` says what happened to its position."""

    pair: str
    policy: str


@attrs.frozen(kw_only=True)
class StrategyRolledBack:
    """Event: a swapped-in strategy kept crashing; the pair went back to ``spec``."""

    pair: str
    spec: StrategySpec
    crashes: int


@attrs.frozen(kw_only=True)
class PairFailed:
    """Event: a pair exceeded its restart limit and stopped trading."""

    pair: str
    restarts: int
    error: str


class Query:
    """Marker base: a message sent with ``ask`` whose handler returns a reply value."""

    __slots__ = ()


@attrs.frozen(kw_only=True)
class GetPairBook(Query):
    pair: str


@attrs.frozen(kw_only=True)
class GetPortfolio(Query):
    """Reply: ``PortfolioSnapshot``."""


@attrs.frozen(kw_only=True)
class GetBalances(Query):
    """Reply: ``dict[str, float]`` of free balances."""


@attrs.frozen(kw_only=True)
class GetRiskStatus(Query):
    """Reply: ``RiskStatus``."""


@attrs.frozen(kw_only=True)
class GetHistory(Query):
    """Reply: ``tuple[MarketTick, ...]``, the pair's recent ticks, oldest first."""

    pair: str
    limit: int = 1000


@attrs.frozen(kw_only=True)
class Ping(Query):
    """Heartbeat; the reply is the same value."""

    nonce: int = 0


@attrs.frozen(kw_only=True)
class PortfolioSnapshot:
    quote: str
    cash: float
    equity: float
    peak_equity: float
    realized_pnl: float
    books: tuple[PairBook, ...]
    marks: tuple[tuple[str, float], ...]
    fills: int
    orders: int


@attrs.frozen(kw_only=True)
class RiskStatus:
    halted: bool
    halt_reason: str
    rejections: tuple[tuple[str, int], ...]
    approvals: int
    stale_pairs: tuple[str, ...] = ()
    """Pairs whose live feed is stale (entries refused with ``stale_feed``)."""


# -- control plane: steering by hand, history queries, audit (HTTP API, dashboard, alerts) -----


@attrs.frozen(kw_only=True)
class ForceExit:
    """Facade -> pair: close the open position at market on the next tick (reason
    ``flatten``), through the pair's own exit path, so an order already in flight is waited
    for rather than doubled."""

    pair: str


@attrs.frozen(kw_only=True)
class HaltEntries(Query):
    """Facade -> risk (ask): refuse every new entry until ``ResumeEntries`` (the kill switch by
    hand; exits still pass). Reply: ``RiskStatus``."""

    reason: str


@attrs.frozen(kw_only=True)
class ResumeEntries(Query):
    """Facade -> risk (ask): lift a halt made by hand. Reply: ``RiskStatus``."""


@attrs.frozen(kw_only=True)
class ResetHalt(Query):
    """Facade -> risk (ask): lift the drawdown and daily-loss halts; the current equity
    becomes the new peak and day start. Reply: ``RiskStatus``."""


@attrs.frozen(kw_only=True)
class HaltChanged:
    """Event: new entries were halted (``halted``, with the reason) or allowed again."""

    halted: bool
    reason: str
    ts_ms: int


@attrs.frozen(kw_only=True)
class SystemFailed:
    """Event: a shared actor failed past recovery; the system is stopping."""

    reason: str


@attrs.frozen(kw_only=True)
class KeepManualHalt:
    """Facade -> state: the halt made by hand now (``halted``, with its ``reason``), kept in
    the database so that a restarted system starts with entries halted as they were: a
    kill switch that a crash or a redeploy lifts would fail open."""

    halted: bool
    reason: str = ""


@attrs.frozen(kw_only=True)
class AuditRecord:
    """Who did what by hand, when, and how it ended (``outcome`` ``ok`` or the error)."""

    ts_ms: int
    actor: str
    """Who: ``python``, ``api 127.0.0.1``, ``telegram chat 42``."""
    action: str
    """The facade method: ``pause``, ``swap_strategy``, ``halt_entries``..."""
    target: str
    detail: str
    outcome: str


@attrs.frozen(kw_only=True)
class ClosedTrade:
    """A finished round trip as the state database records it."""

    pair: str
    opened_ms: int
    closed_ms: int
    amount: float
    entry_price: float
    exit_price: float
    pnl: float
    reason: ExitReason


@attrs.frozen(kw_only=True)
class HistoryQuery(Query):
    """Base of the paged history queries: newest first, ``offset`` rows skipped, at most
    ``limit`` returned; ``pair`` and the ``[since_ms, until_ms]`` window filter."""

    pair: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 100
    offset: int = 0


@attrs.frozen(kw_only=True)
class GetOrders(HistoryQuery):
    """Reply: ``tuple[Order, ...]`` (``open_only``: those not yet terminal)."""

    open_only: bool = False


@attrs.frozen(kw_only=True)
class GetFills(HistoryQuery):
    """Reply: ``tuple[Fill, ...]``."""


@attrs.frozen(kw_only=True)
class GetTrades(HistoryQuery):
    """Reply: ``tuple[ClosedTrade, ...]``."""


@attrs.frozen(kw_only=True)
class GetEquity(HistoryQuery):
    """Reply: ``tuple[tuple[int, float], ...]`` equity points (``pair`` is ignored)."""


@attrs.frozen(kw_only=True)
class GetAudit(HistoryQuery):
    """Reply: ``tuple[AuditRecord, ...]`` (``pair`` filters by target)."""


# -- construction ------------------------------------------------------------------------------

_P = ParamSpec("_P")
_T = TypeVar("_T")
_BUILDERS: dict[type, Callable[..., Any]] = {}


def builder(cls: Callable[_P, _T]) -> Callable[_P, _T]:
    """A function that builds ``cls`` values as ``cls(...)`` does (the same arguments, the
    same frozen attrs value, ``type(value) is cls``), for the messages built on every order.

    Why it is cheaper (CPython 3.11, callgrind): a class call hands ``__init__`` its arguments
    through a new tuple and dict (about 2,000 instructions), and a frozen class's fields can
    only be set through a slot's ``__set__`` or ``object.__setattr__``, a call each that
    packs its arguments in a tuple (about 550 instructions a field; a ``Fill`` has nine, an
    order about ninety fields in all). A builder is a plain function: it makes the value as
    an instance of a private subclass that adds no slots and keeps ``object.__setattr__``, so
    each field is a plain attribute store (tens of instructions), and then gives it its class
    (``__class__`` assignment, allowed between two classes of the same layout). The value is
    frozen from then on, as any other.

    Raises:
        TypeError: ``cls`` is not a message of this module that can be built directly.
    """
    try:
        return _BUILDERS[cls]  # type: ignore[index]
    except KeyError:
        raise TypeError(f"{cls!r} has no builder: only the messages of actors.messages "
                        "without validators, converters or factories have one") from None


def _direct_init(cls: type) -> None:
    """Give the frozen attrs class ``cls`` a cheaper ``__init__`` with attrs' signature (the
    same names, order, keyword-only fields and defaults), so it is built as before and stays
    an attrs frozen value (fields, eq, hash, repr, ``attrs.evolve``); and a ``builder`` (see
    there).

    Why: attrs' own ``__init__`` for a frozen class calls ``object.__setattr__`` for every
    field, which packs its arguments in a tuple and looks the name up along the class's MRO.
    This one stores the fields as the builder does (a ``Fill`` by its class: 970 against
    590 ns); a class of three fields or fewer, or an instance of a subclass, has them set
    through the slots' own setters, which skip the lookup. Classes with validators,
    converters, factories or a pre- or post-init keep attrs' ``__init__``.
    """
    if hasattr(cls, "__attrs_post_init__") or hasattr(cls, "__attrs_pre_init__"):
        return
    # Both of object's own: CPython then stores attributes of it with no Python-level call
    # (attrs' frozen ``__delattr__`` alone would route every store through a lookup).
    writable = type(f"_Writable{cls.__name__}", (cls,), {
        "__slots__": (), "__setattr__": object.__setattr__, "__delattr__": object.__delattr__,
        "__module__": cls.__module__})
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_writable": writable,
                             "_set_class": object.__setattr__}
    positional: list[str] = []
    keywords: list[str] = []
    sets: list[str] = []
    stores: list[str] = []
    for field in attrs.fields(cls):
        slot = getattr(cls, field.name, None)
        if (not field.init or field.validator is not None or field.converter is not None
                or isinstance(field.default, attrs.Factory)  # type: ignore[arg-type]
                or not isinstance(slot, types.MemberDescriptorType)):
            return
        param = field.name
        if field.default is not attrs.NOTHING:
            scope[f"_default_{field.name}"] = field.default
            param = f"{field.name}=_default_{field.name}"
        (keywords if field.kw_only else positional).append(param)
        scope[f"_set_{field.name}"] = slot.__set__
        sets.append(f"    _set_{field.name}(self, {field.name})\n")
        stores.append(f"    self.{field.name} = {field.name}\n")
    params = ", ".join([*positional, *(["*", *keywords] if keywords else [])])
    # ``__init__`` turns the value into a writable one while it stores the fields, as the
    # builder does (two class assignments instead of a call per field); an instance of a
    # subclass of ``cls`` keeps its class and is set field by field.
    # (Up to three fields, the two assignments cost more than the calls they save.)
    indented = "".join(f"    {line}" for line in stores)
    switch = (f"    if type(self) is _cls:\n        _set_class(self, '__class__', _writable)\n"
              f"{indented}        self.__class__ = _cls\n        return\n" if len(sets) > 3
              else "")
    source = (f"def __init__(self{', ' if params else ''}{params}):\n{switch}"
              f"{''.join(sets)}    pass\n"
              f"def build({params}):\n    self = _new(_writable)\n{''.join(stores)}"
              "    self.__class__ = _cls\n    return self\n")
    exec(compile(source, f"<direct init of {cls.__qualname__}>", "exec"), scope)  # noqa: S102
    init, build = scope["__init__"], scope["build"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    build.__qualname__ = f"builder({cls.__qualname__})"
    init.__doc__ = build.__doc__ = cls.__dict__["__init__"].__doc__
    type.__setattr__(cls, "__init__", init)
    _BUILDERS[cls] = build


for _message in list(globals().values()):
    if isinstance(_message, type) and attrs.has(_message) and _message.__module__ == __name__:
        _direct_init(_message)
del _message
_market_tick = builder(MarketTick)
