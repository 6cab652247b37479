"""The one place that maps an `arch.name` to a model: `build_model(arch, ...)`.

"hrm" (default), "trm" (models/trm.py) and "transformer" (models/transformer.py). Each entry takes
the arch dict (reference key names) plus the dataset shapes and returns an nn.Module with the
HrmAct interface (initial_carry, forward(carry, batch) -> (carry, outputs), puzzle_emb).
A depth schedule (models/depth.py) builds the model at its last stage; the trainer switches stages.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable

from torch import nn

from hrm.common import HrmError
from hrm.models.depth import SCHEDULABLE_KEYS, final_arch, parse_schedule, resolve_bptt, scheduled_keys, \
    stage_fractions, values_at_fraction
from hrm.models.hrm import HrmAct, HrmConfig
from hrm.models.transformer import TransformerConfig, transformer_model
from hrm.models.trm import TrmConfig, trm_model

SHAPE_KEYS = ("seq_len", "vocab_size", "num_puzzle_identifiers", "batch_size")


def config_from_arch(config_class: type, arch: dict[str, Any], **shapes: int) -> Any:
    """config_class(**arch, **shapes), with an HrmError naming any key the class does not know
    (a typo in a config file must not be silently ignored) or any shape given in `arch`."""
    known = {f.name for f in fields(config_class)} - set(SHAPE_KEYS)
    for key in arch:
        if key not in known:
            raise HrmError(f"unknown arch key {key!r} for arch {arch.get('name', 'hrm')!r} "
                           f"(known: {', '.join(sorted(known))})")
    return config_class(**arch, **shapes)


def _build_hrm(arch: dict[str, Any], **shapes: int) -> nn.Module:
    return HrmAct(config_from_arch(HrmConfig, arch, **shapes))


def _build_trm(arch: dict[str, Any], **shapes: int) -> nn.Module:
    return trm_model(config_from_arch(TrmConfig, arch, **shapes))


def _build_transformer(arch: dict[str, Any], **shapes: int) -> nn.Module:
    return transformer_model(config_from_arch(TransformerConfig, arch, **shapes))


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "hrm": _build_hrm,
    "trm": _build_trm,
    "transformer": _build_transformer,
}
# The config class of each architecture: its fields are the arch keys it accepts.
ARCH_CONFIGS: dict[str, type[HrmConfig]] = {"hrm": HrmConfig, "trm": TrmConfig, "transformer": TransformerConfig}


def default_arch(name: str) -> dict[str, Any]:
    """Every arch key of architecture `name` with its default (the published model's), e.g. to
    start a config when `arch.name` changes."""
    if name not in ARCH_CONFIGS:
        raise HrmError(f"unknown arch name {name!r} (available: {', '.join(sorted(ARCH_CONFIGS))})")
    return {f.name: f.default for f in fields(ARCH_CONFIGS[name]) if f.name not in SHAPE_KEYS}


def build_model(arch: dict[str, Any], *, seq_len: int, vocab_size: int, num_puzzle_identifiers: int,
                batch_size: int) -> nn.Module:
    """The model named by arch["name"] (default "hrm"), configured by the other arch keys, for a
    dataset with these shapes and a (local) training batch of `batch_size` slots."""
    name = arch.get("name", "hrm")
    if name not in ARCHITECTURES:
        raise HrmError(f"unknown arch name {name!r} (available: {', '.join(sorted(ARCHITECTURES))})")
    return ARCHITECTURES[name](final_arch(arch), seq_len=seq_len, vocab_size=vocab_size,
                               num_puzzle_identifiers=num_puzzle_identifiers, batch_size=batch_size)


def build_for_dataset(arch: dict[str, Any], signature: dict[str, Any], batch_size: int) -> nn.Module:
    return build_model(arch, seq_len=signature["seq_len"], vocab_size=signature["vocab_size"],
                       num_puzzle_identifiers=signature["num_puzzle_identifiers"], batch_size=batch_size)


def check_depth(arch: dict[str, Any]) -> None:
    """A UsageError naming the key for a malformed depth schedule, or an arch.bptt that the
    segment of some stage cannot take (more steps than it has, a value the architecture lacks).
    Other keys are left to the config classes (a bad H_cycles is reported when the model is built)."""
    config_class = ARCH_CONFIGS.get(arch.get("name", "hrm"))
    if config_class is None:
        return
    for key in SCHEDULABLE_KEYS:
        parse_schedule(key, arch.get(key))
    defaults = {f.name: f.default for f in fields(config_class) if f.name in SCHEDULABLE_KEYS}
    for fraction in stage_fractions(arch):
        plain = {k: arch[k] for k in SCHEDULABLE_KEYS if k in arch}
        stage = {**defaults, **plain, **values_at_fraction(arch, fraction)}
        cycles = (stage["H_cycles"], stage["L_cycles"])
        if not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in cycles):
            return
        where = f" (from fraction {fraction:g} of training)" if scheduled_keys(arch) else ""
        resolve_bptt(stage["bptt"], *config_class.gradient_units(*cycles), where)
