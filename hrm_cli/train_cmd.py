"""`hrm train`: start a run from a dataset and a config, or continue one with --resume."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from hrm.common import UsageError, print_error, set_quiet
from hrm.cli.options import Force, HrmCommand, Json, Quiet, Threads

EXAMPLE = ("Example: hrm train --data data/sudoku --out runs/sudoku --config examples/sudoku_extreme_1k.yaml "
           "arch.L_cycles=8 lr=7e-5    |    hrm train --resume runs/sudoku    |    "
           "torchrun --nproc-per-node 2 -m hrm train ... (see docs/training.md)")


class TrainCommand(HrmCommand):
    """The first Ctrl-C stops training after the step with a checkpoint (train.loop says so); a
    second one stops at once, which this line says."""

    def interrupted_message(self, ctx: Any) -> str:
        return "interrupted: stopped at once, without a checkpoint of the step in progress"


def train(
    overrides: Annotated[Optional[list[str]], typer.Argument(
        metavar="KEY=VALUE", help="Config overrides with dotted keys, values as YAML scalars "
                                  "(e.g. arch.L_cycles=8 lr=7e-5 max_steps=1000).")] = None,
    data: Annotated[Optional[Path], typer.Option(
        "--data", "-d", metavar="DIR", help="Dataset directory (from `hrm build-data`).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", metavar="RUN", help="Run folder to create.")] = None,
    config: Annotated[Optional[Path], typer.Option(
        "--config", "-c", metavar="FILE", help="YAML config (e.g. a preset in examples/).")] = None,
    init_from: Annotated[Optional[Path], typer.Option(
        "--init-from", metavar="CHECKPOINT",
        help="Start from these weights: an hrm checkpoint or run folder, or a reference "
             "checkpoint (weights file with all_config.yaml beside it). The arch comes "
             "from the checkpoint. Onto a dataset with other puzzle identifiers (test-time "
             "training on unseen tasks), embedding rows are matched by identifier name and new "
             "ones start at the mean of the pretrained rows (init_new_puzzle_emb=zero: at zero). "
             "Same as the config key init_from.")] = None,
    resume: Annotated[Optional[Path], typer.Option(
        "--resume", metavar="RUN", help="Continue this run folder from its latest checkpoint.")] = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", metavar="N", show_default=False,
        help="Random seed of everything this command draws (weights, data order, noise): the same "
             "arguments and seed give the same result. Same as the config key seed (default 0).")] = None,
    device: Annotated[Optional[str], typer.Option(
        "--device", metavar="DEVICE", help="cuda, mps, cpu or auto (default: the config's, auto).")] = None,
    compile_model: Annotated[Optional[bool], typer.Option(
        "--compile/--no-compile", help="torch.compile the model (default: on for CUDA, and on CPU for runs of "
                                       "1000+ steps; compile_mode=reduce-overhead adds CUDA graphs).")] = None,
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
    from hrm.train.config import check_new_run_folder, load_config, option_overrides, resume_config

    # The options that set a config key are overrides like the others (a key given both ways
    # is refused: which one would count?)
    extra = option_overrides(overrides or [], {"seed": seed, "device": device, "init_from": init_from,
                                               "compile": compile_model, "threads": threads})
    if resume is not None:
        if out is not None or config is not None:
            raise UsageError("--resume continues an existing run; do not pass --out or --config with it")
        run_dir = resume
        cfg = resume_config(run_dir, extra, str(data) if data else None)
    else:
        if data is None or out is None:
            raise UsageError("hrm train needs --data DIR and --out RUN (or --resume RUN)")
        run_dir = out
        cfg = load_config(config, [*extra, f"data_path={data}"])
        check_new_run_folder(run_dir, force)
    open_dataset(cfg.data_path)  # bad input fails before the model is built
    from hrm.train.loop import TrainingInterrupted, train as run_training

    try:
        result = run_training(cfg, run_dir, resume=resume is not None, force=force)
    except TrainingInterrupted as stop:
        print_error(str(stop))
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
