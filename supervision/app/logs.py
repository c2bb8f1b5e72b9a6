"""Process-wide logging for the command line: stderr, and a rotating file under ``log_dir``.

Only the CLI calls ``configure`` (the library never configures logging; see STYLE.md). Every
record carries ``actor`` and ``pair`` in its ``extra``:
- ``actor`` comes from the thread that logs, which already says who is speaking: pykka names
  an actor's thread after its class (``RiskActor-3`` is ``risk``), each pair's orchestrator
  renames its thread to ``OrchestratorActor[BTC/USDT]``, and the feed, watchdog and main
  threads keep their own names. A patcher reads it per record, so no actor has to bind a
  logger, and a log call on the hot path costs nothing more when its level is off.
- ``pair`` is the orchestrator's pair on its thread, whatever a caller bound with
  ``logger.bind(pair=...)`` elsewhere (the CLI's event log does), and "" otherwise.

Formats: human-readable lines by default (stderr as before; the file adds the date, actor and
pair), or one JSON object per line with ``json=True``, in both sinks. The file rotates at
10 MB and keeps the newest five, and is created with the first record, never before.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from typing import Any

from loguru import logger

LOGGED_PACKAGES = ("actors", "supervision", "strategies")
LOG_FILE = "trade-conductor.log"
STDERR_FORMAT = "{time:HH:mm:ss.SSS} {level: <8} {message}"
FILE_FORMAT = ("{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <8} {extra[actor]: <12} "
               "{extra[pair]: <10} {message}")

_PYKKA_THREAD = re.compile(r"^(?P<cls>[A-Za-z]+?)Actor(?:-\d+|\[(?P<pair>[^\]]*)\])$")
_THREAD_ACTORS = {"feed": "market_data", "MainThread": "main"}


def configure(level: str, *, json_lines: bool = False, log_dir: str | None = None) -> None:
    """Replace loguru's sinks: stderr at ``level``, and ``log_dir/trade-conductor.log`` when
    ``log_dir`` is given; JSON lines instead of text with ``json_lines``."""
    logger.remove()
    logger.configure(patcher=_add_context)
    # diagnose=False: a traceback must never print variable values (keys, signatures).
    quiet = {"diagnose": False, "backtrace": False}
    if json_lines:
        logger.add(sys.stderr, level=level, format=_json_format, **quiet)
    else:
        logger.add(sys.stderr, level=level, format=STDERR_FORMAT, **quiet)
    if log_dir is not None:
        logger.add(os.path.join(log_dir, LOG_FILE), level=level,
                   format=_json_format if json_lines else FILE_FORMAT,
                   rotation="10 MB", retention=5, encoding="utf-8", delay=True, **quiet)
    for package in LOGGED_PACKAGES:
        logger.enable(package)
    # pykka reports an actor's crash (with its traceback) through stdlib logging; send those
    # records to the same sinks, so a JSON log or the file has the traceback too.
    pykka_log = logging.getLogger("pykka")
    pykka_log.handlers = [_ToLoguru()]
    pykka_log.propagate = False
    pykka_log.setLevel(logging.WARNING)


class _ToLoguru(logging.Handler):
    """A stdlib handler that re-emits records through loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(exception=record.exc_info).log(level, record.getMessage())


def actor_and_pair(thread_name: str) -> tuple[str, str]:
    """Who logs, from the thread's name: ``RiskActor-3`` -> ("risk", ""),
    ``OrchestratorActor[BTC/USDT]`` -> ("orchestrator", "BTC/USDT"), ``feed`` ->
    ("market_data", ""), any other thread -> (its name, "")."""
    match = _PYKKA_THREAD.match(thread_name)
    if match is None:
        return _THREAD_ACTORS.get(thread_name, thread_name), ""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", match["cls"]).lower()
    return snake, match["pair"] or ""


def _add_context(record: Any) -> None:
    actor, pair = actor_and_pair(record["thread"].name)
    extra = record["extra"]
    extra.setdefault("actor", actor)
    extra.setdefault("pair", pair)


def _json_format(record: Any) -> str:
    """One JSON object per record, flat: time, level, actor, pair, message, where it was
    logged, and the traceback if any. (loguru's ``serialize`` nests all of it, at about four
    times the size.)"""
    line: dict[str, Any] = {
        "time": record["time"].isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "actor": record["extra"].get("actor", ""),
        "pair": record["extra"].get("pair", ""),
        "message": record["message"],
        "logger": record["name"],
        "function": record["function"],
        "line": record["line"],
    }
    if record["exception"] is not None:
        error = record["exception"]
        line["exception"] = "".join(
            traceback.format_exception(error.type, error.value, error.traceback))
    record["extra"]["_json"] = json.dumps(line, default=str)
    return "{extra[_json]}\n"
