"""Research: judge a strategy before it trades.

``download`` pages an exchange's history into CSV files, ``backtest`` trades them through the
very cores that trade live (the threadless ``SyncRuntime``) and reports (terminal tables,
JSON, a self-contained HTML page, PNG charts), ``optimize`` searches a strategy's declared
ranges with Optuna in worker processes, and ``walk_forward`` optimises in-sample and trades
out-of-sample window by window. ``cli`` is the ``trade-conductor download | backtest |
optimize`` commands, which ``supervision.main`` hands over to.
"""

from supervision.research.backtest import BacktestRun, run_backtest
from supervision.research.cli import COMMANDS, run
from supervision.research.download import Downloader, DownloadError, DownloadResult
from supervision.research.optimize import make_job, open_study, resolve_space, run_study
from supervision.research.outputs import write_report
from supervision.research.report import build_report
from supervision.research.source import BacktestData, from_data_dir, from_files
from supervision.research.timeframes import TimeRange

__all__ = [
    "COMMANDS",
    "BacktestData",
    "BacktestRun",
    "DownloadError",
    "DownloadResult",
    "Downloader",
    "TimeRange",
    "build_report",
    "from_data_dir",
    "from_files",
    "make_job",
    "open_study",
    "resolve_space",
    "run",
    "run_backtest",
    "run_study",
    "write_report",
]
