"""Load checkpoints written by the reference code (HRM: sapientinc/HRM; TRM:
SamsungSAILMontreal/TinyRecursiveModels), to evaluate or fine-tune the published models here.

The reference saves `torch.save(model.state_dict())` of its loss head around the (usually
compiled) model, so keys read `_orig_mod.model.inner.H_level.layers.0.self_attn.qkv_proj.weight`,
and writes the whole training config as `all_config.yaml` beside the weights; the model is its
`arch` section. Module names here are the reference's, so loading strips the wrapper prefixes and
checks every key and shape, naming the first problem in one line: a checkpoint trained on another
vocabulary, sequence length or set of puzzle identifiers does not fit the dataset.

    model, arch = load_reference_checkpoint("checkpoints/sudoku/step_52080", seq_len=81,
                                            vocab_size=11, num_puzzle_identifiers=1, batch_size=768)
"""
from __future__ import annotations

import os
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from hrm.common import HrmError
from hrm.models.checkpoints import torch_load_weights
from hrm.models.registry import ARCH_CONFIGS, SHAPE_KEYS, build_model

# The reference's model classes (the part of `arch.name` after "@") and their names here.
REFERENCE_MODELS = {
    "HierarchicalReasoningModel_ACTV1": "hrm",
    "TinyRecursiveReasoningModel_ACTV1": "trm",
}
# arch keys the reference's configs may hold that change nothing here when they have these values
# (attention is always non-causal; only TRM has a token MLP); any other value is rejected.
NEUTRAL_ARCH_KEYS = {"causal": False, "mlp_t": False}
# What the reference wraps the model in, outermost first: torch.compile, then its ACT loss head.
KEY_PREFIXES = ("_orig_mod.", "model.")


def load_reference_checkpoint(path: str | os.PathLike, *, seq_len: int, vocab_size: int,
                              num_puzzle_identifiers: int, batch_size: int) -> tuple[nn.Module, dict[str, Any]]:
    """The model stored at `path` (a weights file, or the run folder: its newest `step_<N>`), built
    for a dataset of these shapes, and its arch dict in this tool's terms (what `build_model` and
    a run's config take). Raises HrmError when the files are missing or unreadable, the config
    names an unknown model or key, or the weights do not fit the config or the dataset."""
    weights_file = _weights_file(Path(path))
    config_file = weights_file.parent / "all_config.yaml"
    arch = reference_arch(config_file)
    state = _read_state_dict(weights_file)
    try:
        model = build_model(arch, seq_len=seq_len, vocab_size=vocab_size,
                            num_puzzle_identifiers=num_puzzle_identifiers, batch_size=batch_size)
    except HrmError as error:  # a bad value in the file: say which file
        raise HrmError(f"{config_file}: {error}") from None
    expected = model.state_dict()
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise HrmError(f"{weights_file}: weights do not match arch {arch['name']!r} of all_config.yaml "
                       f"(missing: {_few(missing)}; unexpected: {_few(unexpected)})")
    dataset = {"vocab": vocab_size, "ids": num_puzzle_identifiers, "positions": seq_len + model.config.puzzle_emb_len}
    for key in expected:
        _check_shape(weights_file, key, tuple(state[key].shape), tuple(expected[key].shape), dataset,
                     model.config.puzzle_emb_len)
    model.load_state_dict(state)
    return model, arch


