"""Running a trained model: load a checkpoint, check it fits a dataset, predict, score.

The trainer's periodic evaluation calls `evaluate`, which scores the output of
`predict_batches` (as `predict` does). `hrm eval` runs its candidates through
train/candidates.py instead; with one plain candidate that is the same computation, so a
checkpoint scored by `hrm eval` gives the numbers the trainer logged for it (tested in
tests/test_eval_e2e.py and tests/test_ttc.py).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from hrm.common import HrmError, log
from hrm.builders.dataset import Dataset, Split, open_dataset
from hrm.train.checkpoint import load_checkpoint
from hrm.train.config import TrainConfig, config_from_dict
from hrm.common.prefetch import prefetched
from hrm.train.data import EvalBatch, as_torch, eval_batches
from hrm.train.losses import IGNORE_LABEL_ID
from hrm.train.distributed import DistInfo, all_reduce_sum, select_device
from hrm.train.losses import sequence_accuracy
from hrm.train.reference_checkpoint import load_reference_checkpoint
from hrm.train.registry import build_model


def model_dataset_signature(dataset: Dataset) -> dict[str, Any]:
    """What a model (its checkpoint) is tied to: task, sequence shape, vocabulary, the puzzle
    identifier names. (A predictions table's tie to one split is
    `eval.predictions.predictions_dataset_signature`.)"""
    split = dataset.split(dataset.split_names[0])
    names = "\n".join(str(name) for name in dataset.identifiers())
    return {"task": dataset.task, "seq_len": split.seq_len, "vocab_size": split.vocab_size,
            "num_puzzle_identifiers": dataset.num_identifiers,
            "identifiers_sha256": hashlib.sha256(names.encode()).hexdigest()}


def check_dataset_matches(config: dict[str, Any], dataset: Dataset) -> None:
    """Raise HrmError when `dataset` is not the kind of data the checkpoint was trained on."""
    trained = config.get("dataset")
    if not trained:
        raise HrmError("the checkpoint records no dataset signature; cannot check it against the data")
    here = model_dataset_signature(dataset)
    for key, what in [("task", "task"), ("seq_len", "sequence length"), ("vocab_size", "vocabulary size"),
                      ("num_puzzle_identifiers", "number of puzzle identifiers"),
                      ("identifiers_sha256", "puzzle identifier names")]:
        if trained.get(key) != here[key]:
            detail = "" if key == "identifiers_sha256" else f": {trained.get(key)} vs {here[key]}"
            raise HrmError(f"checkpoint does not match dataset {dataset.path}: the {what} differs{detail} "
                           f"(the checkpoint was trained on a {trained.get('task')} dataset with seq_len "
                           f"{trained.get('seq_len')})")


def build_for_dataset(arch: dict[str, Any], signature: dict[str, Any], batch_size: int) -> nn.Module:
    return build_model(arch, seq_len=signature["seq_len"], vocab_size=signature["vocab_size"],
                       num_puzzle_identifiers=signature["num_puzzle_identifiers"], batch_size=batch_size)


def is_reference_checkpoint(path: str | os.PathLike) -> bool:
    """A checkpoint of the reference code: a weights file (or its folder) with all_config.yaml."""
    path = Path(path)
    return (path / "all_config.yaml").is_file() if path.is_dir() else (path.parent / "all_config.yaml").is_file()


def load_for_inference(checkpoint: str | os.PathLike, device: str | torch.device | None = None,
                       dataset: Dataset | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode on `device`, config dict with its "dataset" signature) from a .pt file,
    a run folder (its latest checkpoint) or a reference checkpoint (weights with all_config.yaml
    beside them; needs `dataset` for its shapes). With `dataset`, a checkpoint that does not fit
    it is refused before any model is built. A run trained with `ema` gives its EMA weights."""
    chosen = device if isinstance(device, torch.device) else select_device(device or "auto")
    if is_reference_checkpoint(checkpoint):
        if dataset is None:
            raise HrmError(f"{checkpoint} is a reference checkpoint: give the dataset to evaluate it on")
        model, config = load_reference_for(checkpoint, dataset, TrainConfig().global_batch_size)
        return model.to(chosen).eval(), config
    state = load_checkpoint(checkpoint)
    config = {**config_from_dict(state["config"]).to_dict(), "dataset": state["dataset"],
              "step": state["step"], "checkpoint": state["path"]}
    if dataset is not None:
        check_dataset_matches(config, dataset)
    model = build_for_dataset(config["arch"], state["dataset"], config["global_batch_size"])
    model.load_state_dict(state["model"])
    if config["ema"] and state.get("ema"):
        model.load_state_dict(state["ema"], strict=False)  # the averaged tensors, by state_dict key
    return model.to(chosen).eval(), config


def load_reference_for(path: str | os.PathLike, dataset: Dataset, batch_size: int) -> tuple[nn.Module, dict[str, Any]]:
    """A reference checkpoint built for `dataset`'s shapes (a one-line HrmError when they differ),
    and a config dict like a run's: defaults, the checkpoint's arch, the dataset's signature."""
    signature = model_dataset_signature(dataset)
    model, arch = load_reference_checkpoint(path, seq_len=signature["seq_len"], vocab_size=signature["vocab_size"],
                                            num_puzzle_identifiers=signature["num_puzzle_identifiers"],
                                            batch_size=batch_size)
    config = {**TrainConfig().to_dict(), "arch": arch, "dataset": signature, "step": 0, "checkpoint": str(path)}
    return model, config


