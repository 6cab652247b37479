"""`hrm train`: start a run from a dataset and a config, or continue one with --resume."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from hrm.common import HrmError, set_quiet
from hrm.cli.options import Force, Quiet

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
                            "from the checkpoint. Same as the config key init_from.")] = None,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue this run folder from its latest checkpoint.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="cuda, mps, cpu or auto (default: the config's, auto).")] = None,
    compile_model: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the model (default: on for CUDA, and on CPU for runs of 1000+ steps; compile_mode=reduce-overhead adds CUDA graphs).")] = None,
    quiet: Quiet = False,
    force: Force = False,
) -> None:
    """Train a model on a dataset; writes RUN/config.yaml, checkpoints, metrics.jsonl and eval/.

    Prints the final test metrics as one JSON line on stdout.
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
    typer.echo(json.dumps(result))
