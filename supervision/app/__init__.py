"""The command-line application around the system: arguments, logging, the status table.
"""

from supervision.app.cli import run, strategy_override
from supervision.app.format import describe_event, format_table

__all__ = [
    "describe_event",
    "format_table",
    "run",
    "strategy_override",
]