def reference_arch(config_file: Path) -> dict[str, Any]:
    """The `arch` section of a reference all_config.yaml, mapped to this tool's arch keys."""
    if not config_file.is_file():
        raise HrmError(f"{config_file} not found: the reference writes all_config.yaml beside its checkpoints")
    try:
        config = yaml.safe_load(config_file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise HrmError(f"{config_file}: not valid YAML ({str(error).splitlines()[0]})") from None
    reference = config.get("arch") if isinstance(config, dict) else None
    if not isinstance(reference, dict):
        raise HrmError(f"{config_file}: no `arch` mapping (not a reference run config)")

    model_class = str(reference.get("name", "")).rpartition("@")[2]
    if model_class not in REFERENCE_MODELS:
        raise HrmError(f"{config_file}: arch.name {reference.get('name')!r} is not a model this tool can load "
                       f"(known: {', '.join(REFERENCE_MODELS)})")
    name = REFERENCE_MODELS[model_class]
    known = {f.name for f in fields(ARCH_CONFIGS[name])} - set(SHAPE_KEYS) - {"name", "loss_type"}
    arch: dict[str, Any] = {"name": name}
    for key, value in reference.items():
        if key == "name":
            continue
        if key == "loss":
            arch["loss_type"] = _loss_type(config_file, value)
        elif key in known:
            arch[key] = _resolve(config_file, key, value, reference)
        elif key in NEUTRAL_ARCH_KEYS:
            if value != NEUTRAL_ARCH_KEYS[key]:
                raise HrmError(f"{config_file}: arch.{key}: {value!r} is not supported for {name} "
                               f"(only {NEUTRAL_ARCH_KEYS[key]!r})")
        else:
            raise HrmError(f"{config_file}: unknown arch key {key!r} for {name} (known: {', '.join(sorted(known))})")
    return arch


def _loss_type(config_file: Path, loss: Any) -> str:
    if not isinstance(loss, dict) or not str(loss.get("name", "")).endswith("ACTLossHead"):
        raise HrmError(f"{config_file}: arch.loss must be the reference's ACTLossHead, got {loss!r}")
    unknown = set(loss) - {"name", "loss_type"}
    if unknown or "loss_type" not in loss:
        what = f"unknown arch.loss key {sorted(unknown)[0]!r}" if unknown else "arch.loss has no loss_type"
        raise HrmError(f"{config_file}: {what}")
    return loss["loss_type"]


def _resolve(config_file: Path, key: str, value: Any, reference: dict[str, Any]) -> Any:
    """Hydra's sibling interpolation, as the reference's arch files write `${.hidden_size}`."""
    match = re.fullmatch(r"\$\{\.(\w+)\}", value) if isinstance(value, str) else None
    if match is None:
        return value
    if match.group(1) not in reference:
        raise HrmError(f"{config_file}: arch.{key} refers to arch.{match.group(1)}, which is not set")
    return reference[match.group(1)]


def _weights_file(path: Path) -> Path:
    if path.is_dir():
        steps = [(int(p.name[5:]), p) for p in path.glob("step_*") if p.name[5:].isdigit() and p.is_file()]
        if not steps:
            raise HrmError(f"{path}: no step_<N> weight files in this folder")
        return max(steps)[1]
    if not path.is_file():
        raise HrmError(f"checkpoint {path} does not exist")
    return path


def _read_state_dict(weights_file: Path) -> dict[str, torch.Tensor]:
    # weights_only: a checkpoint from the internet must not run code when unpickled.
    state = torch_load_weights(weights_file, "a readable PyTorch state dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise HrmError(f"{weights_file}: expected a state dict (names -> tensors), as the reference saves")
    stripped = {}
    for key, tensor in state.items():
        for prefix in KEY_PREFIXES:
            key = key.removeprefix(prefix)
        stripped[key] = tensor
    return stripped


# Tensors whose shape the dataset decides: (key pattern, axis, which dataset size).
DATASET_AXES = [
    (r"inner\.(embed_tokens\.embedding_weight|lm_head\.weight)", 0, "vocab"),
    (r"inner\.puzzle_emb\.weights", 0, "ids"),
    (r"inner\.embed_pos\.embedding_weight", 0, "positions"),
    (r".*\.mlp_t\.down_proj\.weight", 0, "positions"),
    (r".*\.mlp_t\.gate_up_proj\.weight", 1, "positions"),
]


def _check_shape(weights_file: Path, key: str, stored: tuple[int, ...], expected: tuple[int, ...],
                 dataset: dict[str, int], puzzle_positions: int) -> None:
    if stored == expected:
        return
    for pattern, axis, size in DATASET_AXES:
        if re.fullmatch(pattern, key) and len(stored) == len(expected) and stored[axis] != expected[axis]:
            trained, here = stored[axis], dataset[size]
            what = {"vocab": "a vocabulary of {} tokens", "ids": "{} puzzle identifiers",
                    "positions": "sequences of {} tokens"}[size]
            if size == "positions":  # report tokens, without the puzzle-embedding positions
                trained, here = trained - puzzle_positions, here - puzzle_positions
            raise HrmError(f"{weights_file}: checkpoint was trained with {what.format(trained)}, "
                           f"the dataset has {what.format(here)}")
    raise HrmError(f"{weights_file}: {key} has shape {list(stored)}, arch in all_config.yaml needs {list(expected)}")


def _few(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "") if keys else "none"
