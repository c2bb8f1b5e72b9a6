"""The supervisor actor: starts each pair's orchestrator and keeps it running.

It runs on its own pykka thread and only ever receives messages: ``ChildFailed`` from a
crashed child's ``on_failure`` or from the watchdog (hangs), ``RestartChild`` from its own
backoff timers, ``FeedEnded`` from the market data actor, successful ``StrategySwapped``
events, and the facade's commands (start, add, remove, pause, resume, shutdown).

Semantics (one-for-one, as in OTP):
- A pair that crashes or hangs is replaced by a new actor with the next generation behind the
  same ``PairHandle``, after an exponential backoff. Risk and state are told the new
  generation first, so the old actor, if it ever wakes up, can neither trade nor write.
- Past ``max_restarts`` within ``window_s`` the pair is ``failed``: it stops trading, its
  position is held or flattened (``on_failure``), an ALERT is logged, other pairs go on.
- A strategy swapped in that crashes the pair ``rollback_after`` times before it has run
  ``clean_ticks`` ticks is replaced by the last strategy that ran cleanly.
- A shared actor (state, risk, execution, market data) that crashes or hangs is escalated:
  the facade stops the whole system and reports the failure.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import attrs
import pykka
from loguru import logger

from actors.messages import (
    EVENTS,
    EXECUTION,
    RISK,
    SERVICES,
    STATE,
    CancelPairOrders,
    ChildFailed,
    FeedEnded,
    FlattenPosition,
    ForceExit,
    MarketTick,
    PairAdded,
    PairFailed,
    PairGeneration,
    PairRemoved,
    PairRestarted,
    PausePair,
    RequestBook,
    ResumePair,
    StrategyAssigned,
    StrategyRolledBack,
    StrategySpec,
    StrategySwapped,
)
from actors.pair import OrchestratorActor, PairPool, close_strategy
from actors.router import PairHandle, Router
from supervision.config import SystemConfig
from supervision.runtime import make_orchestrator, make_strategy
from supervision.tree.restarts import RestartTracker


@attrs.frozen(kw_only=True)
class StartPairs:
    """Facade -> supervisor (ask): start these pairs with these strategies."""

    specs: tuple[tuple[str, StrategySpec], ...]
    generations: tuple[tuple[str, int], ...] = ()
    """First generation per pair where it is not 0: a shard placed again continues above
    every generation the head has fenced (``supervision.cluster``)."""

    def timeout(self, ask_timeout: float) -> float:
        """How long the asker waits: ``ask_timeout`` and ``PAIR_START_S`` a pair. 1,000
        pairs start in about 2 s on a quiet 2-core machine; under load (or a profiler) they
        passed a flat 5 s, and the system refused to start."""
        return ask_timeout + PAIR_START_S * len(self.specs)


PAIR_START_S = 0.02
"""Start time allowed per pair on top of the ask timeout (see ``StartPairs.timeout``)."""


@attrs.frozen(kw_only=True)
class AddPair:
    """Facade -> supervisor (ask): start trading ``pair`` now."""

    pair: str
    spec: StrategySpec


@attrs.frozen(kw_only=True)
class RemovePair:
    """Facade -> supervisor (ask): stop ``pair``; ``policy`` is ``hold`` or ``flatten``."""

    pair: str
    policy: str


@attrs.frozen(kw_only=True)
class SetPaused:
    """Facade -> supervisor (ask): pause (no new entries) or resume ``pair``."""

    pair: str
    paused: bool


@attrs.frozen(kw_only=True)
class RestartChild:
    name: str
    generation: int
    error: str
    rollback_to: StrategySpec | None = None


@attrs.frozen(kw_only=True)
class Shutdown:
    """Facade -> supervisor (ask): stop restarting; the system is going down."""


@attrs.define
class _Candidate:
    """A strategy swapped in that has not yet proven itself."""

    spec: StrategySpec
    ticks_at_swap: int
    crashes: int = 0


class SupervisorActor(pykka.ThreadingActor):
    def __init__(
        self,
        config: SystemConfig,
        router: Router,
        history: Callable[[str, int], tuple[MarketTick, ...]],
        on_feed_ended: Callable[[FeedEnded], None],
        on_escalation: Callable[[str], None],
        *,
        pool: PairPool | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.router = router
        self.history = history
        self.on_feed_ended = on_feed_ended
        self.on_escalation = on_escalation
        self.pool = pool
        """Where the pair actors run (None: a thread each)."""
        self.tracker = RestartTracker(config.restart)
        self.timers: list[threading.Timer] = []
        self.shutting_down = False
        self.good_spec: dict[str, StrategySpec] = {}
        """Per pair, the last strategy that ran cleanly (what a rollback returns to)."""
        self.candidates: dict[str, _Candidate] = {}
        self.next_generation: dict[str, int] = {}
        """Per pair, the generation its next actor gets; set (and fenced) when the previous
        one is retired, so that a re-added pair continues past its old generations."""
        self._unsubscribe: Callable[[], None] | None = None
        self._built: dict[str, weakref.WeakSet[Any]] = {}
        """Per pair, the strategies built for its current and retired actors (weakly)."""
        self._built_lock = threading.Lock()

    def on_start(self) -> None:
        self._unsubscribe = self.router.subscribe(self._forward_swaps)

    def on_stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        # The pairs have been stopped before us; any left (hung) lose their strategies now.
        self._close_strategies()

    def _forward_swaps(self, event: object) -> None:
        """Runs on the pair's thread: only hand the event over to the supervisor's."""
        if isinstance(event, StrategySwapped) and not event.error:
            self._tell_self(event)

    def on_receive(self, message: Any) -> Any:
        match message:
            case StartPairs(specs=specs, generations=generations):
                self.next_generation.update(generations)
                for pair, spec in specs:
                    self.start_pair(pair, spec)
            case AddPair():
                return self.add_pair(message)
            case RemovePair():
                return self.remove_pair(message)
            case SetPaused():
                return self.set_paused(message)
            case ChildFailed(name=name) if name in SERVICES:
                self.escalate(f"{name} actor failed: {message.error}")
            case ChildFailed():
                self.pair_failed(message)
            case RestartChild():
                self.restart_pair(message)
            case StrategySwapped():
                self.strategy_swapped(message)
            case FeedEnded():
                self.on_feed_ended(message)
            case Shutdown():
                self.shutting_down = True
                for timer in self.timers:
                    timer.cancel()
            case _:
                logger.warning("supervisor: unexpected message {!r}", message)
        return None

    # -- starting --------------------------------------------------------------------------------

    def build_strategy(self, pair: str, spec: StrategySpec) -> Any:
        """Runs on this thread (starts, restarts) or on the pair's own (swaps)."""
        strategy = make_strategy(spec, self.history(pair, self.config.history_size))
        with self._built_lock:
            self._built.setdefault(pair, weakref.WeakSet()).add(strategy)
        return strategy

    def _close_strategies(self, pair: str | None = None) -> None:
        """Close what the pair's retired actors may still hold: a hung pair never runs its
        own ``on_stop``, and its isolated strategy's process must not outlive it."""
        with self._built_lock:
            pairs = list(self._built) if pair is None else [pair]
            built = [s for p in pairs for s in self._built.pop(p, ())]
        for strategy in built:
            close_strategy(strategy)

    def start_pair(self, pair: str, spec: StrategySpec, *, persist_spec: bool = False) -> None:
        """Start the pair's next generation (already fenced by ``_retire``)."""
        handle = self.router.pairs.get(pair) or self.router.add_pair(
            pair, self.config.max_inflight_ticks)
        generation = self.next_generation.get(pair, 0)
        if persist_spec:
            self.router.tell(STATE, StrategyAssigned(pair=pair, spec=spec, generation=generation))
        core = make_orchestrator(self.config, pair, spec, self.build_strategy, generation,
                                 paused=handle.paused)
        inbox = handle.new_inbox()
        ref = OrchestratorActor.start(core, self.router, handle, inbox, pool=self.pool)
        handle.attach(ref, generation, inbox)
        handle.state = "running"
        self.good_spec.setdefault(pair, spec)
        # Only now can the state actor's answer reach the new actor through the handle.
        self.router.tell(STATE, RequestBook(pair=pair))
        if handle.exit_requested:  # asked of a generation that did not live to finish it
            self.router.tell(pair, ForceExit(pair=pair))

    def add_pair(self, command: AddPair) -> None:
        if command.pair in self.router.pairs:
            raise ValueError(f"{command.pair} is already trading")
        self.start_pair(command.pair, command.spec)
        handle = self.router.pairs[command.pair]
        logger.info("{} added, trading {}", command.pair, handle.strategy)
        self.router.tell(EVENTS, PairAdded(pair=command.pair, strategy=handle.strategy))

    def remove_pair(self, command: RemovePair) -> None:
        handle = self.router.pairs.get(command.pair)
        if handle is None:
            raise KeyError(f"no pair {command.pair!r}; trading: {', '.join(self.router.pairs)}")
        self._retire(handle)
        handle.state = "stopped"
        self.router.remove_pair(command.pair)
        self.tracker.forget(command.pair)
        self.candidates.pop(command.pair, None)
        self._apply_policy(command.pair, command.policy)
        logger.info("{} removed ({} its position)", command.pair, command.policy)
        self.router.tell(EVENTS, PairRemoved(pair=command.pair, policy=command.policy))

    def set_paused(self, command: SetPaused) -> None:
        handle = self.router.pairs.get(command.pair)
        if handle is None:
            raise KeyError(f"no pair {command.pair!r}; trading: {', '.join(self.router.pairs)}")
        handle.paused = command.paused
        message = PausePair if command.paused else ResumePair
        self.router.tell(command.pair, message(pair=command.pair))
        logger.info("{} {}", command.pair, "paused" if command.paused else "resumed")

    def _retire(self, handle: PairHandle) -> None:
        """Take the actor out of service and fence it: from now on it speaks for nobody."""
        stale = handle.ref
        handle.detach()
        if stale is not None:
            # A crashed actor is already gone; a hung one gets a stop queued behind whatever
            # it is stuck on. If it ever wakes up it runs into the generation fence.
            with contextlib.suppress(pykka.ActorDeadError):
                stale.stop(block=False)
        generation = handle.generation + 1
        self.next_generation[handle.pair] = generation
        fence = PairGeneration(pair=handle.pair, generation=generation)
        self.router.tell(RISK, fence)
        self.router.tell(STATE, fence)

    def _apply_policy(self, pair: str, policy: str) -> None:
        """A pair nobody manages any more: its resting orders are cancelled first (execution
        hears this before the flatten, which goes through state and risk), then its position
        is held or flattened."""
        now_ms = int(time.time() * 1000)
        self.router.tell(EXECUTION, CancelPairOrders(pair=pair, ts_ms=now_ms))
        if policy == "flatten":
            self.router.tell(STATE, FlattenPosition(pair=pair, ts_ms=now_ms))

    # -- failures ----------------------------------------------------------------------------------

    def pair_failed(self, failure: ChildFailed) -> None:
        handle = self.router.pairs.get(failure.name)
        if handle is None or failure.generation != handle.generation or self.shutting_down:
            return  # a stale generation, a removed pair, or the end: nothing to restart
        if handle.ref is None and handle.state != "running":
            return  # already being replaced
        self._retire(handle)
        self._close_strategies(failure.name)
        handle.last_error = failure.error
        rollback_to = self._judge_candidate(handle)
        decision = self.tracker.on_failure(failure.name, time.monotonic())
        if not decision.restart:
            handle.state = "failed"
            policy = self.config.restart.on_failure
            logger.critical("ALERT {}: {} failures within {:.0f} s, giving up; the pair stops "
                            "trading ({} its position), other pairs go on. Last error: {}",
                            failure.name, decision.recent_failures,
                            self.config.restart.window_s, policy, failure.error)
            self._apply_policy(failure.name, policy)
            self.router.tell(EVENTS, PairFailed(pair=failure.name, restarts=handle.restarts,
                                                error=failure.error))
            return
        handle.state = "restarting"
        logger.warning("{} failed ({}); restart in {:.2f} s", failure.name, failure.error,
                       decision.delay_s)
        restart = RestartChild(name=failure.name, generation=failure.generation,
                               error=failure.error, rollback_to=rollback_to)
        timer = threading.Timer(decision.delay_s, self._tell_self, args=(restart,))
        timer.daemon = True
        self.timers = [t for t in self.timers if t.is_alive()] + [timer]
        timer.start()

    def strategy_swapped(self, swapped: StrategySwapped) -> None:
        handle = self.router.pairs.get(swapped.pair)
        if handle is None:
            return
        if swapped.spec == self.good_spec.get(swapped.pair):
            self.candidates.pop(swapped.pair, None)
        else:
            self.candidates[swapped.pair] = _Candidate(swapped.spec, handle.ticks)

    def _judge_candidate(self, handle: PairHandle) -> StrategySpec | None:
        """A crash after a swap: promote the new strategy if it has run cleanly long enough,
        or count it against the strategy and say when to roll back."""
        candidate = self.candidates.get(handle.pair)
        if candidate is None:
            return None
        policy = self.config.restart
        if handle.ticks - candidate.ticks_at_swap >= policy.clean_ticks:
            self.good_spec[handle.pair] = candidate.spec
            del self.candidates[handle.pair]
            return None
        candidate.crashes += 1
        if policy.rollback_after and candidate.crashes >= policy.rollback_after:
            del self.candidates[handle.pair]
            return self.good_spec.get(handle.pair)
        return None

    def _tell_self(self, message: object) -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # stopped meanwhile
            self.actor_ref.tell(message)

    def restart_pair(self, restart: RestartChild) -> None:
        handle = self.router.pairs.get(restart.name)
        if handle is None or handle.state != "restarting" or self.shutting_down:
            return
        spec = restart.rollback_to or handle.spec or self.config.strategy
        try:
            self.start_pair(restart.name, spec, persist_spec=restart.rollback_to is not None)
        except Exception as exc:  # noqa: BLE001 - a strategy that fails to build is a crash
            logger.exception("{}: restart failed", restart.name)
            handle.state = "running"  # so that the failure below is counted, not ignored
            self.pair_failed(ChildFailed(name=restart.name, generation=handle.generation,
                                         error=repr(exc)))
            return
        handle.restarts += 1
        if restart.rollback_to is not None:
            logger.warning("{}: the new strategy kept crashing; rolled back to {}",
                           restart.name, handle.strategy)
            self.router.tell(EVENTS, StrategyRolledBack(pair=restart.name,
                                                        spec=restart.rollback_to,
                                                        crashes=self.config.restart.rollback_after))
        self.router.tell(EVENTS, PairRestarted(pair=restart.name, generation=handle.generation,
                                               restarts=handle.restarts, error=restart.error))

    def escalate(self, reason: str) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        logger.critical("ALERT escalation: {}; stopping the system", reason)
        self.on_escalation(reason)
