"""torch.compile for the training forward: when it is on, which mode, and a clean fallback.

    forward = compiled_forward(model, config, device)   # call it like the model

- `compile` (config key; `hrm train --compile/--no-compile`): None = the default
  (`compile_by_default`: CUDA always, CPU for runs of CPU_COMPILE_MIN_STEPS steps or more),
  true/false = as asked.
- `compile_mode`: torch.compile's mode. "reduce-overhead" captures each segment as a CUDA graph
  (one launch instead of hundreds: for the small-batch regime, where the GPU otherwise waits for
  Python to queue kernels). The step has no host sync and fixed shapes, which CUDA graphs need.
  Untested here (no GPU on the machines this was written on); on another device it compiles in
  the default mode, with a log line.
- A depth schedule (models/depth.py) compiles once per stage: dynamo guards on the depth values
  that the trainer switches (tests/test_compile.py).
- Any compiler failure (no C++ compiler or Triton, an unsupported op, a CUDA-graph capture
  error) logs one line and the run continues eagerly: compiling is an optimisation, never a
  reason for a run to stop.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from hrm.common import log
from hrm.models.depth import stage_fractions


# On CPU (benchmarks/README.md, bench_train.py's compile_pays_after_steps, a loaded 2-core
# machine): compiling took ~375 s at the smoke size (hidden 64, batch 128, 9x9) for steps ~1.4x
# faster, paying for itself after ~80 steps; 876 s at the paper size (batch 16) for 1.13x, after
# 69 steps. 1000 steps leaves a margin; short runs (tests, quick checks) stay eager.
CPU_COMPILE_MIN_STEPS = 1000


def compile_by_default(device: torch.device, steps: int) -> bool:
    """Whether a run of `steps` steps on `device` compiles when the config does not say: on CUDA
    always, on CPU when the run is long enough for the compile time to pay off, never on MPS."""
    return device.type == "cuda" or (device.type == "cpu" and steps >= CPU_COMPILE_MIN_STEPS)


class CompiledForward:
    """The compiled model, falling back to the eager one for good on the first compiler error."""

    def __init__(self, model: nn.Module, mode: str):
        self.model = model
        self.mode = mode
        self.compiled: Callable | None = torch.compile(model, mode=None if mode == "default" else mode)

    def __call__(self, *args: Any) -> Any:
        if self.compiled is None:
            return self.model(*args)
        if self.mode == "reduce-overhead":
            # A new step: the previous step's graph outputs may be overwritten from here on (the
            # loop keeps only the carry, which it passes back in as an input).
            torch.compiler.cudagraph_mark_step_begin()
        try:
            return self.compiled(*args)
        except (torch._dynamo.exc.TorchDynamoException, torch._inductor.exc.InductorError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            log(f"torch.compile failed ({first_line[:200]}); continuing without it")
            self.compiled = None
            return self.model(*args)


def compiled_forward(model: nn.Module, config: Any, device: torch.device, steps: int) -> Callable:
    """The callable the loop runs a segment with (`steps`: how many this run will train): the
    model itself, or a CompiledForward."""
    use = config.compile if config.compile is not None else compile_by_default(device, steps)
    if not use:
        return model
    stages = len(stage_fractions(config.arch))
    if stages + 1 > torch._dynamo.config.recompile_limit:
        # A depth schedule compiles one graph per stage (dynamo guards on the depth); past the
        # limit dynamo would silently run the later stages eagerly.
        torch._dynamo.config.recompile_limit = stages + 1
    mode = config.compile_mode
    if mode == "reduce-overhead" and device.type != "cuda":
        log(f"compile_mode reduce-overhead uses CUDA graphs, which need CUDA: compiling in the default mode on {device.type}")
        mode = "default"
    return CompiledForward(model, mode)
