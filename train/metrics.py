"""The run's metrics log (RUN/metrics.jsonl) and the optional external loggers.

Only rank 0 writes. wandb and tensorboard are used only when asked (`logger=wandb`) and installed;
asking for one that is missing is a user error before training starts, never an import error.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from hrm.common import HrmError, atomic_file

_PACKAGES = {"wandb": "wandb", "tensorboard": "tensorboard"}


def check_logger(name: str | None) -> None:
    if name is not None and importlib.util.find_spec(_PACKAGES[name]) is None:
        raise HrmError(f"logger={name} was asked for but the {_PACKAGES[name]} package is not installed "
                       f"(pip install {_PACKAGES[name]})")


class MetricsLog:
    """Appends one JSON object per line; on resume drops lines newer than the checkpoint, so that
    a resumed run's log reads as if it had never stopped."""

    def __init__(self, run_dir: Path, *, enabled: bool, logger: str | None, config: dict[str, Any],
                 resume_step: int | None):
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled
        self.external: Any = None
        self.kind = logger
        if not enabled:
            return
        if resume_step is not None and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= resume_step]
            with atomic_file(self.path) as tmp:
                tmp.write_text("".join(line + "\n" for line in kept))
        self.handle = open(self.path, "a")
        check_logger(logger)
        if logger == "wandb":
            import wandb
            run_id = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:12]
            self.external = wandb.init(project="hrm", name=run_dir.name, id=run_id, resume="allow",
                                       dir=str(run_dir), config=config)
        elif logger == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter
            self.external = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.handle.write(json.dumps(record) + "\n")
        self.handle.flush()
        numbers = {f"{record['split']}/{k}": v for k, v in record.items()
                   if k not in ("step", "split") and isinstance(v, (int, float))}
        if self.kind == "wandb":
            self.external.log(numbers, step=record["step"])
        elif self.kind == "tensorboard":
            for key, value in numbers.items():
                self.external.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if not self.enabled:
            return
        self.handle.close()
        if self.kind == "wandb":
            self.external.finish()
        elif self.kind == "tensorboard":
            self.external.close()
