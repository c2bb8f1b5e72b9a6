"""The strategies package stays free of the actor machinery."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import strategies

PACKAGE = Path(strategies.__file__).parent


def test_importing_every_strategy_module_loads_no_actor_machinery_and_starts_no_thread():
    """Only ``actors.messages`` of the actors package (and ``actors.cpus``, the standard
    library's CPU affinity for an isolated strategy's process), no pykka, no supervision, one
    thread."""
    modules = sorted(f"strategies.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    probe = (
        "import importlib, json, sys, threading\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps({'modules': sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "    ('actors', 'pykka', 'supervision', 'ccxt')), 'threads': threading.active_count()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent, timeout=60)

    loaded = json.loads(out.stdout)
    assert len(modules) >= 10
    assert loaded == {"modules": ["actors", "actors.cpus", "actors.messages"], "threads": 1}
