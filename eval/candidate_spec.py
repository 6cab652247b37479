"""What `hrm eval --samples/--noise/--restarts/--init-std/--steps/--halt/--seed` asks for: the
candidate generators' settings, validated before any model loads (numpy only, no torch): a bad
value is a usage error (exit 2).
eval.candidates runs them; see its docstring for what each generator does."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hrm.common import UsageError

HALT_RULES = ("all", "q")


@dataclass(frozen=True)
class CandidateSpec:
    """How many candidates per example, and how they differ (see the module docstring)."""

    samples: int = 1
    noise: float = 0.0
    restarts: int = 1
    init_std: float = 0.0
    steps: int | None = None
    halt: str = "all"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("samples", "restarts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"--{name} must be a whole number of at least 1, got {value!r}")
        for name, option in (("noise", "--noise"), ("init_std", "--init-std")):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise UsageError(f"{option} must be a finite number >= 0, got {value!r}")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int)
                                       or self.steps < 1):
            raise UsageError(f"--steps must be a whole number of at least 1, got {self.steps!r}")
        if self.halt not in HALT_RULES:
            raise UsageError(f"--halt must be one of {', '.join(HALT_RULES)}, got {self.halt!r}")

    @property
    def per_example(self) -> int:
        return self.samples * self.restarts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
