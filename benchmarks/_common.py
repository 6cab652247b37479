"""What every benchmark script shares: peak memory and the one-JSON-line-per-measurement output."""
from __future__ import annotations

import json
import resource


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(**row) -> None:
    """Print one measurement as a JSON line, with the peak RSS at the time."""
    print(json.dumps({**row, "peak_rss_mb": round(peak_rss_mb(), 1)}), flush=True)
