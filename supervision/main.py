"""Command-line entry point: ``python -m supervision.main`` and the ``trade-conductor`` script.

Kept tiny on purpose. The trading run lives in ``supervision.app.cli``; an argument list that
starts with a research command (``download``, ``backtest``, ``optimize``) goes to
``supervision.research.cli`` instead, so ``--pairs ...`` alone still trades.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from supervision.app import run

RESEARCH_COMMANDS = ("download", "backtest", "optimize")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in RESEARCH_COMMANDS:
        from supervision.research import run as research  # its imports load only when asked

        return research(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
