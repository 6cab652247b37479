"""Training config: YAML file + dotted key=value overrides, types, unknown keys, saved config."""
from __future__ import annotations

import pytest
import yaml

from hrm.common import HrmError
from conftest import assert_one_line_error, run_hrm
from hrm.train.config import TrainConfig, load_config, save_config


def test_defaults_are_the_reference_recipe():
    cfg = load_config()
    assert (cfg.global_batch_size, cfg.lr, cfg.lr_warmup_steps, cfg.beta1, cfg.beta2) == (768, 1e-4, 2000, 0.9, 0.95)
    assert (cfg.weight_decay, cfg.puzzle_emb_lr, cfg.puzzle_emb_weight_decay, cfg.lr_min_ratio) == (0.1, 1e-2, 0.1, 1.0)
    arch = cfg.arch
    assert (arch["H_cycles"], arch["L_cycles"], arch["H_layers"], arch["L_layers"]) == (2, 2, 4, 4)
    assert (arch["hidden_size"], arch["num_heads"], arch["halt_max_steps"]) == (512, 8, 16)
    assert arch["puzzle_emb_ndim"] == 512  # follows hidden_size, as the reference's ${.hidden_size}
    # the rest of arch/hrm_v1.yaml + cfg_pretrain.yaml, as published
    assert (arch["expansion"], arch["halt_exploration_prob"], arch["rope_theta"], arch["rms_norm_eps"]) == (
        4.0, 0.1, 10000.0, 1e-5)
    assert (arch["pos_encodings"], arch["forward_dtype"], arch["loss_type"]) == (
        "rope", "bfloat16", "stablemax_cross_entropy")


def test_file_then_overrides_with_yaml_scalars(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-4\nepochs: 20000\narch:\n  hidden_size: 128\n  L_cycles: 4\n")
    cfg = load_config(path, ["arch.L_cycles=8", "lr=7e-5", "compile=false", "max_steps=10",
                             "arch.pos_encodings=learned", "logger=null"])
    assert cfg.lr == pytest.approx(7e-5) and isinstance(cfg.lr, float)  # "7e-5": a float, not YAML 1.1's string
    assert cfg.epochs == 20000 and cfg.max_steps == 10 and cfg.compile is False and cfg.logger is None
    assert cfg.arch["L_cycles"] == 8 and cfg.arch["hidden_size"] == 128
    assert cfg.arch["pos_encodings"] == "learned"
    assert cfg.arch["puzzle_emb_ndim"] == 128
    assert cfg.arch["H_cycles"] == 2  # untouched keys keep the defaults


@pytest.mark.parametrize("override,fragment", [
    ("learning_rate=1", "'learning_rate'"),
    ("arch.foo.bar=1", "'arch.foo.bar'"),
    ("lr=fast", "'lr' expects float"),
    ("epochs=1.5", "'epochs' expects int"),
    ("compile=maybe", "'compile' expects bool"),
    ("global_batch_size=0", "must be positive"),
    ("logger=mlflow", "wandb or tensorboard"),
    ("lr", "key=value"),
])
def test_bad_keys_and_values_are_user_errors(override, fragment):
    with pytest.raises(HrmError, match=None) as error:
        load_config(None, [override])
    assert fragment in str(error.value)


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1.0e-4\nwarmup: 5\n")
    with pytest.raises(HrmError) as error:
        load_config(path)
    assert "'warmup'" in str(error.value) and str(path) in str(error.value)
    path.write_text("- a\n- b\n")
    with pytest.raises(HrmError, match="mapping"):
        load_config(path)


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["arch.L_cycles=3", "lr=2e-4", "max_steps=7"])
    save_config(cfg, tmp_path / "config.yaml")
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert data["lr"] == 2e-4 and data["arch"]["L_cycles"] == 3 and data["max_steps"] == 7
    assert load_config(tmp_path / "config.yaml") == cfg
    assert set(data) == set(TrainConfig().to_dict())


def test_cli_unknown_override_is_one_line(tmp_path):
    result = run_hrm("train", "--data", tmp_path, "--out", tmp_path / "run", "arch_L_cycles=8")
    assert_one_line_error(result, "'arch_L_cycles'")
    assert not (tmp_path / "run").exists()


def test_a_missing_logger_is_a_clear_error_not_an_import_error(tmp_path):
    import importlib.util

    from hrm.train.metrics import check_logger
    check_logger(None)  # no logger: nothing is imported
    for name in ("wandb", "tensorboard"):
        if importlib.util.find_spec(name) is None:
            with pytest.raises(HrmError, match=f"pip install {name}"):
                check_logger(name)
