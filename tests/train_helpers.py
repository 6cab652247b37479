"""The tiny training config the loop tests share (test_train.py, test_train_startup.py)."""
from __future__ import annotations

from pathlib import Path

from hrm.train.config import TrainConfig, load_config

# A model small enough for ~50 steps/s on one core; two passes (epochs) of 12 batches each.
TINY = ["global_batch_size=16", "epochs=3", "eval_interval=1", "arch.hidden_size=16", "arch.num_heads=2",
        "arch.H_layers=1", "arch.L_layers=1", "arch.halt_max_steps=3", "arch.puzzle_emb_ndim=16",
        "log_interval=1", "eval_batch_size=32", "lr=1e-3", "lr_warmup_steps=2", "lr_min_ratio=0.5",
        "device=cpu", "keep_checkpoints=0", "compile=false"]  # eager: long CPU runs compile by default


def tiny(data: Path, *extra: str) -> TrainConfig:
    """TINY on the dataset `data`, with `extra` overrides."""
    return load_config(None, [*TINY, f"data_path={data}", *extra])
