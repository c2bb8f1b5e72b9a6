"""Command-line entry point: ``python -m supervision.main`` and the ``trade-conductor`` script.

Kept tiny on purpose: everything it does lives in ``supervision.app.cli``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from supervision.app import run


def main(argv: Sequence[str] | None = None) -> int:
    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
