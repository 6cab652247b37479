"""The training options of issue 13 (arch.init_std, arch.path_noise, arch.damping): the damped
update is the stated formula, the noise is training-only and drawn per global slot, and with all
three on a two-process run is the one-process run and resumes exactly."""
from __future__ import annotations

import pytest
import torch

from test_train_dist import CONFIG, assert_same_run, resume_from_step_3, segment_on_each_slice, torchrun
from hrm.common import HrmError
from hrm.train.config import load_config, resume_config
from hrm.train.loop import train
from tests.test_model import random_batch, tiny_model

pytestmark = pytest.mark.usefixtures("single_thread")
OPTIONS = ["arch.init_std=0.5", "arch.path_noise=0.05", "arch.damping=0.9"]


def _random_states(inner: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, object]:
    """Two random float64 states of the carry's shape, the input embedding and the rotary tables."""
    shape = (batch["inputs"].shape[0], inner.config.seq_len + inner.config.puzzle_emb_len, inner.config.hidden_size)
    first, second = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    with torch.no_grad():
        return first, second, inner.input_embeddings(batch["inputs"], batch["puzzle_identifiers"]), inner.rotary()


def test_damping_is_the_stated_update():
    """z <- (1 - lambda) z + lambda f(z) for each of the low and the high update."""
    model = tiny_model(H_cycles=1, L_cycles=1, damping=0.25).eval()
    inner = model.inner
    batch = random_batch(1)
    z_high, z_low, x, cos_sin = _random_states(inner, batch)
    with torch.no_grad():
        low = 0.75 * z_low + 0.25 * inner.L_level(z_low, z_high + x, cos_sin)
        high = 0.75 * z_high + 0.25 * inner.H_level(z_high, low, cos_sin)
        got_high, got_low, *_ = inner(z_high, z_low, batch)
    torch.testing.assert_close(got_low, low, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_high, high, rtol=1e-12, atol=1e-12)


def test_training_noise_is_off_by_default_and_in_evaluation():
    batch = random_batch(2)
    plain = tiny_model()
    noisy = tiny_model(init_std=0.5, path_noise=0.1)
    noisy.load_state_dict(plain.state_dict())
    outputs = {}
    for name, model, mode in [("plain", plain, "eval"), ("noisy", noisy, "eval"), ("noisy_train", noisy, "train")]:
        model.train(mode == "train")
        torch.manual_seed(5)
        carry, out = model(model.initial_carry(batch), batch)
        outputs[name] = out["logits"]
    assert torch.equal(outputs["plain"], outputs["noisy"])
    assert not torch.allclose(outputs["plain"], outputs["noisy_train"])


def test_noise_draws_do_not_depend_on_how_the_batch_is_split():
    """Slots [4, 8) of a global batch of 8 get the noise slots 4..7 of one process get."""
    runs = segment_on_each_slice(
        lambda: tiny_model(init_std=0.5, path_noise=0.1, damping=0.8, halt_exploration_prob=0.0).train(),
        random_batch(0, size=8), seed=321)
    states = {key: carry.z_high for key, (carry, _) in runs.items()}
    torch.testing.assert_close(torch.cat([states[0, 2], states[1, 2]]), states[0, 1], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("override, fragment", [("init_std=-1", "arch.init_std"), ("path_noise=-0.1", "arch.path_noise"),
                                                ("damping=0", "arch.damping"), ("damping=1.5", "arch.damping")])
def test_bad_training_option_is_one_clear_error(override, fragment):
    key, value = override.split("=")
    with pytest.raises(HrmError, match=fragment):
        tiny_model(**{key: float(value)})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from sudoku4_data import write_sudoku4

    return write_sudoku4(tmp_path_factory.mktemp("noise") / "s4", train_size=48, test_size=16, blanks=6,
                         identifiers=6)


def test_two_processes_with_noise_train_and_resume_the_run_of_one(data, tmp_path):
    one = tmp_path / "one"
    torch.set_num_threads(1)
    train(load_config(None, [*CONFIG, *OPTIONS, f"data_path={data}"]), one)
    two = tmp_path / "two"
    torchrun(2, "--data", str(data), "--out", str(two), *CONFIG, *OPTIONS)
    for step in (3, 6):
        assert_same_run(one, two, step)
    resumed = resume_from_step_3(two, tmp_path / "resumed")  # two processes' checkpoint, one process on
    train(resume_config(resumed, []), resumed, resume=True)
    assert_same_run(one, resumed, 6)
    plain = tmp_path / "plain"  # the options change the run (they are not silently ignored)
    train(load_config(None, [*CONFIG, f"data_path={data}"]), plain)
    with pytest.raises(AssertionError):
        assert_same_run(one, plain, 6)


def test_trm_updates_are_damped_too():
    """TRM with T = n = 1: latent <- damped f(latent, answer + x), answer <- damped f(answer, latent)."""
    from tests.test_model_trm import TINY_TRM

    model = tiny_model(**{**TINY_TRM, "H_cycles": 1, "L_cycles": 1, "damping": 0.5}).eval()
    inner = model.inner
    batch = random_batch(3)
    answer, latent, x, cos_sin = _random_states(inner, batch)
    with torch.no_grad():
        new_latent = 0.5 * latent + 0.5 * inner.L_level(latent, answer + x, cos_sin)
        new_answer = 0.5 * answer + 0.5 * inner.L_level(answer, new_latent, cos_sin)
        got_answer, got_latent, *_ = inner(answer, latent, batch)
    torch.testing.assert_close(got_latent, new_latent, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_answer, new_answer, rtol=1e-12, atol=1e-12)
