"""The training configuration: reference key names, a YAML file plus `key=value` overrides.

    cfg = load_config("examples/sudoku_extreme_1k.yaml", ["arch.L_cycles=8", "lr=7e-5"])

Top-level keys keep the names of the reference code's config (global_batch_size, epochs,
eval_interval, lr, ...) so that published recipes carry over; `arch` is an open mapping whose keys
the model registry validates (issue 6 adds architectures with keys of their own). Values of
overrides are parsed as YAML scalars (`lr=7e-5` is a float, `compile=false` a bool). A key that
does not exist, a value of the wrong type or out of range is a usage error (exit 2) naming the
key, whether it comes from an override, a config file or a resumed run's config.yaml: the checks
run on the merged config, and a config file is a written-down command line. A file that is missing
or not YAML is bad input (exit 1), as is a checkpoint's config (`config_from_dict`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import yaml

from hrm.common import HrmError, UsageError, atomic_file
from hrm.common.outputs import OutputKind, check_output

LOGGERS = (None, "wandb", "tensorboard")


@dataclass
class TrainConfig:
    data_path: str = ""
    global_batch_size: int = 768
    epochs: int = 100000
    eval_interval: int = 10000          # in epochs, as the reference
    lr: float = 1e-4
    lr_min_ratio: float = 1.0
    lr_warmup_steps: int = 2000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    puzzle_emb_lr: float = 1e-2
    puzzle_emb_weight_decay: float = 0.1
    seed: int = 0
    max_steps: Optional[int] = None     # stop early (the lr schedule still spans `epochs`)
    device: str = "auto"
    compile: Optional[bool] = None      # None: on for CUDA only
    compile_mode: str = "default"       # torch.compile mode; "reduce-overhead" = CUDA graphs (CUDA only)
    eval_batch_size: Optional[int] = None  # None: global_batch_size
    checkpoint_interval: int = 0        # in steps; 0: at every evaluation (and at the end)
    keep_checkpoints: int = 3           # newest checkpoints kept; 0 keeps all
    log_interval: int = 10              # steps per metrics.jsonl line (one host sync each)
    logger: Optional[str] = None        # "wandb" | "tensorboard", only when installed
    loader_cache_mb: int = 2048         # decoded dataset blocks kept in memory by the loader
    ema: bool = False                   # keep an EMA of the weights; evaluate and export it
    ema_rate: float = 0.999             # EMA <- rate * EMA + (1 - rate) * weights, every step
    init_from: Optional[str] = None     # start from these weights (hrm checkpoint or reference
                                        # checkpoint); the arch comes from the checkpoint
    init_new_puzzle_emb: str = "mean"   # init_from onto new identifiers: their rows start at the
                                        # mean of the pretrained rows ("mean") or at zero ("zero")
    time_budget: Optional[float] = None  # wall-clock seconds for this `hrm train` process: stop
                                         # cleanly with a checkpoint when reached (Kaggle: 12 h)
    threads: Optional[int] = None       # CPU threads; None: 1 on a CPU (train/resources.py), 0: torch's default
    memory_check: bool = True           # refuse to start when the memory estimate exceeds what is available
    arch: dict[str, Any] = field(default_factory=lambda: arch_defaults("hrm"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# torch.compile's modes: "reduce-overhead" adds CUDA graphs (one launch per segment: for small
# batches, where launch overhead dominates); "max-autotune" also searches kernel configurations.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")

# Keys that may change when a run is resumed: they change neither the data order nor the math.
RESUMABLE_KEYS = {"max_steps", "device", "compile", "compile_mode", "checkpoint_interval", "keep_checkpoints",
                  "log_interval", "logger", "eval_batch_size", "loader_cache_mb", "data_path", "time_budget",
                  "threads", "memory_check"}

_HINTS = typing.get_type_hints(TrainConfig)


def _check_type(key: str, value: Any) -> Any:
    """Coerce `value` to the declared type of `key` or raise UsageError naming both."""
    hint = _HINTS[key]
    optional = typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint)
    base = next(t for t in typing.get_args(hint) if t is not type(None)) if optional else hint
    if value is None:
        if optional:
            return None
        raise UsageError(f"config key {key!r} may not be null")
    if base in (int, float) and isinstance(value, str):
        try:  # PyYAML (YAML 1.1) reads 1e-4 without a dot as a string
            value = float(value)
        except ValueError:
            pass
    if base is bool:
        if isinstance(value, bool):
            return value
    elif base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif base is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    raise UsageError(f"config key {key!r} expects {getattr(base, '__name__', base)}, got {value!r}")


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return text  # e.g. an unquoted path with a colon: keep it as a string


def _flatten(mapping: dict[str, Any], where: str) -> list[tuple[str, Any]]:
    """{"arch": {"L_cycles": 8}, "lr": 1e-4} -> [("arch.L_cycles", 8), ("lr", 1e-4)]."""
    items = []
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise UsageError(f"{where}: config keys must be strings, got {key!r}")
        if key == "arch" and isinstance(value, dict):
            items += [(f"arch.{k}", v) for k, v in value.items()]
        else:
            items.append((key, value))
    return items


def arch_defaults(name: str) -> dict[str, Any]:
    """Every arch key of architecture `name` with its default: the fields of its config class, the
    one place they are written (`models.hrm.HrmConfig` for "hrm": the reference's cfg_pretrain.yaml
    + arch/hrm_v1.yaml). HRM's puzzle_emb_ndim starts as None: it follows hidden_size, as the
    reference's `${.hidden_size}` does (resolved in `validate`)."""
    from hrm.models.registry import default_arch  # imports torch (the model classes): only here

    defaults = default_arch(name)
    if name == "hrm":
        defaults["puzzle_emb_ndim"] = None
    return defaults


