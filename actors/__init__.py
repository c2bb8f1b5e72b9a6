"""Actors of trade-conductor and the plain cores they wrap.

Each ``actors/<name>.py`` holds one actor shell; its decisions live in a plain class beside it
(``*_core.py``, ``ledger.py``, ``paper_exchange.py``) that tests and the threadless runtime
call directly. Logging is disabled here until an application enables it.
"""

from loguru import logger

logger.disable("actors")
