"""Starting a run from a checkpoint's weights (`init_from`): an hrm run or a reference checkpoint,
with puzzle-embedding rows matched by identifier name when the dataset's puzzles differ
(test-time training on unseen tasks)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from hrm.common import HrmError, log
from hrm.builders.dataset import Dataset, open_dataset
from hrm.eval.inference import is_reference_checkpoint, load_reference_for, model_dataset_signature
from hrm.models.checkpoints import load_checkpoint


NEW_PUZZLE_ROWS = ("mean", "zero")  # config key init_new_puzzle_emb


# Arch keys that change how the weights are used, not their shapes: `init_from` takes them from
# the config when set there (test-time training runs halt_max_steps 10 on a model pretrained at 16;
# fine-tuning may backpropagate deeper than the pretraining did, arch.bptt).
RUNTIME_ARCH_KEYS = ("halt_max_steps", "halt_exploration_prob", "forward_dtype", "loss_type", "bptt")


def init_arch(checkpoint_arch: dict[str, Any], config_arch: dict[str, Any]) -> dict[str, Any]:
    """The arch of a run started from a checkpoint: the checkpoint's, except the runtime keys the
    config sets to something other than the architecture's default."""
    from hrm.train.config import arch_defaults

    defaults = arch_defaults(str(checkpoint_arch.get("name", "hrm")))
    arch = dict(checkpoint_arch)
    for key in RUNTIME_ARCH_KEYS:
        # (a key the checkpoint's arch lacks but its architecture has: written by an older hrm)
        if key in config_arch and (key in arch or key in defaults) and config_arch[key] != defaults.get(key, config_arch[key]):
            arch[key] = config_arch[key]
    return arch


def identifier_names(dataset: Dataset) -> list[str]:
    """The dataset's identifier names (id -> name), read once per opened dataset: checkpoints
    store them so that `init_from` can match puzzle-embedding rows by name."""
    cache = dataset.__dict__.setdefault("_identifier_names", [])
    if not cache:
        cache.extend(str(name) for name in dataset.identifiers())
    return cache


def _check_shapes_fit(trained: dict[str, Any], here: dict[str, Any], path: str | os.PathLike, data: Path) -> None:
    for key, what in (("seq_len", "sequence length"), ("vocab_size", "vocabulary size")):
        if trained.get(key) != here[key]:
            raise HrmError(f"init_from {path}: its {what} is {trained.get(key)} but dataset {data} has {here[key]} "
                           f"(the checkpoint was trained on a {trained.get('task')} dataset); start from a checkpoint "
                           f"of the same kind of data")


def _pretrained_names(state: dict[str, Any], path: str | os.PathLike) -> list[str]:
    """The identifier names of the checkpoint's training data: stored in the checkpoint, or (older
    checkpoints) read from its training dataset when that is still where the run found it."""
    if state.get("identifiers") is not None:
        return list(state["identifiers"])
    data_path = state["config"].get("data_path")
    if data_path and Path(data_path).is_dir():
        source = open_dataset(data_path)
        if model_dataset_signature(source)["identifiers_sha256"] == state["dataset"].get("identifiers_sha256"):
            return identifier_names(source)
    raise HrmError(f"init_from {path}: its puzzle identifiers differ from the dataset's and the checkpoint does not "
                   f"record their names (older hrm), nor is its training dataset {data_path} available to read them")


def match_puzzle_rows(table: torch.Tensor, old_names: list[str], new_names: list[str],
                      new_rows: str = "mean") -> tuple[torch.Tensor, int]:
    """The puzzle-embedding table for `new_names`: the row of every name also in `old_names` is
    copied; the others start at the mean of the pretrained rows (id 0, the blank identifier that
    no ARC example uses, left out when there are others) or at zero. Returns (table, matched)."""
    if new_rows not in NEW_PUZZLE_ROWS:
        raise HrmError(f"init_new_puzzle_emb must be one of {', '.join(NEW_PUZZLE_ROWS)}, got {new_rows!r}")
    if len(old_names) != table.shape[0]:
        raise HrmError(f"the checkpoint's puzzle table has {table.shape[0]} rows for {len(old_names)} identifier names")
    old_id = {name: index for index, name in enumerate(old_names)}
    pairs = [(new, old_id[name]) for new, name in enumerate(new_names) if name in old_id]
    pretrained = table[1:] if table.shape[0] > 1 else table
    start = pretrained.mean(0) if new_rows == "mean" else torch.zeros(table.shape[1], dtype=table.dtype)
    result = start.to(table.dtype).expand(len(new_names), table.shape[1]).clone()
    if pairs:
        new_ids, old_ids = torch.tensor(pairs, dtype=torch.long).unbind(1)
        result[new_ids] = table[old_ids]
    return result, len(pairs)


def init_weights(path: str | os.PathLike, dataset: Dataset, batch_size: int,
                 new_rows: str = "mean") -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(arch, model state dict) to start a run from (`init_from`): an hrm checkpoint or run folder
    (its EMA weights when it kept one), or a reference checkpoint. Every weight loads; when the
    dataset's puzzle identifiers differ from the checkpoint's (test-time training on unseen
    tasks), puzzle-embedding rows are matched by identifier name and the rows of new names start
    at the mean of the pretrained rows (`new_rows="zero"`: at zero). A different sequence length
    or vocabulary is refused with one line."""
    if is_reference_checkpoint(path):
        model, config = load_reference_for(path, dataset, batch_size)
        return config["arch"], model.state_dict()
    state = load_checkpoint(path)
    here = model_dataset_signature(dataset)
    _check_shapes_fit(state["dataset"], here, path, dataset.path)
    weights = dict(state["model"])
    if state["config"].get("ema") and state.get("ema"):
        weights.update(state["ema"])
    same_names = (state["dataset"].get("identifiers_sha256") == here["identifiers_sha256"]
                  and state["dataset"].get("num_puzzle_identifiers") == here["num_puzzle_identifiers"])
    tables = [key for key in weights if key == "puzzle_emb.weights" or key.endswith(".puzzle_emb.weights")]
    if same_names or not tables:
        return dict(state["config"]["arch"]), weights
    old_names, new_names = _pretrained_names(state, path), identifier_names(dataset)
    for key in tables:
        weights[key], matched = match_puzzle_rows(weights[key], old_names, new_names, new_rows)
    start = "the mean of the pretrained rows" if new_rows == "mean" else "zero"
    log(f"init_from {path}: puzzle embedding: {matched} of {len(new_names)} rows matched by identifier name, "
        f"{len(new_names) - matched} new (start at {start}); {len(old_names) - matched} pretrained rows unused")
    return dict(state["config"]["arch"]), weights
