"""A backtest's report folder: ``report.json``, ``report.html`` and the charts as PNG.

The JSON is written first (every trade and every figure, for machines), then the charts and
the page; the folder is made here. Runs on the caller's thread; a write that fails raises
``OSError`` naming the file, and what was written before it stays.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from supervision.api import jsonable
from supervision.research.backtest import BacktestRun
from supervision.research.report import build_report
from supervision.research.tables import full_text


def write_report(run: BacktestRun, folder: Path, *, charts: bool = True
                 ) -> tuple[dict[str, Any], str]:
    """Write the report of ``run`` into ``folder``; returns it and its terminal text."""
    started = time.perf_counter()
    report = build_report(run)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "report.json", report)
    if charts:
        from supervision.research.charts import write_charts
        from supervision.research.html import render_html

        svgs = write_charts(report, folder)
        (folder / "report.html").write_text(render_html(report, svgs), encoding="utf-8")
    text = full_text(report)
    text += f"\nreport written in {time.perf_counter() - started:.1f} s"
    return report, text


def write_json(path: Path, value: Any) -> None:
    """``value`` as JSON, non-finite floats as null."""
    path.write_text(json.dumps(jsonable(value), indent=1, allow_nan=False), encoding="utf-8")