def _set(values: dict[str, Any], key: str, value: Any, where: str, explicit: set[str]) -> None:
    if key.startswith("arch."):
        name = key[len("arch."):]
        if not name or "." in name:
            raise UsageError(f"{where}: unknown config key {key!r} (arch keys are one level deep)")
        if name == "name" and value != values["arch"].get("name"):
            # A different architecture starts from its own defaults, keeping the keys this file
            # or these overrides set that it also has (`arch.name=trm` on an HRM preset keeps the
            # preset's sizes), but not the previous architecture's defaults.
            try:
                fresh = arch_defaults(str(value))
            except HrmError as error:  # an unknown arch name
                raise UsageError(f"{where}: {error}") from None
            kept = {k: v for k, v in values["arch"].items() if k in explicit and k in fresh}
            values["arch"] = {**fresh, **kept}
        values["arch"][name] = value
        explicit.add(name)
        return
    if key not in _HINTS or key == "arch":
        known = ", ".join(k for k in _HINTS if k != "arch")
        raise UsageError(f"{where}: unknown config key {key!r} (known: {known}, arch.*)")
    values[key] = _check_type(key, value)


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise HrmError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise HrmError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HrmError(f"{path}: a config file must be a mapping of keys to values")
    return data


def parse_overrides(overrides: Iterable[str]) -> list[tuple[str, Any]]:
    pairs = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"override {item!r} is not of the form key=value (e.g. arch.L_cycles=8)")
        pairs.append((key.strip(), _parse_scalar(text)))
    return pairs


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = (),
                base: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults (or `base`, e.g. a resumed run's config) <- YAML file <- `key=value` overrides."""
    values = TrainConfig().to_dict() if base is None else {**base, "arch": dict(base.get("arch", {}))}
    explicit: set[str] = set(values["arch"]) if base is not None else set()  # arch keys set, not defaulted
    if path is not None:
        for key, value in _flatten(read_yaml(path), str(path)):
            _set(values, key, value, str(path), explicit)
    for key, value in parse_overrides(overrides):
        _set(values, key, value, "override", explicit)
    config = TrainConfig(**values)
    validate(config)
    check_arch(config.arch)
    return config


def validate(config: TrainConfig) -> None:
    positive = ["global_batch_size", "epochs", "eval_interval", "log_interval", "loader_cache_mb"]
    for key in positive:
        if getattr(config, key) <= 0:
            raise UsageError(f"config key {key!r} must be positive, got {getattr(config, key)}")
    for key in ["max_steps", "eval_batch_size"]:
        if getattr(config, key) is not None and getattr(config, key) <= 0:
            raise UsageError(f"config key {key!r} must be positive, got {getattr(config, key)}")
    for key in ["lr_warmup_steps", "checkpoint_interval", "keep_checkpoints", "lr", "puzzle_emb_lr", "threads"]:
        if (getattr(config, key) or 0) < 0:
            raise UsageError(f"config key {key!r} must not be negative, got {getattr(config, key)}")
    if config.init_new_puzzle_emb not in ("mean", "zero"):
        raise UsageError(f"config key 'init_new_puzzle_emb' must be mean or zero, got {config.init_new_puzzle_emb!r}")
    if config.time_budget is not None and config.time_budget <= 0:
        raise UsageError(f"config key 'time_budget' must be positive (seconds), got {config.time_budget}")
    if not 0.0 <= config.ema_rate <= 1.0:
        raise UsageError(f"config key 'ema_rate' must be in [0, 1], got {config.ema_rate}")
    if config.compile_mode not in COMPILE_MODES:
        raise UsageError(f"config key 'compile_mode' must be one of {', '.join(COMPILE_MODES)}, "
                         f"got {config.compile_mode!r}")
    if config.logger not in LOGGERS:
        raise UsageError(f"config key 'logger' must be wandb or tensorboard, got {config.logger!r}")
    if not isinstance(config.arch, dict) or "name" not in config.arch:
        raise UsageError("config key 'arch' must be a mapping with a 'name'")
    if config.arch.get("puzzle_emb_ndim", 0) is None and "hidden_size" in config.arch:
        config.arch["puzzle_emb_ndim"] = config.arch["hidden_size"]
    from hrm.models.registry import check_depth  # imports torch (the model classes): only here

    check_depth(config.arch)  # arch.bptt and depth schedules: a UsageError naming the key


def check_arch(arch: dict[str, Any]) -> None:
    """The arch keys and values the model registry accepts, checked when the config is read (a
    usage error, before a run folder or a model exists) rather than when the model is built."""
    from hrm.models.depth import final_arch
    from hrm.models.registry import ARCH_CONFIGS, check_depth, config_from_arch  # torch: loaded by arch_defaults

    name = arch.get("name", "hrm")
    if name not in ARCH_CONFIGS:
        raise UsageError(f"unknown arch name {name!r} (available: {', '.join(sorted(ARCH_CONFIGS))})")
    check_depth(arch)  # depth schedules first: their keys hold lists, which the config classes do not take
    try:  # the dataset's shapes are not known yet: any valid ones do (a schedule at its last stage)
        config_from_arch(ARCH_CONFIGS[name], final_arch(arch), seq_len=1, vocab_size=2, num_puzzle_identifiers=1,
                         batch_size=1)
    except HrmError as error:
        raise UsageError(str(error)) from None


def option_overrides(overrides: Iterable[str], options: dict[str, Any]) -> list[str]:
    """`overrides` plus `key=value` for each command-line option that sets a config key and was
    given (`--seed 3` is `seed=3`); a key set both ways is a usage error."""
    given = {item.partition("=")[0].strip() for item in overrides}
    extra = list(overrides)
    for key, value in options.items():
        if value is None:
            continue
        if key in given:
            option = "--" + key.replace("_", "-")
            raise UsageError(f"{option} and the override {key}= both set {key}: give one of them")
        extra.append(f"{key}={str(value).lower() if isinstance(value, bool) else value}")
    return extra


def save_config(config: TrainConfig, path: str | os.PathLike) -> None:
    """Write the resolved config (temp file + rename, like everything else in a run folder)."""
    with atomic_file(path) as tmp:
        tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def config_from_dict(values: dict[str, Any], where: str = "checkpoint") -> TrainConfig:
    """Rebuild a config saved by `to_dict` (checking keys, so that foreign files fail clearly)."""
    unknown = set(values) - set(_HINTS)
    if unknown:
        raise HrmError(f"{where}: unknown config key {sorted(unknown)[0]!r}")
    try:  # a file's content, not the command line: bad input
        config = TrainConfig(**{k: _check_type(k, v) if k != "arch" else dict(v) for k, v in values.items()})
        validate(config)
    except UsageError as error:
        raise HrmError(f"{where}: {error}") from None
    return config


def is_run_folder(path: Path) -> bool:
    """Whether `path` is a training run written by hrm (its config.yaml is one of ours)."""
    try:
        saved = yaml.safe_load((Path(path) / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(saved, dict) and "data_path" in saved and isinstance(saved.get("arch"), dict)


RUN_OUTPUT = OutputKind("a training run", directory=True, written_by_hrm=is_run_folder)


def check_new_run_folder(run_dir: str | os.PathLike, force: bool) -> None:
    """A new run never silently mixes with an old one's checkpoints and logs, and `--force`
    replaces only an old run (or an empty folder), never a folder of the user's."""
    run_dir = Path(run_dir)
    if not force and is_run_folder(run_dir):
        raise HrmError(f"{run_dir} already exists; continue it with `hrm train --resume {run_dir}` "
                       f"or pass --force to start over")
    check_output(run_dir, RUN_OUTPUT, force=force)


def resume_config(run_dir: Path, overrides: list[str], data: str | None = None) -> TrainConfig:
    """The saved config of a run, with the overrides that do not change the run's math."""
    config_file = Path(run_dir) / "config.yaml"
    if not config_file.is_file():
        raise HrmError(f"{run_dir} is not a training run (no config.yaml); start one with --out")
    saved = load_config(config_file)
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key not in RESUMABLE_KEYS:
            raise UsageError(f"cannot change {key!r} when resuming (allowed: {', '.join(sorted(RESUMABLE_KEYS))})")
    if data is None and not Path(saved.data_path).exists():
        raise HrmError(f"the dataset of {run_dir}, {saved.data_path}, does not exist (moved, or a relative "
                       f"path from another folder?); pass --data DIR to resume on it where it is now")
    extra = list(overrides) + ([f"data_path={os.path.abspath(data)}"] if data else [])
    return load_config(None, extra, base=saved.to_dict())
