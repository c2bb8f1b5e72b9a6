"""The routes of ``/api/v1`` and ``/health``: each a thin layer over the ``TradingSystem``
method of the same name (its ``operationId``).

A handler turns the request into the method's arguments, calls it with ``by="api <client>"``
(the audit's who), and turns the answer into JSON. Handlers that call the facade are plain
functions, which FastAPI runs on worker threads, since the facade asks actors. Errors become
one JSON ``{"error": message}`` each, never a traceback: an unknown pair 404, a bad value 422,
a malformed body 400, a state that forbids the call (already trading, no position) 409, a
strategy not allowed 403, a stopped system 503, an actor that did not answer in time 504.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

import pykka
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from actors.messages import AuditRecord
from actors.pairs import PairError, split_pair
from supervision.api.queries import MAX_PAGE, jsonable
from supervision.config import ConfigError, strategy_allowed, strategy_spec_from

if TYPE_CHECKING:
    from supervision.system import TradingSystem

V1 = "/api/v1"
bearer = HTTPBearer(auto_error=False,
                    description="The token named at start (CONDUCTOR_API_TOKEN, [api] "
                                "secrets_file or the generated token file)")
"""Documents the scheme in the OpenAPI description; ``_Guard`` (``supervision.api.server``)
enforces it for every path under /api/, so no route can forget it."""


class NotAllowedError(Exception):
    """A strategy the operator did not allow for requests from outside."""


# -- bodies --------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StrategyBody(_Body):
    """A strategy as in ``[strategy]``: a built-in or allowed name and its params; an
    aggregate has members, a rule and a threshold."""

    name: str = Field(min_length=1, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    members: list[StrategyBody] | None = None
    rule: str | None = None
    threshold: float | None = None
    weight: float | None = None


class AddPairBody(_Body):
    pair: str = Field(min_length=3, max_length=40, examples=["SOL/USDT"])
    strategy: StrategyBody | None = None


class HaltBody(_Body):
    reason: str = Field(default="", max_length=200)


# -- helpers -------------------------------------------------------------------------------------


def _system(request: Request) -> TradingSystem:
    system: TradingSystem = request.app.state.system
    return system


def _by(request: Request) -> str:
    client = request.client.host if request.client else "?"
    return f"api {client}"


def _pair(system: TradingSystem, text: str) -> str:
    """``BTC-USDT`` (or ``BTC_USDT``, or ``BTC/USDT`` encoded) -> ``BTC/USDT``."""
    pair = text.replace("-", "/", 1).replace("_", "/", 1) if "/" not in text else text
    try:
        split_pair(pair)
    except PairError:
        raise KeyError(f"no pair {text!r}; write it as BASE-QUOTE, e.g. BTC-USDT; trading: "
                       f"{', '.join(system.pair_names())}") from None
    return pair


def _spec(system: TradingSystem, body: StrategyBody, by: str, target: str) -> Any:
    spec = strategy_spec_from(body.model_dump(exclude_none=True))
    why = strategy_allowed(spec, system.allowed_strategies())
    if why:
        system.record_audit(AuditRecord(ts_ms=int(time.time() * 1000), actor=by,
                                        action="swap_strategy", target=target,
                                        detail=body.name, outcome=f"refused: {why}"))
        raise NotAllowedError(why)
    return spec


def _page(items: tuple[Any, ...], limit: int, offset: int) -> dict[str, Any]:
    return {"items": jsonable(items), "offset": offset, "limit": limit,
            "next_offset": offset + len(items) if len(items) == limit else None}


def _done(action: str, result: Any = None) -> dict[str, Any]:
    return {"ok": True, "action": action, "result": jsonable(result)}


Limit = Query(100, ge=1, le=MAX_PAGE, description="rows per page")
Offset = Query(0, ge=0, description="rows to skip (newest first)")
Since = Query(None, description="from this time on (ms since the epoch)")
Until = Query(None, description="up to this time (ms since the epoch)")
PairFilter = Query(None, description="only this pair, e.g. BTC/USDT or BTC-USDT")


# -- routes ----------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Add the routes and the error answers to ``app``."""
    api = APIRouter(prefix=V1, dependencies=[Depends(bearer)])

    @app.get("/health", operation_id="health", tags=["read"])
    def health(request: Request) -> JSONResponse:
        """Whether the system is healthy (no token needed; 503 when not)."""
        report = _system(request).health()
        return JSONResponse(report.as_dict(), status_code=200 if report.healthy else 503)

    @api.get("/status", operation_id="status", tags=["read"],
             responses={200: {"content": {"application/json": {}}}})
    def status(request: Request) -> Response:
        """The portfolio and every pair: state, strategy, price, position, PnL, latency,
        restarts, ticks, shed and dropped (at most a quarter of a second old)."""
        return Response(request.app.state.status_body(), media_type="application/json")

    @api.get("/pairs/{pair}", operation_id="pair_status", tags=["read"])
    def pair_status(request: Request, pair: str) -> dict[str, Any]:
        """One pair (written BASE-QUOTE in the path, e.g. BTC-USDT)."""
        system = _system(request)
        answer: dict[str, Any] = jsonable(system.pair_status(_pair(system, pair)))
        return answer

    @api.get("/orders", operation_id="orders", tags=["read"])
    def orders(request: Request, *, pair: str | None = PairFilter,
               status: Literal["open", "all"] = "open", since_ms: int | None = Since,
               until_ms: int | None = Until, limit: int = Limit,
               offset: int = Offset) -> dict[str, Any]:
        """Orders, newest first: the open ones (default) or all."""
        system = _system(request)
        items = system.orders(_filter(system, pair), open_only=status == "open",
                              since_ms=since_ms, until_ms=until_ms, limit=limit, offset=offset)
        return _page(items, limit, offset)

    @api.get("/fills", operation_id="fills", tags=["read"])
    def fills(request: Request, *, pair: str | None = PairFilter, since_ms: int | None = Since,
              until_ms: int | None = Until, limit: int = Limit,
              offset: int = Offset) -> dict[str, Any]:
        """Fills, newest first."""
        system = _system(request)
        return _page(system.fills(_filter(system, pair), since_ms=since_ms, until_ms=until_ms,
                                  limit=limit, offset=offset), limit, offset)

    @api.get("/trades", operation_id="trades", tags=["read"])
    def trades(request: Request, *, pair: str | None = PairFilter, since_ms: int | None = Since,
               until_ms: int | None = Until, limit: int = Limit,
               offset: int = Offset) -> dict[str, Any]:
        """Closed round trips with their PnL, newest first."""
        system = _system(request)
        return _page(system.trades(_filter(system, pair), since_ms=since_ms, until_ms=until_ms,
                                   limit=limit, offset=offset), limit, offset)

    @api.get("/equity", operation_id="equity", tags=["read"])
    def equity(request: Request, *, since_ms: int | None = Since, until_ms: int | None = Until,
               limit: int = Query(1000, ge=1, le=MAX_PAGE)) -> dict[str, Any]:
        """The equity curve, oldest first, each point with its drawdown."""
        points = _system(request).equity(since_ms=since_ms, until_ms=until_ms, limit=limit)
        return {"items": jsonable(points)}

    @api.get("/risk", operation_id="risk", tags=["read"])
    def risk(request: Request) -> dict[str, Any]:
        """Halts, limits and rejections by reason."""
        answer: dict[str, Any] = jsonable(_system(request).risk())
        return answer

    @api.get("/config", operation_id="effective_config", tags=["read"])
    def effective_config(request: Request) -> dict[str, Any]:
        """The configuration in force, every secret redacted."""
        return _system(request).effective_config()

    @api.get("/audit", operation_id="audit", tags=["read"])
    def audit(request: Request, *, since_ms: int | None = Since, until_ms: int | None = Until,
              limit: int = Limit, offset: int = Offset) -> dict[str, Any]:
        """Who steered what, when, and how it ended; newest first."""
        items = _system(request).audit(since_ms=since_ms, until_ms=until_ms, limit=limit,
                                       offset=offset)
        return _page(items, limit, offset)

    @api.get("/strategies", operation_id="allowed_strategies", tags=["read"])
    def allowed_strategies(request: Request) -> dict[str, Any]:
        """The strategies a request may swap in."""
        return {"items": list(_system(request).allowed_strategies())}

    @api.get("/events", operation_id="events", tags=["read"],
             response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    async def events(request: Request, *, after: int | None = Query(None, ge=0),
                     last: int | None = Query(None, ge=0, le=100_000),
                     last_event_id: str | None = Header(None)) -> StreamingResponse:
        """Server-sent events: fills, orders, trades, swaps, restarts, halts, alerts, each with
        a sequence number (``id``); ``Last-Event-ID`` or ``after`` resumes after one, ``last``
        replays the last N; a ``status`` snapshot comes every second."""
        if after is None and last_event_id is not None and last_event_id.isdigit():
            after = int(last_event_id)
        stream = request.app.state.stream
        return StreamingResponse(stream.stream(stream.start_after(after, last)),
                                 media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    @api.post("/pairs", operation_id="add_pair", tags=["steer"], status_code=201)
    def add_pair(request: Request, body: AddPairBody) -> dict[str, Any]:
        """Start trading a pair (default strategy: the configured one)."""
        system, by = _system(request), _by(request)
        spec = None if body.strategy is None else _spec(system, body.strategy, by, body.pair)
        system.add_pair(body.pair, spec, by=by)
        return _done("add_pair", body.pair)

    @api.delete("/pairs/{pair}", operation_id="remove_pair", tags=["steer"])
    def remove_pair(request: Request, pair: str,
                    policy: Literal["hold", "flatten"] = "hold") -> dict[str, Any]:
        """Stop trading a pair: ``hold`` keeps its position, ``flatten`` sells it."""
        system = _system(request)
        name = _pair(system, pair)
        system.remove_pair(name, policy, by=_by(request))
        return _done("remove_pair", name)

    @api.post("/pairs/{pair}/pause", operation_id="pause", tags=["steer"])
    def pause(request: Request, pair: str) -> dict[str, Any]:
        """No new entries on the pair; its position's exits still run."""
        system = _system(request)
        name = _pair(system, pair)
        system.pause(name, by=_by(request))
        return _done("pause", name)

    @api.post("/pairs/{pair}/resume", operation_id="resume", tags=["steer"])
    def resume(request: Request, pair: str) -> dict[str, Any]:
        """New entries on the pair again."""
        system = _system(request)
        name = _pair(system, pair)
        system.resume(name, by=_by(request))
        return _done("resume", name)

    @api.put("/pairs/{pair}/strategy", operation_id="swap_strategy", tags=["steer"])
    def swap_strategy(request: Request, pair: str, body: StrategyBody) -> dict[str, Any]:
        """Swap the pair's strategy while it trades (allowed strategies only)."""
        system, by = _system(request), _by(request)
        name = _pair(system, pair)
        system.swap_strategy(name, _spec(system, body, by, name), by=by)
        return _done("swap_strategy", name)

    @api.post("/pairs/{pair}/exit", operation_id="force_exit", tags=["steer"])
    def force_exit(request: Request, pair: str) -> dict[str, Any]:
        """Sell the pair's position at market on its next tick."""
        system = _system(request)
        name = _pair(system, pair)
        return _done("force_exit", {"pair": name,
                                    "amount": system.force_exit(name, by=_by(request))})

    @api.post("/exit", operation_id="force_exit_all", tags=["steer"])
    def force_exit_all(request: Request) -> dict[str, Any]:
        """Sell every position at market."""
        return _done("force_exit_all", _system(request).force_exit_all(by=_by(request)))

    @api.post("/halt", operation_id="halt_entries", tags=["steer"])
    def halt_entries(request: Request, body: HaltBody | None = None) -> dict[str, Any]:
        """The kill switch by hand: no new entries anywhere; exits still run."""
        reason = body.reason if body is not None else ""
        return _done("halt_entries", _system(request).halt_entries(reason, by=_by(request)))

    @api.post("/resume", operation_id="resume_entries", tags=["steer"])
    def resume_entries(request: Request) -> dict[str, Any]:
        """Lift a halt made by hand."""
        return _done("resume_entries", _system(request).resume_entries(by=_by(request)))

    @api.post("/halt/reset", operation_id="reset_halt", tags=["steer"])
    def reset_halt(request: Request) -> dict[str, Any]:
        """Lift a drawdown or daily-loss halt; the current equity becomes the new peak."""
        return _done("reset_halt", _system(request).reset_halt(by=_by(request)))

    app.include_router(api)
    _install_errors(app)


def _filter(system: TradingSystem, pair: str | None) -> str | None:
    return None if pair is None else _pair(system, pair)


def _install_errors(app: FastAPI) -> None:
    from supervision.system import SystemNotRunningError

    def answer(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        malformed = False
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
            kind = error.get("type", "")
            if kind == "json_invalid":
                malformed = True
                problems.append(f"the body is not valid JSON ({error.get('msg', '')})")
            elif kind == "extra_forbidden":
                problems.append(f"unknown field {where!r}")
            elif kind == "missing" and where == "body":
                malformed = True
                problems.append("a JSON body is required")
            elif kind in ("model_attributes_type", "dict_type"):
                malformed = True
                problems.append(f"{where}: expected a JSON object")
            else:
                problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse({"error": "; ".join(problems), "problems": problems},
                            status_code=400 if malformed else 422)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return answer(exc.status_code, str(exc.detail))

    def handler(status: int) -> Any:
        async def handle(_request: Request, exc: Exception) -> JSONResponse:
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return answer(status, str(text))
        return handle

    # Most specific first: ConfigError and SystemNotRunningError are a ValueError and a
    # RuntimeError; Starlette picks the handler by the exception's class hierarchy.
    for kind, status in ((NotAllowedError, 403), (KeyError, 404), (ConfigError, 422),
                         (ValueError, 409), (SystemNotRunningError, 503)):
        app.add_exception_handler(kind, handler(status))

    async def timed_out(_request: Request, _exc: Exception) -> JSONResponse:
        return answer(504, "the system did not answer in time; try again")

    app.add_exception_handler(pykka.Timeout, timed_out)
