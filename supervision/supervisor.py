"""The supervisor actor: starts each pair's orchestrator and restarts it when it crashes.

It runs on its own pykka thread and only ever receives messages: ``ChildFailed`` from a
crashed child's ``on_failure``, ``RestartChild`` from its own backoff timers, ``FeedEnded``
from the market data actor. A pair is restarted one-for-one with a new generation behind the
same ``PairHandle``, so nobody else notices; past its restart limit it is marked ``failed``
and stops trading while the other pairs go on. A crash of a shared actor (state, risk,
execution, market data) is escalated: the system is stopped and reports the failure.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import pykka
from loguru import logger

from actors.messages import (
    EVENTS,
    RISK,
    SERVICES,
    STATE,
    ChildFailed,
    FeedEnded,
    MarketTick,
    PairFailed,
    PairGeneration,
    PairRestarted,
    RequestBook,
    StrategySpec,
)
from actors.orchestrator import OrchestratorActor
from actors.router import Router
from supervision.assembly import make_orchestrator, make_strategy
from supervision.config import SystemConfig
from supervision.restarts import RestartTracker


@attrs.frozen(kw_only=True)
class StartPairs:
    """Facade -> supervisor (ask): start these pairs with these strategies."""

    specs: tuple[tuple[str, StrategySpec], ...]


@attrs.frozen(kw_only=True)
class RestartChild:
    name: str
    generation: int
    error: str


@attrs.frozen(kw_only=True)
class Shutdown:
    """Facade -> supervisor (ask): stop restarting; the system is going down."""


class SupervisorActor(pykka.ThreadingActor):
    def __init__(
        self,
        config: SystemConfig,
        router: Router,
        history: Callable[[str, int], tuple[MarketTick, ...]],
        on_feed_ended: Callable[[FeedEnded], None],
        on_escalation: Callable[[str], None],
    ) -> None:
        super().__init__()
        self.config = config
        self.router = router
        self.history = history
        self.on_feed_ended = on_feed_ended
        self.on_escalation = on_escalation
        self.tracker = RestartTracker(config.restart)
        self.timers: list[threading.Timer] = []
        self.shutting_down = False

    def on_receive(self, message: Any) -> Any:
        match message:
            case StartPairs(specs=specs):
                for pair, spec in specs:
                    self.start_pair(pair, spec, generation=0)
            case ChildFailed(name=name) if name in SERVICES:
                self.escalate(f"{name} actor failed: {message.error}")
            case ChildFailed():
                self.pair_failed(message)
            case RestartChild():
                self.restart_pair(message)
            case FeedEnded():
                self.on_feed_ended(message)
            case Shutdown():
                self.shutting_down = True
                for timer in self.timers:
                    timer.cancel()
            case _:
                logger.warning("supervisor: unexpected message {!r}", message)
        return None

    def build_strategy(self, pair: str, spec: StrategySpec) -> Any:
        return make_strategy(spec, self.history(pair, self.config.history_size))

    def start_pair(self, pair: str, spec: StrategySpec, generation: int) -> None:
        handle = self.router.pairs.get(pair) or self.router.add_pair(
            pair, self.config.max_inflight_ticks)
        if generation:
            # Fence first: whatever an older generation sends from now on is dropped.
            fence = PairGeneration(pair=pair, generation=generation)
            self.router.tell(RISK, fence)
            self.router.tell(STATE, fence)
        core = make_orchestrator(self.config, pair, spec, self.build_strategy, generation)
        ref = OrchestratorActor.start(core, self.router, handle)
        handle.attach(ref, generation)
        # Only now can the state actor's answer reach the new actor through the handle.
        self.router.tell(STATE, RequestBook(pair=pair))
        handle.state = "running"

    def pair_failed(self, failure: ChildFailed) -> None:
        handle = self.router.pairs.get(failure.name)
        if handle is None or failure.generation != handle.generation or self.shutting_down:
            return  # a stale generation, a removed pair, or the end: nothing to restart
        handle.detach()
        handle.last_error = failure.error
        decision = self.tracker.on_failure(failure.name, time.monotonic())
        if not decision.restart:
            handle.state = "failed"
            logger.critical("ALERT {}: {} crashes within {:.0f} s, giving up; the pair stops "
                            "trading, other pairs go on. Last error: {}", failure.name,
                            decision.recent_failures, self.config.restart.window_s,
                            failure.error)
            self.router.tell(EVENTS, PairFailed(pair=failure.name, restarts=handle.restarts,
                                                error=failure.error))
            return
        handle.state = "restarting"
        logger.warning("{} crashed ({}); restart in {:.2f} s", failure.name, failure.error,
                       decision.delay_s)
        restart = RestartChild(name=failure.name, generation=failure.generation + 1,
                               error=failure.error)
        timer = threading.Timer(decision.delay_s, self._tell_self, args=(restart,))
        timer.daemon = True
        self.timers = [t for t in self.timers if t.is_alive()] + [timer]
        timer.start()

    def _tell_self(self, message: object) -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # stopped during the backoff
            self.actor_ref.tell(message)

    def restart_pair(self, restart: RestartChild) -> None:
        handle = self.router.pairs.get(restart.name)
        if handle is None or handle.state != "restarting" or self.shutting_down:
            return
        spec = handle.spec or self.config.strategy
        try:
            self.start_pair(restart.name, spec, restart.generation)
        except Exception as exc:  # noqa: BLE001 - a strategy that fails to build is a crash
            logger.exception("{}: restart failed", restart.name)
            self.pair_failed(ChildFailed(name=restart.name, generation=handle.generation,
                                         error=repr(exc)))
            return
        handle.restarts += 1
        self.router.tell(EVENTS, PairRestarted(pair=restart.name, generation=restart.generation,
                                               restarts=handle.restarts, error=restart.error))

    def escalate(self, reason: str) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        logger.critical("ALERT escalation: {}; stopping the system", reason)
        self.on_escalation(reason)
