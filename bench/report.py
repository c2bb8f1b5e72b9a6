"""The results: a Markdown table for stdout and a JSON document for ``bench/results/``."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import attrs

from bench.common import Row

RESULTS = Path(__file__).resolve().parent / "results"


def source_tree() -> dict[str, Any]:
    """The commit measured, and whether the working tree had uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, check=True, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "modified_files": []}
    return {"commit": head, "modified_files": [line[3:] for line in dirty.splitlines()]}


def fmt(value: float, unit: str) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if unit in ("ticks/s",):
        return f"{value:,.0f}"
    if unit == "ms":
        return f"{value:.3f}" if value < 10 else f"{value:,.1f}"
    if unit in ("s", "cores"):
        return f"{value:.2f}"
    return f"{value:,.1f}"


def markdown(rows: list[Row]) -> str:
    lines = ["| bench | case | metric | value | target | result | notes |",
             "|---|---|---|---:|---|---|---|"]
    for r in rows:
        result = "" if r.ok is None else ("PASS" if r.ok else "**MISS**")
        value = fmt(r.value, r.unit)
        if value != "-" and r.unit:
            value = f"{value} {r.unit}"
        lines.append(f"| {r.bench} | {r.case} | {r.metric} | {value} | {r.target or ''} | "
                     f"{result} | {r.note} |")
    return "\n".join(lines)


def _clean(obj: Any) -> Any:
    """JSON without NaN (as null) and with tuples as lists."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def write_json(path: Path, document: dict[str, Any], rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {**document, "rows": [attrs.asdict(r) for r in rows]}
    path.write_text(json.dumps(_clean(body), indent=1, default=str) + "\n", encoding="utf-8")
