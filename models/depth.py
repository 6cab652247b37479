"""Gradient depth (`arch.bptt`) and depth schedules (SPEC 4, issue 24).

`arch.bptt` says how much of a segment carries gradient, counted in the architecture's unit:
HRM's low-level steps (every high-level update among them has gradient too; 1 = the paper's
one-step gradient, `all` = all H_cycles x L_cycles low steps), TRM's recursions (1 = TRM's own
rule), the transformer baseline's single pass. Each config class names its unit in
`gradient_units`; `resolve_bptt` turns a value into a count of units.

`arch.bptt`, `arch.H_cycles` and `arch.L_cycles` may also be schedules: a list of
`[fraction_of_training, value]` steps, the first at fraction 0, fractions increasing, e.g.

    arch.H_cycles: [[0, 1], [0.3, 2], [0.6, 3]]    # CGAR's depth curriculum
    arch.bptt: [[0, 2], [0.05, 3], [0.1, 4], [0.15, 5]]   # HRM-Text's growing gradient depth

A stage starting at fraction f starts at step round(f * total_steps), total_steps being the
scheduled length of the run (the learning-rate schedule's, which `max_steps` does not shorten),
so a run and its resumption switch at the same step.
"""
from __future__ import annotations

from typing import Any

from hrm.common import UsageError

SCHEDULABLE_KEYS = ("bptt", "H_cycles", "L_cycles")
Schedule = list[tuple[float, Any]]


def is_schedule(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _check_value(key: str, value: Any, where: str) -> Any:
    if key == "bptt" and value == "all":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        allowed = "'all' or a positive integer" if key == "bptt" else "a positive integer"
        raise UsageError(f"arch.{key}{where} must be {allowed}, got {value!r}")
    return value


def parse_schedule(key: str, value: Any) -> Schedule:
    """[(fraction, value), ...] of a scheduled key; a plain value is the one-stage [(0.0, value)].
    Raises UsageError naming the key for a malformed schedule."""
    if not is_schedule(value):
        return [(0.0, value)]
    if not value:
        raise UsageError(f"arch.{key}: an empty schedule; give a value or [[fraction, value], ...]")
    stages: Schedule = []
    for item in value:
        if not is_schedule(item) or len(item) != 2:
            raise UsageError(f"arch.{key}: a schedule is a list of [fraction_of_training, value] pairs, got {item!r}")
        fraction, stage_value = item
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
            raise UsageError(f"arch.{key}: schedule fractions must be numbers in [0, 1), got {fraction!r}")
        if not stages and fraction != 0:
            raise UsageError(f"arch.{key}: a schedule starts at fraction 0 (the value of the first step), "
                             f"got {fraction!r}")
        if stages and fraction <= stages[-1][0]:
            raise UsageError(f"arch.{key}: schedule fractions must increase, got {fraction!r} after "
                             f"{stages[-1][0]!r}")
        stages.append((float(fraction), _check_value(key, stage_value, f" (schedule step at {fraction!r})")))
    return stages


def scheduled_keys(arch: dict[str, Any]) -> list[str]:
    """The keys of `arch` given as schedules."""
    return [key for key in SCHEDULABLE_KEYS if is_schedule(arch.get(key))]


def stage_fractions(arch: dict[str, Any]) -> list[float]:
    """Every fraction at which some scheduled key changes, 0.0 first."""
    return sorted({fraction for key in scheduled_keys(arch) for fraction, _ in parse_schedule(key, arch[key])}
                  | {0.0})


def values_at_fraction(arch: dict[str, Any], fraction: float) -> dict[str, Any]:
    """{key: the value in force at `fraction` of training} for the scheduled keys of `arch`."""
    values = {}
    for key in scheduled_keys(arch):
        values[key] = [value for start, value in parse_schedule(key, arch[key]) if start <= fraction][-1]
    return values


def stage_start_step(fraction: float, total_steps: int) -> int:
    return round(fraction * total_steps)


def values_at_step(arch: dict[str, Any], step: int, total_steps: int) -> dict[str, Any]:
    """{key: value} of the scheduled keys for the training step that follows `step` steps done."""
    values = {}
    for key in scheduled_keys(arch):
        stages = parse_schedule(key, arch[key])
        values[key] = [value for start, value in stages if stage_start_step(start, total_steps) <= step][-1]
    return values


def final_arch(arch: dict[str, Any]) -> dict[str, Any]:
    """`arch` with every schedule replaced by its last value (the depth a run ends with)."""
    return {**arch, **values_at_fraction(arch, 1.0)}


def resolve_bptt(bptt: Any, units: int, unit_text: str, where: str = "") -> int:
    """arch.bptt as a number of the segment's `units` ('all' = every one); a UsageError naming
    the key for a value the segment cannot take."""
    if bptt == "all":
        return units
    if isinstance(bptt, bool) or not isinstance(bptt, int) or not 1 <= bptt <= units:
        if units == 1:
            raise UsageError(f"arch.bptt{where} must be 1 or 'all' (the same: the {unit_text}); got {bptt!r}")
        raise UsageError(f"arch.bptt{where} must be 'all' or an integer from 1 to {units}, the {unit_text}; "
                         f"got {bptt!r}")
    return bptt


def describe_schedule(arch: dict[str, Any], total_steps: int) -> list[str]:
    """One line per scheduled key: `arch.bptt: 1 from step 0, 2 from step 300, all from step 600`."""
    lines = []
    for key in scheduled_keys(arch):
        stages = ", ".join(f"{value} from step {stage_start_step(start, total_steps)}"
                           for start, value in parse_schedule(key, arch[key]))
        lines.append(f"arch.{key}: {stages} (of {total_steps} scheduled steps)")
    return lines
