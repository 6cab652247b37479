"""The files of an `hrm trace` folder: their names and reading its summary. Light on purpose
(json only, no torch): `hrm compare` asks of every folder it is given whether it is a trace, and
`hrm show` reads a trace's summary, without loading a model."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hrm.common import HrmError

TABLE_FILE, SUMMARY_FILE = "trace.parquet", "summary.json"
TRACE_KIND = "hrm trace"  # summary.json's "kind"


def read_summary(folder: str | os.PathLike) -> dict[str, Any]:
    path = Path(folder) / SUMMARY_FILE
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise HrmError(f"cannot read {path}: {error}") from None
    if not isinstance(summary, dict) or summary.get("kind") != TRACE_KIND:
        raise HrmError(f"{path} is not the summary of an hrm trace")
    return summary


def is_trace_folder(path: str | os.PathLike) -> bool:
    """Whether `path` is a folder written by `hrm trace --out` (its summary.json says so)."""
    try:
        read_summary(path)
    except HrmError:
        return False
    return True
