"""Leave what the start built out of the garbage collector's full passes.

Why: at 1,000 pairs a full collection walked every object the start made (actors, strategies,
handles, histories) for 50-56 ms with the GIL held, and every tick waited; a system running
for hours makes one now and then. Frozen after the start (``gc.freeze``), a full pass walks
only what came later: 0.1 ms just after, 5-10 ms after 5 s of trading at 1,000 pairs. The CLI
owns its process, so it may; an embedding program decides for itself (``TradingSystem`` never
freezes). Given back at the end, so that a program running the CLI in-process (the tests)
has its objects collected again.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def start_frozen() -> Iterator[None]:
    """Freeze every object there is until the block ends. No collection first: the pairs
    trade by now, and a full collection at 1,000 pairs held every tick up for 50 ms (at two
    pairs the first run's p99 read 14 ms); what little garbage the start left is frozen with
    the rest and collected once it is given back."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
