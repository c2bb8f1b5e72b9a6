"""The crash-safety suite (``make chaos``, ``python -m bench.chaos``): the real program,
SIGKILLed at random moments while the exchange fails, checked after every round against the
exchange's own ledger; then a clean run that must reconcile everything.

``plan`` draws each round's schedule from the seed, ``rounds`` drives the processes and the
fake exchange, ``checks`` compares the state database with the exchange. See
``docs/reliability.md``.
"""

from bench.chaos.checks import CHECKS, Findings
from bench.chaos.rounds import STORES, TARGETS, Suite, SuiteResult

__all__ = ["CHECKS", "STORES", "TARGETS", "Findings", "Suite", "SuiteResult"]
