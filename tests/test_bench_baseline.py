"""The benchmark's independent eager baseline (benchmarks/baseline_hrm.py) computes our training
step: equal weight changes over three float64 steps (learned positions without a puzzle
embedding, and RoPE with one), and a changed formula in the baseline is caught."""
from __future__ import annotations

import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import baseline_hrm  # noqa: E402
import bench_train  # noqa: E402

SMALL = ["device=cpu", "global_batch_size=16", "arch.hidden_size=32", "arch.num_heads=2", "arch.halt_max_steps=3"]

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return bench_train.write_data(tmp_path_factory.mktemp("bench") / "data", 9, 128, identifiers=8)


@pytest.mark.parametrize("arch", [["arch.pos_encodings=learned", "arch.puzzle_emb_ndim=0"],
                                  ["arch.pos_encodings=rope", "arch.puzzle_emb_ndim=32"]], ids=["learned", "rope+puzzle"])
def test_baseline_step_equals_ours(data, tmp_path, arch):
    worst = bench_train.check_same_maths(bench_train.EXAMPLES / "smoke.yaml", [f"data_path={data}", *SMALL, *arch],
                                         tmp_path)
    assert worst < 1e-9


def test_a_different_formula_in_the_baseline_is_caught(data, tmp_path, monkeypatch):
    monkeypatch.setattr(baseline_hrm, "rms_norm", lambda x, eps: x * (x.pow(2).mean(-1, keepdim=True) + 1e-3).rsqrt())
    with pytest.raises(SystemExit, match="differ"):
        bench_train.check_same_maths(bench_train.EXAMPLES / "smoke.yaml",
                                     [f"data_path={data}", *SMALL, "arch.puzzle_emb_ndim=0"], tmp_path)
