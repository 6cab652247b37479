"""`hrm train`: start a run from a dataset and a config, or continue one with --resume."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from hrm.common import HrmError, set_quiet
from hrm.cli.options import Force, Json, Quiet, Threads

EXAMPLE = ("Example: hrm train --data data/sudoku --out runs/sudoku --config examples/sudoku_extreme_1k.yaml "
           "arch.L_cycles=8 lr=7e-5    |    hrm train --resume runs/sudoku    |    "
           "torchrun --nproc-per-node 2 -m hrm train ... (see README, Training)")


def train(
    overrides: Annotated[Optional[list[str]], typer.Argument(
        metavar="KEY=VALUE", help="Config overrides with dotted keys, values as YAML scalars "
                                       "(e.g. arch.L_cycles=8 lr=7e-5 max_steps=1000).")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help="Dataset directory (from `hrm build-data`).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder to create.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (e.g. a preset in examples/).")] = None,
    init_from: Annotated[Optional[Path], typer.Option(
        "--init-from", help="Start from these weights: an hrm checkpoint or run folder, or a reference "
                            "checkpoint (weights file with all_config.yaml beside it). The arch comes "
                            "from the checkpoint. Onto a dataset with other puzzle identifiers (test-time "
                            "training on unseen tasks), embedding rows are matched by identifier name and new "
                            "ones start at the mean of the pretrained rows (init_new_puzzle_emb=zero: at zero). "
                            "Same as the config key init_from.")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue this run folder from its latest checkpoint.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="cuda, mps, cpu or auto (default: the config's, auto).")] = None,
    compile_model: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the model (default: on for CUDA, and on CPU for runs of 1000+ steps; compile_mode=reduce-overhead adds CUDA graphs).")] = None,
    threads: Threads = None,
    quiet: Quiet = False,
    force: Force = False,
    as_json: Json = False,
) -> None:
    """Train a model on a dataset; writes RUN/config.yaml, checkpoints, metrics.jsonl and eval/.

    Prints the final metrics: one readable line, or one JSON object with --json.
    """
    set_quiet(quiet)
    from hrm.builders.dataset import open_dataset
    from hrm.train.config import check_new_run_folder, load_config, resume_config

    extra = list(overrides or [])
    if device is not None:
        extra.append(f"device={device}")
    if init_from is not None:
        extra.append(f"init_from={init_from}")
    if compile_model is not None:
        extra.append(f"compile={str(compile_model).lower()}")
    if threads is not None:
        extra.append(f"threads={threads}")
    if resume is not None:
        if out is not None or config is not None:
            raise HrmError("--resume continues an existing run; do not pass --out or --config with it")
        run_dir = resume
        cfg = resume_config(run_dir, extra, str(data) if data else None)
    else:
        if data is None or out is None:
            raise HrmError("hrm train needs --data DIR and --out RUN (or --resume RUN)")
        run_dir = out
        cfg = load_config(config, [*extra, f"data_path={data}"])
        check_new_run_folder(run_dir, force)
    open_dataset(cfg.data_path)  # bad input fails before torch is even imported
    from hrm.train.loop import TrainingInterrupted, train as run_training

    try:
        result = run_training(cfg, run_dir, resume=resume is not None, force=force)
    except TrainingInterrupted as stop:
        print(f"error: {stop}", file=sys.stderr)
        raise typer.Exit(128 + stop.signum)
    typer.echo(json.dumps(result) if as_json else _text(result))


def _text(result: dict) -> str:
    """`runs/s4: step 2400, test exact accuracy 91.20%, token accuracy 97.31%, q-halt accuracy 99.0%`."""
    parts = [f"{result['run']}: step {result['step']}"]
    split = result.get("split", "train")
    for key, name in (("exact_accuracy", "exact accuracy"), ("accuracy", "token accuracy"),
                      ("q_halt_accuracy", "q-halt accuracy")):
        if key in result:
            parts.append(f"{split} {name} {result[key]:.2%}" if not parts[1:] else f"{name} {result[key]:.2%}")
    if "steps" in result:
        parts.append(f"mean segments {result['steps']:.1f}")
    return ", ".join(parts)
