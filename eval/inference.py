"""Running a trained model: load a checkpoint, check it fits a dataset, predict, score.

The trainer's periodic evaluation calls `evaluate`, which runs the one evaluation loop
(eval.candidates.candidate_batches) with one plain candidate per example, as `hrm eval` does by
default; so a checkpoint scored by `hrm eval` gives the numbers the trainer logged for it
(tests/test_eval_e2e.py recomputes both from the predictions and the labels).
"""
from __future__ import annotations

import hashlib
import os
from contextlib import closing
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from hrm.common import HrmError, progress
from hrm.builders.dataset import Dataset, Split, open_dataset
from hrm.common.distributed import DistInfo, all_reduce_sum, select_device
from hrm.eval.batches import IGNORE_LABEL_ID, as_torch
from hrm.eval.candidate_spec import CandidateSpec
from hrm.eval.candidates import candidate_batches
from hrm.models.checkpoints import load_checkpoint
from hrm.models.reference_checkpoint import load_reference_checkpoint
from hrm.models.registry import build_for_dataset

# A reference checkpoint records no batch size: its model gets the paper's global batch of ACT slots.
REFERENCE_BATCH_SIZE = 768


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
        model, config = load_reference_for(checkpoint, dataset, REFERENCE_BATCH_SIZE)
        return model.to(chosen).eval(), config
    state = load_checkpoint(checkpoint)
    config = {**state["config"], "dataset": state["dataset"], "step": state["step"], "checkpoint": state["path"]}
    if dataset is not None:
        check_dataset_matches(config, dataset)
    # A depth schedule's stage as trained at this checkpoint (hrm before arch.bptt: the arch's own).
    arch = {**config["arch"], **state.get("depth", {})}
    model = build_for_dataset(arch, state["dataset"], config.get("global_batch_size", REFERENCE_BATCH_SIZE))
    model.load_state_dict(state["model"])
    if config.get("ema") and state.get("ema"):
        model.load_state_dict(state["ema"], strict=False)  # the averaged tensors, by state_dict key
    return model.to(chosen).eval(), config


def load_reference_for(path: str | os.PathLike, dataset: Dataset, batch_size: int) -> tuple[nn.Module, dict[str, Any]]:
    """A reference checkpoint built for `dataset`'s shapes (a one-line HrmError when they differ),
    and a config dict like a run's: the checkpoint's arch, the dataset's signature."""
    signature = model_dataset_signature(dataset)
    model, arch = load_reference_checkpoint(path, seq_len=signature["seq_len"], vocab_size=signature["vocab_size"],
                                            num_puzzle_identifiers=signature["num_puzzle_identifiers"],
                                            batch_size=batch_size)
    config = {"arch": arch, "global_batch_size": batch_size, "ema": False, "dataset": signature, "step": 0,
              "checkpoint": str(path)}
    return model, config


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
    for item, _, segments in candidate_batches(model, dataset.split(split), batch_size, dist, CandidateSpec()):
        answers, valid = segments[-1].numpy(), item.mask
        yield item.set_name, item.rows[valid], answers.predictions[valid], answers.q_halt[valid]


def score(predictions: torch.Tensor, labels: torch.Tensor, q_halt: torch.Tensor, steps: torch.Tensor,
          valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """Metric sums over valid rows with at least one scored position (the reference's rule), by
    the accuracy rules training logs (sequence_accuracy)."""
    rules = sequence_accuracy(predictions, labels, q_halt)
    used = valid & (rules["scored_count"] > 0)
    pick = lambda values: torch.where(used, values.float(), 0.0).sum()  # noqa: E731
    return {"count": used.sum().float(), "accuracy": pick(rules["token_accuracy"]),
            "exact_accuracy": pick(rules["exact"]), "q_halt_accuracy": pick(rules["q_halt_correct"]),
            "steps": pick(steps)}


EVAL_KEYS = ("count", "accuracy", "exact_accuracy", "q_halt_accuracy", "steps")


def evaluation_sums(model: nn.Module, split: Split, batch_size: int, dist: DistInfo,
                    stop: Callable[[], bool] | None = None, desc: str = "eval") -> torch.Tensor:
    """The EVAL_KEYS sums of this rank's rows and, last, 1 if `stop()` ended the loop early, on
    the device: nothing is read back to the host inside the loop, so the device never waits for
    it. `stop` is asked after every batch (a host-side flag, e.g. a signal's); the bar (`desc`)
    counts examples."""
    # Per-batch float32 sums are exact counts; the run's totals accumulate in float64 (MPS has none).
    dtype = torch.float32 if dist.device.type == "mps" else torch.float64
    sums = torch.zeros(len(EVAL_KEYS) + 1, dtype=dtype, device=dist.device)
    total = int(split.attrs.get("total_examples", 0)) or None
    loop = candidate_batches(model, split, batch_size, dist, CandidateSpec())
    with closing(loop), progress(total=total, desc=desc, unit="ex") as bar:
        for item, tensors, segments in loop:
            answers = segments[-1]
            valid = as_torch({"valid": item.mask}, dist.device)["valid"]
            batch = score(answers.predictions, tensors["labels"], answers.q_halt, answers.steps, valid)
            sums[:-1] += torch.stack([batch[k] for k in EVAL_KEYS]).to(dtype)
            bar.update(int(item.mask.sum()) * dist.world_size)  # the mask is on the host: no sync
            if stop is not None and stop():
                sums[-1] = 1
                break
    return sums


def evaluate(model: nn.Module, split: Split, batch_size: int, dist: DistInfo,
             stop: Callable[[], bool] | None = None, desc: str = "eval") -> dict[str, float] | None:
    """Exact accuracy, token accuracy, q-halt accuracy and mean steps over every example of
    `split` (summed over ranks); "count" is the number of scored examples. None when `stop()`
    said to stop on any rank (asked between batches)."""
    sums = evaluation_sums(model, split, batch_size, dist, stop, desc)
    reduce_device = dist.device if dist.device.type != "mps" else torch.device("cpu")
    totals = all_reduce_sum(sums.to(reduce_device, torch.float64)).cpu().tolist()  # the one read-back
    if totals[-1] > 0:
        return None
    count = totals[0]
    result = {key: value / max(count, 1) for key, value in zip(EVAL_KEYS[1:], totals[1:-1])}
    return {"count": int(count), **result}


def sequence_accuracy(predictions: torch.Tensor, labels: torch.Tensor, q_halt: torch.Tensor
                      ) -> dict[str, torch.Tensor]:
    """The accuracy rules of the training metrics and of evaluation alike, per sequence [B]:
    scored_count (positions with a label), token_accuracy (right scored positions / scored ones;
    0 without any), exact (every scored position right) and q_halt_correct ((q_halt >= 0) ==
    exact: the Q head's halt logit read as a classifier of "the answer is right")."""
    scored = labels != IGNORE_LABEL_ID
    scored_count = scored.sum(-1)
    correct = (scored & (predictions == labels)).sum(-1)
    exact = correct == scored_count
    return {"scored_count": scored_count, "token_accuracy": correct / scored_count.clamp_min(1),
            "exact": exact, "q_halt_correct": (q_halt >= 0) == exact}
