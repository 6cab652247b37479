"""`hrm train`: config -> build -> loop -> checkpoint, each a small function.

    result = train(load_config("examples/smoke.yaml", ["data_path=data/s4"]), Path("runs/s4"))

One training step runs one ACT segment for every slot of the batch: slots whose example halted
take the new batch's rows (models/hrm.py), the carry goes on to the next step, the loss is divided
by the global batch size, and both optimisers step (AdamAtan2 for the dense weights, sign-SGD for
the puzzle-embedding rows) at the scheduled learning rate. Metric sums stay on the device and are
synchronised every `log_interval` steps. A checkpoint holds everything a resumed run needs to
continue exactly: weights, both optimisers (the puzzle-embedding table is a model buffer), the
step, the sampler position, the ACT carry, the unlogged metric sums, the EMA and the RNG states.

Under torchrun (common/distributed.py) each rank trains its slice of every global batch; carry and
metric sums are checkpointed for the whole global batch, so a run resumes on any number of ranks.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from hrm.common import HrmError, StorageError, atomic_file, log, progress, set_quiet, storage_error
from hrm.common.outputs import replace_run_folder
from hrm.builders.dataset import Dataset, DatasetDamaged, Split, open_dataset
from hrm.train import checkpoint as ckpt
from hrm.models.checkpoints import checkpoint_path, latest_checkpoint, list_checkpoints
from hrm.train.compiled import compiled_forward
from hrm.train.config import RUN_OUTPUT, TrainConfig, check_new_run_folder, is_run_folder, save_config
from hrm.train.run_lock import LOCK_NAME, acquire_run_lock, release_run_lock
from hrm.train.data import TrainLoader
from hrm.eval.batches import as_torch
from hrm.common.distributed import (DistInfo, all_reduce_gradients, all_reduce_sum, any_rank, apply_threads,
                                    assign_slots, barrier, broadcast_from_main, gather_rows, setup, teardown)
from hrm.train.ema import Ema
from hrm.models.registry import build_for_dataset
from hrm.eval.inference import check_dataset_matches, evaluate, model_dataset_signature
from hrm.train.init_from import identifier_names, init_arch, init_weights
from hrm.train.losses import act_loss
from hrm.train.metrics import MetricsLog, check_logger
from hrm.train.optim import AdamAtan2, SparseSignSGD, lr_at
from hrm.train.table_size import table_size_line, tensor_bytes
from hrm.models.depth import SCHEDULABLE_KEYS, describe_schedule, scheduled_keys, values_at_step
from hrm.train.resources import (available_memory, check_memory, count_model, describe_model, estimate_memory,
                                 graph_blocks, meta_model, multi_gpu_recipe, peak_memory)

METRIC_KEYS = ("count", "lm_loss", "q_halt_loss", "q_continue_loss", "accuracy", "exact_accuracy",
               "q_halt_accuracy", "steps")


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM arrived; a checkpoint was saved (the CLI exits 128 + signal)."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


@dataclass
class RunState:
    """What changes as the run goes on (and a checkpoint restores); `Trainer` holds what was built."""
    step: int = 0
    sampler_state: dict[str, int] | None = None  # the position after the last trained batch
    carry: Any = None
    window: dict[str, torch.Tensor] = field(default_factory=dict)  # unlogged metric sums, on the device
    elapsed: float = 0.0
    last_pass: int = -1        # evaluation interval of the last trained batch
    evaluated_pass: int = -1   # last interval whose closing evaluation ran
    last_eval: dict[str, Any] | None = None
    last_train: dict[str, Any] | None = None  # the last metrics.jsonl train record
    stop_signal: int | None = None
    evaluating: bool = False  # a signal now stops the evaluation (the checkpoint is saved already)


@dataclass
class Trainer:
    """What `build` makes once for a run: data, model, optimisers; `state` is the moving part."""
    config: TrainConfig
    run_dir: Path
    dist: DistInfo
    dataset: Dataset
    signature: dict[str, Any]
    model: nn.Module
    forward: Callable
    optimizers: dict[str, torch.optim.Optimizer]
    loader: TrainLoader
    test_split: Split | None
    total_steps: int  # the learning-rate schedule's length (the reference's estimate)
    run_steps: int    # the steps the run takes: the loader's batches, at most max_steps
    ema: Ema | None = None
    state: RunState = field(default_factory=RunState)


# ----------------------------------------------------------------------------- build


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_optimizers(model: nn.Module, config: TrainConfig) -> dict[str, torch.optim.Optimizer]:
    """AdamAtan2 for the dense weights, sign-SGD for the puzzle-embedding rows (lr set per step)."""
    puzzle_emb = getattr(model, "puzzle_emb", None)
    sparse = {id(p) for p in puzzle_emb.parameters()} if puzzle_emb is not None else set()
    dense = [p for p in model.parameters() if p.requires_grad and id(p) not in sparse]
    optimizers: dict[str, torch.optim.Optimizer] = {
        "dense": AdamAtan2(dense, lr=0.0, betas=(config.beta1, config.beta2),
                           weight_decay=config.weight_decay)}
    if puzzle_emb is not None:
        optimizers["puzzle_emb"] = SparseSignSGD(puzzle_emb, lr=0.0, weight_decay=config.puzzle_emb_weight_decay)
    return optimizers


def build(config: TrainConfig, run_dir: Path, dist: DistInfo,
          weights: dict[str, torch.Tensor] | None = None) -> Trainer:
    """Dataset, model (with `weights` when given: init_from), optimisers, loader; touches
    nothing on disk."""
    dataset = open_dataset(config.data_path)
    train_split = dataset.split("train")
    test_split = dataset.split("test") if "test" in dataset.split_names else None
    if test_split is not None and not test_split.has_solutions:
        test_split = None  # unseen tasks (--no-solutions): nothing to evaluate during training
    signature = model_dataset_signature(dataset)
    check_logger(config.logger)
    local_batch = config.global_batch_size // dist.world_size
    _seed_everything(config.seed)  # same initial weights on every rank
    model = build_for_dataset(config.arch, signature, local_batch)
    if weights is not None:
        model.load_state_dict(weights)
    model = model.to(dist.device).train()
    broadcast_from_main(model)
    assign_slots(model, dist, config.global_batch_size)
    optimizers = build_optimizers(model, config)
    loader = TrainLoader(train_split, global_batch_size=config.global_batch_size, epochs=config.epochs,
                         epochs_per_pass=config.eval_interval, seed=config.seed, dist=dist,
                         cache_bytes=config.loader_cache_mb << 20)
    attrs = train_split.attrs
    # The reference's schedule length: epochs * groups * mean examples per puzzle / batch.
    total_steps = max(1, int(config.epochs * attrs.get("total_groups", loader.sampler.num_groups)
                             * attrs.get("mean_puzzle_examples", 1.0) / config.global_batch_size))
    forward = compiled_forward(model, config, dist.device, min(total_steps, config.max_steps or total_steps))
    return Trainer(config=config, run_dir=run_dir, dist=dist, dataset=dataset, signature=signature,
                   model=model, forward=forward, optimizers=optimizers, loader=loader,
                   test_split=test_split, total_steps=total_steps,
                   run_steps=loader.sampler.count_batches(limit=config.max_steps or None),
                   ema=Ema(model, config.ema_rate) if config.ema else None,
                   state=RunState(sampler_state=loader.sampler.state_dict()))


# ----------------------------------------------------------------------------- checkpoints


def _global_carry(t: Trainer) -> Any:
    """The carry of every slot of the global batch, in rank order (all ranks take part)."""
    if t.state.carry is None:
        return None
    return ckpt.map_tensors(lambda rows: gather_rows(rows, t.dist.device), ckpt.tree_state(t.state.carry))


def _global_window(t: Trainer) -> dict[str, torch.Tensor]:
    """The unlogged metric sums over all ranks (all ranks take part)."""
    keys = sorted(t.state.window)
    if not keys:
        return {}
    totals = all_reduce_sum(torch.stack([t.state.window[k] for k in keys]).clone()).cpu()
    return dict(zip(keys, totals))


def _checkpoint_state(t: Trainer, carry: Any, window: dict[str, torch.Tensor]) -> dict[str, Any]:
    return {"step": t.state.step, "model": t.model.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in t.optimizers.items()},
            "ema": t.ema.state_dict() if t.ema is not None else None,
            "world_size": t.dist.world_size,
            "sampler": t.state.sampler_state, "carry": carry, "window": window, "rng": ckpt.rng_state(),
            "elapsed": t.state.elapsed, "last_pass": t.state.last_pass, "evaluated_pass": t.state.evaluated_pass,
            "last_eval": t.state.last_eval, "config": t.config.to_dict(), "dataset": t.signature,
            # the stage of a depth schedule the weights were trained at (inference builds it)
            "depth": {key: getattr(t.model.config, key) for key in SCHEDULABLE_KEYS},
            # names, so that `init_from` onto other tasks can match puzzle rows by identifier
            "identifiers": identifier_names(t.dataset)}


def _dummy_batch(t: Trainer) -> dict[str, torch.Tensor]:
    size, seq_len = t.config.global_batch_size // t.dist.world_size, t.signature["seq_len"]
    device = t.dist.device
    return {"inputs": torch.zeros(size, seq_len, dtype=torch.int32, device=device),
            "labels": torch.zeros(size, seq_len, dtype=torch.int64, device=device),
            "puzzle_identifiers": torch.zeros(size, dtype=torch.int32, device=device)}


def restore(t: Trainer, state: dict[str, Any]) -> None:
    check_dataset_matches({"dataset": state["dataset"]}, t.dataset)
    t.model.load_state_dict(state["model"])
    for name, opt in t.optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    t.loader.sampler.load_state_dict(state["sampler"])
    t.state.sampler_state = dict(state["sampler"])
    if (state["ema"] is not None) != (t.ema is not None):
        raise HrmError("the checkpoint was saved " + ("with" if state["ema"] is not None else "without")
                       + " an EMA and the config says otherwise")
    if t.ema is not None:
        t.ema.load_state_dict(state["ema"])
    # The carry and metric sums are stored for the global batch: take this rank's slots, and let
    # rank 0 alone carry the sums, so any number of ranks continues the same run.
    mine = t.dist.local_rows(t.config.global_batch_size)
    t.state.carry = None if state["carry"] is None else ckpt.tree_load(
        t.model.initial_carry(_dummy_batch(t)), ckpt.map_tensors(lambda rows: rows[mine], state["carry"]))
    t.state.window = {k: (v if t.dist.is_main else torch.zeros_like(v)).to(t.dist.device)
                for k, v in state["window"].items()}
    t.state.step, t.state.elapsed = state["step"], state["elapsed"]
    t.state.last_pass, t.state.evaluated_pass, t.state.last_eval = state["last_pass"], state["evaluated_pass"], state["last_eval"]
    ckpt.set_rng_state(state["rng"])


def _assert_finite(t: Trainer, window: dict[str, Any]) -> None:
    """Stop, keeping the last good checkpoint, if any loss since the last check was NaN/inf.
    `window`: the metric sums already summed over ranks (the check adds no collective)."""
    if float(window.get("nonfinite", 0.0)) > 0:
        latest = latest_checkpoint(t.run_dir)
        kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint was saved yet"
        raise HrmError(f"the loss became NaN or inf by step {t.state.step}; training stopped and {kept}")


def save(t: Trainer) -> Path:
    window = _global_window(t)
    _assert_finite(t, window)
    path = checkpoint_path(t.run_dir, t.state.step)
    carry = _global_carry(t)
    barrier()  # every rank is at this step before rank 0 writes
    if t.dist.is_main:
        ckpt.save_checkpoint(path, _checkpoint_state(t, carry, window))
        ckpt.prune_checkpoints(t.run_dir, t.config.keep_checkpoints)
    barrier()  # no rank goes on (or exits) before the checkpoint is complete
    return path


# ----------------------------------------------------------------------------- steps


def train_step(t: Trainer, batch: dict[str, torch.Tensor]) -> None:
    cfg = t.config
    if t.state.carry is None:
        t.state.carry = t.model.initial_carry(batch)
    carry, outputs = t.forward(t.state.carry, batch)
    loss, metrics = act_loss(outputs, carry, cfg.arch.get("loss_type", "stablemax_cross_entropy"))
    (loss / cfg.global_batch_size).backward()
    all_reduce_gradients(t.optimizers["dense"].param_groups[0]["params"])
    t.state.step += 1
    for name, opt in t.optimizers.items():
        base_lr = cfg.puzzle_emb_lr if name == "puzzle_emb" else cfg.lr
        lr = lr_at(t.state.step, base_lr=base_lr, warmup_steps=cfg.lr_warmup_steps, total_steps=t.total_steps,
                   min_ratio=cfg.lr_min_ratio)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        opt.zero_grad(set_to_none=True)
    if t.ema is not None:
        t.ema.update(t.model)
    t.state.carry = carry
    # Sums stay on the device (no host sync per step); MPS has no float64.
    dtype = torch.float32 if loss.device.type == "mps" else torch.float64
    sums = {k: metrics[k].detach().to(dtype) for k in METRIC_KEYS}
    sums["nonfinite"] = (~torch.isfinite(loss.detach())).to(dtype)
    # Summed over ranks this counts steps, whatever the number of ranks (also across a resume).
    sums["steps_done"] = torch.full((), 1.0 / t.dist.world_size, dtype=dtype, device=loss.device)
    for key, value in sums.items():
        t.state.window[key] = t.state.window[key] + value if key in t.state.window else value


def flush_metrics(t: Trainer, metrics_log: MetricsLog, seconds: float) -> dict[str, Any] | None:
    """One metrics.jsonl line for the steps since the last one: every metric is a mean over the
    sequences that halted in those steps (act_loss sums all of them over the same set)."""
    if not t.state.window:
        return None
    keys = list(t.state.window)
    # One collective and one read-back for the whole window, the NaN check included.
    totals = dict(zip(keys, all_reduce_sum(torch.stack([t.state.window[k] for k in keys])).cpu().tolist()))
    _assert_finite(t, totals)
    t.state.window = {}
    steps_done = totals["steps_done"]
    count = max(totals["count"], 1.0)
    record: dict[str, Any] = {"step": t.state.step, "split": "train",
                              "lr": t.optimizers["dense"].param_groups[0]["lr"]}
    for key in METRIC_KEYS[1:]:
        record[key] = totals[key] / count
    record["count"] = int(totals["count"])
    record["examples_per_s"] = t.config.global_batch_size * steps_done / max(seconds, 1e-9)
    peak = peak_memory(t.dist.device)  # rank 0's: each process holds the same model and batch share
    if peak is not None:
        record["peak_memory"] = peak
    for key in scheduled_keys(t.config.arch):  # the stage these steps trained at
        record[f"arch.{key}"] = getattr(t.model.config, key)
    record["time"] = round(t.state.elapsed, 3)
    metrics_log.write(record)
    t.state.last_train = record
    return record


def enter_depth_stage(t: Trainer, metrics_log: MetricsLog, tick: Callable[[], float]) -> None:
    """Set the model to the stage of the depth schedule (arch.bptt/H_cycles/L_cycles given as
    [[fraction, value], ...]) that the next step trains at. Where a stage begins the log lines
    before it are flushed (each line holds one stage's steps) and the switch is logged. The stage
    is a function of the step alone, so every rank, and a resumed run, switches at the same step;
    torch.compile guards on these values and recompiles once per new stage."""
    arch, step = t.config.arch, t.state.step
    values = values_at_step(arch, step, t.total_steps)
    if not values:
        return
    before = values_at_step(arch, step - 1, t.total_steps) if step > 0 else values
    if values != before:
        if t.state.window:
            flush_metrics(t, metrics_log, tick())
        changes = ", ".join(f"arch.{key} {before[key]} -> {values[key]}" for key in values if values[key] != before[key])
        log(f"step {step}: depth schedule: {changes}")
    t.model.config.set_depth(**values)


def run_evaluation(t: Trainer, metrics_log: MetricsLog) -> dict[str, Any] | None:
    """Evaluate on the test split, log and return the record; None when a signal stopped it
    (then nothing is logged)."""
    batch_size = t.config.eval_batch_size or t.config.global_batch_size
    t.state.evaluating = True
    try:
        with (t.ema.swapped_in(t.model) if t.ema is not None else nullcontext()):
            metrics = evaluate(t.model, t.test_split, batch_size, t.dist, desc=f"eval step {t.state.step}",
                               stop=lambda: t.state.stop_signal is not None)
    finally:
        t.state.evaluating = False
    if metrics is None:
        return None
    result = {"step": t.state.step, "split": "test", **metrics, "time": round(t.state.elapsed, 3)}
    if t.dist.is_main:
        folder = t.run_dir / "eval"
        folder.mkdir(exist_ok=True)
        with atomic_file(folder / f"step_{t.state.step}.json") as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n")
    metrics_log.write(result)
    t.state.last_eval = result
    return result


# ----------------------------------------------------------------------------- the run


@contextmanager
def _stop_on_signals(t: Trainer) -> Iterator[None]:
    """SIGINT/SIGTERM ask the loop to checkpoint and stop after the current step; a second
    signal stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    first = [0.0]
    under_torchrun = t.dist.world_size > 1 or "TORCHELASTIC_RUN_ID" in os.environ

    def handler(signum: int, _frame: Any) -> None:
        # Ctrl-C under torchrun reaches a process twice (from the terminal and from torchrun):
        # there only a repeat after a pause means "stop now"; in one process a second signal does.
        if t.state.stop_signal is not None:
            if not under_torchrun or time.monotonic() - first[0] > 2.0:
                raise KeyboardInterrupt
            return
        t.state.stop_signal, first[0] = signum, time.monotonic()
        if t.state.evaluating:
            log(f"received {signal.Signals(signum).name}: stopping the evaluation after this batch "
                f"(the checkpoint of step {t.state.step} is saved)")
        else:
            log(f"received {signal.Signals(signum).name}: saving a checkpoint after this step "
                f"(again to stop at once, without one)")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def check_before_start(config: TrainConfig, dist: DistInfo, threads: int) -> None:
    """Before anything is allocated: name the model and its size (the run's first log line),
    estimate the memory a step needs and refuse, in one line, a run that cannot fit (config key
    memory_check=false starts it anyway), and warn when a multi-GPU recipe runs on a CPU."""
    dataset = open_dataset(config.data_path)
    train_split = dataset.split("train")
    shapes = {"seq_len": train_split.seq_len, "vocab_size": train_split.vocab_size,
              "num_puzzle_identifiers": dataset.num_identifiers}
    local_batch = config.global_batch_size // dist.world_size
    counts = count_model(meta_model(config.arch, shapes, local_batch), train_split.seq_len)
    log(describe_model(config.arch, counts))
    rows = int(train_split.attrs.get("total_examples", 0))
    cache = min(config.loader_cache_mb << 20, 2 * rows * train_split.seq_len)  # inputs + labels, uint8
    half = dist.device.type == "cuda" and config.arch.get("forward_dtype") in ("bfloat16", "float16")
    estimate = estimate_memory(counts, local_batch=local_batch, vocab_size=train_split.vocab_size,
                               ema=config.ema, activation_bytes=2 if half else 4, data_cache=cache,
                               grad_blocks=graph_blocks(config.arch))
    where = f"{dist.device}" + (f", {threads} thread(s)" if dist.device.type == "cpu" else "")
    log(f"memory estimate per process at batch {local_batch} x {counts.positions} positions ({where}): "
        f"{estimate.describe()}")
    if dist.device.type == "cpu":
        warning = multi_gpu_recipe(config, counts)
        if warning:
            log(warning)
    if config.memory_check:
        available = available_memory(dist.device)
        # processes of one machine share its memory (a GPU each has its own)
        sharing = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if dist.device.type != "cuda" else 1
        where = str(dist.device) + (f" for each of {sharing} processes" if sharing > 1 else "")
        check_memory(estimate, None if available is None else available // max(sharing, 1), where)


@dataclass
class RunWriter:
    """This process's claim on a run folder: the writer's lock (rank 0 only) and whether this
    process created the folder (so that a run that could not start leaves nothing behind)."""
    run_dir: Path
    lock_key: Path | None = None
    created: bool = False

    def lock(self) -> None:
        if self.lock_key is None:
            self.lock_key = acquire_run_lock(self.run_dir)

    def release(self) -> None:
        if self.lock_key is not None:
            release_run_lock(self.lock_key)
            self.lock_key = None


def prepare_run(config: TrainConfig, run_dir: Path, *, resume: bool, force: bool, is_main: bool,
                writer: RunWriter | None = None) -> None:
    if resume or not is_main:
        return
    check_new_run_folder(run_dir, force)
    # checked just above; the lock file of an old run we hold stays, so it is never unguarded
    replace_run_folder(run_dir, RUN_OUTPUT, force=True, keep=(LOCK_NAME,))
    save_config(config, run_dir / "config.yaml")  # first: a folder holding only a lock is no run
    if writer is not None:
        writer.created = True
        writer.lock()


def _drop_newer_eval_results(run_dir: Path, step: int) -> None:
    """A resumed run evaluates again after its checkpoint: results of later steps (e.g. of a
    checkpoint that was skipped as damaged) would stand beside the new ones, as metrics.jsonl's
    lines would (MetricsLog drops those)."""
    for path in (run_dir / "eval").glob("step_*.json"):
        number = path.stem[len("step_"):]
        if number.isdigit() and int(number) > step:
            path.unlink(missing_ok=True)


def train(config: TrainConfig, run_dir: str | Path, *, resume: bool = False, force: bool = False) -> dict[str, Any]:
    """Train (or continue) the run in `run_dir`; returns the final test metrics (or train ones
    when the dataset has no test split). Raises TrainingInterrupted after a signal, and HrmError
    when another process is writing the run (one writer per run folder: train/run_lock.py)."""
    run_dir = Path(run_dir)
    writer = RunWriter(run_dir)
    try:
        return _train(config, run_dir, writer, resume=resume, force=force)
    except DatasetDamaged:
        _remove_unstarted(writer)
        raise
    except (StorageError, OSError) as error:  # a full or read-only disk, the checkpoint's or a log's
        replacement = error if isinstance(error, StorageError) else storage_error(
            error, None if error.filename else run_dir)
        if replacement is None:
            raise
        latest = None if _remove_unstarted(writer) else latest_checkpoint(run_dir)
        if writer.created and latest is None:
            raise StorageError(f"{replacement}; training stopped before its first checkpoint and its run "
                               f"folder was removed") from None
        if latest is not None:
            raise StorageError(f"{replacement}; training stopped; `hrm train --resume {run_dir}` continues "
                               f"from {latest}, which is intact") from None
        raise replacement from None
    finally:
        writer.release()


def _remove_unstarted(writer: RunWriter) -> bool:
    """A new run that stops before its first checkpoint has nothing to resume: remove it."""
    if writer.created and not list_checkpoints(writer.run_dir):
        shutil.rmtree(writer.run_dir, ignore_errors=True)
        return True
    return False


def _train(config: TrainConfig, run_dir: Path, writer: RunWriter, *, resume: bool, force: bool) -> dict[str, Any]:
    started = time.monotonic()  # the time budget counts this process's whole run
    # config.yaml records the dataset's absolute path: a resume from another folder finds it
    config = dataclasses.replace(config, data_path=os.path.abspath(config.data_path))
    dist = setup(config.device)
    if not dist.is_main:
        set_quiet(True)  # one set of logs and one progress bar per run
    elif resume or is_run_folder(run_dir):
        writer.lock()  # before anything of the run is read, moved aside or replaced
    threads = apply_threads(config.threads, dist.device)
    state = ckpt.load_for_resume(run_dir, on_skip=log, set_aside=dist.is_main) if resume else None
    weights, arch_note = None, None
    if config.init_from and not resume:  # a resumed run's weights come from its checkpoint
        arch, weights = init_weights(config.init_from, open_dataset(config.data_path),
                                     config.global_batch_size // dist.world_size, config.init_new_puzzle_emb)
        arch = init_arch(arch, config.arch)
        if arch != config.arch:
            arch_note = f"init_from {config.init_from}: using its architecture {arch}"
        config = dataclasses.replace(config, arch=arch)
    check_before_start(config, dist, threads)
    if arch_note:
        log(arch_note)
    t = build(config, run_dir, dist, weights)
    if config.compile is None:  # record the default's choice, so that a resume (even with another
        # max_steps, which the CPU default depends on) runs the same code as the run it continues
        config = t.config = dataclasses.replace(config, compile=t.forward is not t.model)
    prepare_run(config, run_dir, resume=resume, force=force, is_main=dist.is_main, writer=writer)
    if state is not None:
        restore(t, state)
        log(f"resuming {run_dir} from step {t.state.step}")
    # A depth schedule's stage of the last step trained (the model is built at the last stage), for
    # an evaluation before the next step; the loop enters each step's stage (enter_depth_stage).
    t.model.config.set_depth(**values_at_step(config.arch, max(t.state.step - 1, 0), t.total_steps))
    if dist.is_main and resume:
        save_config(config, run_dir / "config.yaml")  # records changed max_steps etc.
        _drop_newer_eval_results(run_dir, t.state.step)
    metrics_log = MetricsLog(run_dir, enabled=dist.is_main, logger=config.logger, config=config.to_dict(),
                             resume_step=t.state.step if resume else None)
    cpu_threads = f", {threads} CPU thread(s)" if dist.device.type == "cpu" else ""
    schedule = f", the learning-rate schedule spans {t.total_steps}" if t.total_steps != t.run_steps else ""
    steps = f"{t.run_steps} step{'' if t.run_steps == 1 else 's'}"
    log(f"training on {dist.device} ({dist.world_size} process(es){cpu_threads}); {steps}{schedule}")
    carry_bytes = tensor_bytes(t.model.initial_carry(_dummy_batch(t))) * dist.world_size  # the global batch's
    log(table_size_line(t.model, t.signature["num_puzzle_identifiers"], ema=t.ema is not None, carry_bytes=carry_bytes))
    for line in describe_schedule(config.arch, t.total_steps):
        log(f"depth schedule: {line}")
    deadline = started + config.time_budget if config.time_budget else None
    if deadline is not None:
        log(f"time budget {config.time_budget:g} s: training stops by then with a checkpoint")
    try:
        with _stop_on_signals(t):
            _loop(t, metrics_log, deadline)
    finally:
        t.loader.close()
        metrics_log.close()
        teardown()
    return {**(t.state.last_eval or t.state.last_train or {"step": t.state.step}), "run": str(run_dir)}


def _interval_ended_unevaluated(run: RunState, next_pass: int) -> bool:
    """True when the batch about to train (of evaluation interval `next_pass`) starts a new
    interval and the one the last trained batch belonged to has had no closing evaluation yet.
    Before the first batch last_pass is -1, so nothing is evaluated; after a resume from the
    checkpoint of that evaluation, evaluated_pass == last_pass, so it is not evaluated twice."""
    return run.evaluated_pass < run.last_pass < next_pass


def _budget_postfix(deadline: float, first_step: int, step: int, last_step: int, since: float,
                    now: float | None = None) -> str:
    """The progress line's ETA against the time budget: which ends first, steps or budget."""
    now = time.monotonic() if now is None else now
    left = max(0.0, deadline - now)
    rate = (step - first_step) / max(now - since, 1e-9)
    steps_eta = (last_step - step) / rate if rate > 0 else float("inf")
    clock = lambda seconds: time.strftime("%H:%M:%S", time.gmtime(seconds))  # noqa: E731
    if steps_eta <= left:
        return f"done in {clock(steps_eta)}, budget left {clock(left)}"
    return f"budget stops at ~step {step + int(rate * left)}/{last_step} in {clock(left)}"


def _loop(t: Trainer, metrics_log: MetricsLog, deadline: float | None = None) -> None:
    cfg = t.config
    loop_start, first_step, budget_hit = time.monotonic(), t.state.step, False
    last_step = t.run_steps
    bar = progress(total=last_step, desc="train", unit="step")
    bar.update(min(t.state.step, last_step))
    window_start = time.perf_counter()
    batches = t.loader.iterate() if not (cfg.max_steps and t.state.step >= cfg.max_steps) else iter(())

    def tick() -> float:
        nonlocal window_start
        now = time.perf_counter()
        seconds, window_start = now - window_start, now
        t.state.elapsed += seconds
        return seconds

    def evaluate_and_save(closes_pass: bool) -> None:
        tick()
        if t.test_split is not None:
            # The checkpoint first: an evaluation can take hours, and a stop or a crash during it
            # must not lose the steps before it (a resume from it runs the evaluation again).
            path = save(t)
            result = run_evaluation(t, metrics_log)
            if result is None:
                signum = t.state.stop_signal or signal.SIGTERM
                raise TrainingInterrupted(signum, f"interrupted by {signal.Signals(signum).name} during the evaluation "
                                          f"at step {t.state.step}; checkpoint {path}; evaluate it with `hrm eval "
                                          f"--checkpoint {t.run_dir} --data {t.config.data_path}` or continue with "
                                          f"`hrm train --resume {t.run_dir}` (which evaluates it first)")
            bar.set_postfix(exact=f"{result['exact_accuracy']:.3f}")
        if closes_pass:  # an early stop (max_steps) evaluates without closing the interval
            t.state.evaluated_pass = t.state.last_pass
        save(t)  # again with the evaluation recorded, so that a resume does not repeat it
        tick()  # the window's examples/s counts training time only

    for item in batches:
        if _interval_ended_unevaluated(t.state, item.pass_index):
            evaluate_and_save(closes_pass=True)
        batch = as_torch(item.batch, t.dist.device)
        enter_depth_stage(t, metrics_log, tick)
        train_step(t, batch)
        # The loader's own sampler runs ahead in its thread; a checkpoint records where the
        # batches actually trained on end.
        t.state.sampler_state, t.state.last_pass = item.sampler_state, item.pass_index
        bar.update(1)
        at_log_step = t.state.step % cfg.log_interval == 0
        if at_log_step:
            record = flush_metrics(t, metrics_log, tick())
            postfix = {"loss": f"{record['lm_loss']:.3f}", "exact": f"{record['exact_accuracy']:.3f}"}
            if deadline is not None:
                postfix["eta"] = _budget_postfix(deadline, first_step, t.state.step, last_step, loop_start)
            bar.set_postfix(postfix)
        if cfg.checkpoint_interval and t.state.step % cfg.checkpoint_interval == 0:
            save(t)
        # A signal may reach the ranks a step apart, so they agree on stopping through a collective;
        # under torchrun it runs at log steps only (none in the steps between: the device never
        # waits on the host there), in one process it costs nothing and runs every step.
        if (at_log_step or t.dist.world_size == 1) and any_rank(t.state.stop_signal is not None):
            path = save(t)
            signum = t.state.stop_signal or signal.SIGTERM
            raise TrainingInterrupted(signum, f"interrupted by {signal.Signals(signum).name} "
                                      f"at step {t.state.step}; checkpoint {path}; continue with "
                                      f"`hrm train --resume {t.run_dir}`")
        if cfg.max_steps and t.state.step >= cfg.max_steps:
            break
        # checked at log intervals only: under torchrun all ranks must agree (one collective)
        if deadline is not None and t.state.step % cfg.log_interval == 0 and any_rank(time.monotonic() >= deadline):
            budget_hit = True
            log(f"time budget of {cfg.time_budget:g} s reached at step {t.state.step} of {last_step}: "
                f"stopping with a checkpoint")
            break
    bar.close()
    if t.state.window:
        flush_metrics(t, metrics_log, tick())
    if t.state.last_eval is None or t.state.last_eval["step"] != t.state.step:
        evaluate_and_save(closes_pass=not (cfg.max_steps and t.state.step >= cfg.max_steps) and not budget_hit)
    elif latest_checkpoint(t.run_dir) != checkpoint_path(t.run_dir, t.state.step):
        save(t)
