"""torch.compile sees one ACT segment (the model's forward) as a single graph: no graph break in
training mode (refill, exploration draws, the extra Q-target forward) nor in evaluation mode,
by dynamo's own report (torch._dynamo.explain). The injected variant shows the check can fail."""
from __future__ import annotations

import pytest
import torch

from hrm.models import layers
from hrm.models.registry import build_model

ARCH = dict(hidden_size=16, num_heads=2, H_layers=1, L_layers=1, halt_max_steps=3, puzzle_emb_ndim=16)

pytestmark = pytest.mark.usefixtures("single_thread")


def segment_report(training: bool):
    torch.manual_seed(0)
    model = build_model(ARCH, seq_len=16, vocab_size=6, num_puzzle_identifiers=5, batch_size=4).train(training)
    g = torch.Generator().manual_seed(0)
    batch = {"inputs": torch.randint(0, 6, (4, 16), generator=g, dtype=torch.int32),
             "labels": torch.randint(0, 6, (4, 16), generator=g),
             "puzzle_identifiers": torch.randint(0, 5, (4,), generator=g, dtype=torch.int32)}
    torch._dynamo.reset()
    return torch._dynamo.explain(model)(model.initial_carry(batch), batch)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_one_segment_compiles_to_one_graph(training):
    report = segment_report(training)
    assert report.graph_break_count == 0, [str(reason.reason) for reason in report.break_reasons]
    assert report.graph_count == 1


def test_a_host_read_in_the_segment_shows_as_a_graph_break(monkeypatch):
    real = layers.rms_norm

    def rms_norm(x, eps):
        if x.abs().max().item() > 1e6:  # a data-dependent branch: dynamo must break the graph here
            raise AssertionError("unreachable")
        return real(x, eps)
    monkeypatch.setattr(layers, "rms_norm", rms_norm)
    assert segment_report(training=False).graph_break_count > 0


def test_compile_defaults_cuda_always_cpu_for_long_runs_only():
    from hrm.train.compiled import CPU_COMPILE_MIN_STEPS, compile_by_default
    cpu, cuda, mps = (torch.device(d) for d in ("cpu", "cuda", "mps"))
    assert compile_by_default(cuda, 10)
    assert not compile_by_default(cpu, CPU_COMPILE_MIN_STEPS - 1) and compile_by_default(cpu, CPU_COMPILE_MIN_STEPS)
    assert not compile_by_default(mps, 10 ** 6)


class Config:
    def __init__(self, compile, compile_mode="default"):
        self.compile, self.compile_mode = compile, compile_mode
        self.arch = {"name": "hrm"}  # no depth schedule


def test_compile_option_and_cuda_graph_mode_fall_back_cleanly(monkeypatch, capsys):
    from hrm.train import compiled
    model = torch.nn.Linear(3, 2)
    cpu = torch.device("cpu")
    assert compiled.compiled_forward(model, Config(False), cpu, 10 ** 6) is model           # --no-compile
    assert compiled.compiled_forward(model, Config(None), cpu, 10) is model                 # short CPU run
    assert isinstance(compiled.compiled_forward(model, Config(True), cpu, 10), compiled.CompiledForward)
    # CUDA graphs need CUDA: on CPU the default mode, said once in the log.
    forward = compiled.compiled_forward(model, Config(True, "reduce-overhead"), cpu, 10)
    assert forward.mode == "default"
    assert "reduce-overhead" in capsys.readouterr().err

    def broken_compiler(*args, **kwargs):
        raise torch._inductor.exc.InductorError(RuntimeError("no C++ compiler found"), None)
    forward.compiled = broken_compiler
    x = torch.randn(4, 3)
    torch.testing.assert_close(forward(x), model(x))  # the eager result, and no exception
    assert forward.compiled is None and "no C++ compiler found" in capsys.readouterr().err

    def user_error(*args, **kwargs):  # not a compiler error: it must reach the caller
        raise ValueError("bad input")
    forward.compiled = user_error
    with pytest.raises(ValueError):
        forward(x)


@pytest.mark.parametrize("bptt", [2, "all"])
def test_a_deeper_gradient_compiles_to_one_graph_too(bptt, monkeypatch):
    monkeypatch.setitem(ARCH, "bptt", bptt)
    report = segment_report(True)
    assert report.graph_break_count == 0, [str(reason.reason) for reason in report.break_reasons]
    assert report.graph_count == 1


def test_a_depth_schedule_recompiles_once_per_new_stage_and_matches_eager():
    """The trainer switches stages by setting the shared config (HrmConfig.set_depth); dynamo
    guards on those values, so a new stage compiles once, a stage seen before reuses its graph."""
    from torch._dynamo.testing import CompileCounter

    torch.manual_seed(0)
    model = build_model(ARCH, seq_len=16, vocab_size=6, num_puzzle_identifiers=5, batch_size=4).train()
    g = torch.Generator().manual_seed(0)
    batch = {"inputs": torch.randint(0, 6, (4, 16), generator=g, dtype=torch.int32),
             "labels": torch.randint(0, 6, (4, 16), generator=g),
             "puzzle_identifiers": torch.randint(0, 5, (4,), generator=g, dtype=torch.int32)}
    torch._dynamo.reset()
    counter = CompileCounter()
    compiled = torch.compile(model, backend=counter)

    def logits(forward):
        torch.manual_seed(1)
        return forward(model.initial_carry(batch), batch)[1]["logits"]

    compiles = []
    for stage in [dict(bptt=1, H_cycles=2), dict(bptt="all", H_cycles=3), dict(bptt=1, H_cycles=2)]:
        model.config.set_depth(**stage)
        for _ in range(2):
            torch.testing.assert_close(logits(compiled), logits(model))
        compiles.append(counter.frame_count)
    assert compiles == [1, 2, 2]


def test_a_long_depth_schedule_may_keep_a_graph_per_stage(monkeypatch):
    from types import SimpleNamespace

    from hrm.train.compiled import CompiledForward, compiled_forward

    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 8)
    stages = [[i / 12, i + 1] for i in range(12)]
    model = build_model(ARCH, seq_len=16, vocab_size=6, num_puzzle_identifiers=5, batch_size=4)
    config = SimpleNamespace(compile=True, compile_mode="default", arch={**ARCH, "H_cycles": stages})
    assert isinstance(compiled_forward(model, config, torch.device("cpu"), steps=10), CompiledForward)
    assert torch._dynamo.config.recompile_limit >= 13
