"""Reading a JSON input (plain, .gz or .xz) with a size limit and one-line errors: ARC tasks,
a reference dataset's metadata, a Kaggle submission. On the ground floor because builders and
eval (`hrm score-submission`) both read such files."""
from __future__ import annotations

import gzip
import json
import lzma
import os
from pathlib import Path
from typing import Any

from hrm.common import HrmError

# The largest real ARC file (ARC-AGI-2 training challenges) is 4 MB; anything far beyond is
# refused before json parses it (a 1 GB JSON would need several GB of Python objects).
MAX_JSON_BYTES = 64 * 2**20


def read_json(path: Path) -> Any:
    """Parse a JSON file (plain, .gz or .xz) after checking its size (MAX_JSON_BYTES)."""
    name = str(path)
    opener = lzma.open if name.endswith(".xz") else gzip.open if name.endswith(".gz") else open
    limit = f"JSON inputs are limited to {MAX_JSON_BYTES / 2**20:g} MiB"
    try:
        if opener is open and os.path.getsize(path) > MAX_JSON_BYTES:
            raise HrmError(f"{path}: {os.path.getsize(path) / 2**20:.1f} MiB is too large ({limit})")
        with opener(path, "rb") as handle:
            data = handle.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise HrmError(f"{path} does not exist") from None
    except (OSError, EOFError, lzma.LZMAError) as error:
        raise HrmError(f"{path}: cannot read ({error})") from None
    if len(data) > MAX_JSON_BYTES:
        raise HrmError(f"{path}: too large once decompressed ({limit})")
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise HrmError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        what = "truncated JSON" if error.pos >= len(data.rstrip()) else "malformed JSON"
        raise HrmError(f"{path}: {what} at line {error.lineno} column {error.colno} ({error.msg})") from None