NEW_PUZZLE_ROWS = ("mean", "zero")  # config key init_new_puzzle_emb
# Arch keys that change how the weights are used, not their shapes: `init_from` takes them from
# the config when set there (test-time training runs halt_max_steps 10 on a model pretrained at 16).
RUNTIME_ARCH_KEYS = ("halt_max_steps", "halt_exploration_prob", "forward_dtype", "loss_type")


def init_arch(checkpoint_arch: dict[str, Any], config_arch: dict[str, Any]) -> dict[str, Any]:
    """The arch of a run started from a checkpoint: the checkpoint's, except the runtime keys the
    config sets to something other than the architecture's default."""
    from hrm.train.config import arch_defaults

    defaults = arch_defaults(str(checkpoint_arch.get("name", "hrm")))
    arch = dict(checkpoint_arch)
    for key in RUNTIME_ARCH_KEYS:
        if key in config_arch and key in arch and config_arch[key] != defaults.get(key, config_arch[key]):
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


@torch.no_grad()
def run_batch(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """halt_max_steps segments, after which every slot has halted (evaluation mode): (argmax
    tokens, q_halt logits, segments run), all on the device. The number of segments is known
    beforehand, so the loop never asks the device whether it is done (no host sync)."""
    if model.training:
        raise RuntimeError("run_batch needs the model in evaluation mode (a fixed number of segments)")
    carry = model.initial_carry(batch)
    for _ in range(model.config.halt_max_steps):
        carry, outputs = model(carry, batch)
    return outputs["logits"].argmax(-1), outputs["q_halt_logits"].float(), carry.steps


def predict_batches(model: nn.Module, split: Split, batch_size: int, dist: DistInfo
                    ) -> Iterator[tuple[EvalBatch, dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(batch, its tensors, predictions, q_halt, steps) for this rank's rows of every test batch."""
    was_training = model.training
    model.eval()
    try:
        for item in prefetched(eval_batches(split, batch_size, dist)):
            tensors = as_torch(item.batch, dist.device)
            predictions, q_halt, steps = run_batch(model, tensors)
            yield item, tensors, predictions, q_halt, steps
    finally:
        model.train(was_training)


def predict(model: nn.Module, dataset_path: str | os.PathLike | Dataset, split: str = "test",
            batch_size: int = 768, device: str | torch.device | None = None
            ) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(set name, example rows int64 [b], predicted tokens uint8 [b, seq_len], q_halt float32 [b])
    for every example of `split`, in order, after halt_max_steps segments."""
    dataset = dataset_path if isinstance(dataset_path, Dataset) else open_dataset(dataset_path)
    if device is None:
        device = next(model.parameters()).device
    chosen = device if isinstance(device, torch.device) else select_device(device)
    dist = DistInfo(rank=0, world_size=1, local_rank=0, device=chosen)
    for item, _, predictions, q_halt, _ in predict_batches(model, dataset.split(split), batch_size, dist):
        valid = item.mask
        yield (item.set_name, item.rows[valid], predictions.cpu().numpy()[valid].astype(np.uint8),
               q_halt.cpu().numpy()[valid].astype(np.float32))


def score(predictions: torch.Tensor, labels: torch.Tensor, q_halt: torch.Tensor, steps: torch.Tensor,
          valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """Metric sums over valid rows with at least one scored position (the reference's rule), by
    the accuracy rules training logs (losses.sequence_accuracy)."""
    rules = sequence_accuracy(predictions, labels, q_halt)
    used = valid & (rules["scored_count"] > 0)
    pick = lambda values: torch.where(used, values.float(), 0.0).sum()  # noqa: E731
    return {"count": used.sum().float(), "accuracy": pick(rules["token_accuracy"]),
            "exact_accuracy": pick(rules["exact"]), "q_halt_accuracy": pick(rules["q_halt_correct"]),
            "steps": pick(steps)}


EVAL_KEYS = ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps")


def evaluation_sums(model: nn.Module, split: Split, batch_size: int, dist: DistInfo) -> torch.Tensor | None:
    """The EVAL_KEYS sums of this rank's rows, on the device (None without any batch): nothing
    is read back to the host inside the loop, so the device never waits for it."""
    # Per-batch float32 sums are exact counts; the run's totals accumulate in float64 (MPS has none).
    dtype = torch.float32 if dist.device.type == "mps" else torch.float64
    sums = None
    for item, tensors, predictions, q_halt, steps in predict_batches(model, split, batch_size, dist):
        valid = as_torch({"valid": item.mask}, dist.device)["valid"]
        batch = score(predictions, tensors["labels"], q_halt, steps, valid)
        values = torch.stack([batch[k] for k in EVAL_KEYS]).to(dtype)
        sums = values if sums is None else sums + values
    return sums


def evaluate(model: nn.Module, split: Split, batch_size: int, dist: DistInfo) -> dict[str, float]:
    """Exact accuracy, token accuracy, q-halt accuracy and mean steps over every example of
    `split` (summed over ranks); "count" is the number of scored examples."""
    sums = evaluation_sums(model, split, batch_size, dist)
    if sums is None:
        sums = torch.zeros(len(EVAL_KEYS), dtype=torch.float64)
    reduce_device = dist.device if dist.device.type != "mps" else torch.device("cpu")
    totals = all_reduce_sum(sums.to(reduce_device, torch.float64)).cpu().tolist()  # the one read-back
    count = totals[0]
    result = {key: value / max(count, 1) for key, value in zip(EVAL_KEYS[1:], totals[1:])}
    return {"count": int(count), **result}
