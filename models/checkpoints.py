"""Reading checkpoints: where a run keeps them and how one loads safely.

Everything in a checkpoint is a tensor or a plain container of primitives, so it loads with
`torch.load(weights_only=True)` (checkpoints travel; unpickling arbitrary objects would run
code). Writing them, and the training state they carry, is train/checkpoint.py's.
"""
from __future__ import annotations

import errno
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from hrm.common import HrmError


FORMAT = "hrm-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d+)\.pt$")


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"step_{step}.pt"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint of a run, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def resolve_checkpoint(where: str | os.PathLike) -> Path:
    """A .pt file, or a run folder (-> its latest checkpoint)."""
    where = Path(where)
    if where.is_dir():
        latest = latest_checkpoint(where)
        if latest is None:
            raise HrmError(f"{where} holds no checkpoints (expected {checkpoint_dir(where)}/step_N.pt)")
        return latest
    if not where.is_file():
        raise HrmError(f"checkpoint {where} does not exist")
    return where


def load_error_reason(error: BaseException) -> str:
    """Why torch.load(weights_only=True) refused a file, in a few words. torch's own message for
    a file holding other objects advises retrying with weights_only=False, i.e. unpickling it,
    which runs whatever code the file carries: never passed on (checkpoints travel). A file cut
    short or not written by torch at all fails deeper down, with messages that say neither (an
    EOFError, zip's "central directory", the first byte taken as a pickle opcode: `KeyError: '101'`,
    "Unsupported operand 110"): those are named for what they are."""
    text = str(error).strip()
    not_torch = "truncated, or not a file torch.save wrote (neither its zip archive nor its pickle)"
    if isinstance(error, EOFError):
        return "empty or truncated file"
    if "central directory" in text or (isinstance(error, OSError) and error.errno == errno.EINVAL):
        return "truncated or damaged file (its zip archive is incomplete)"
    if "not a ZIP archive" in text or "Invalid magic number" in text or isinstance(error, (KeyError, IndexError)):
        return not_torch
    if "Weights only load failed" in text or isinstance(error, pickle.UnpicklingError):
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0] if "WeightsUnpickler error:" in text else ""
        detail = detail.split(". ")[0].rstrip(".")  # torch goes on to say how to allow-list it
        if detail.startswith("Unsupported operand"):  # the first byte is no pickle opcode torch writes
            return not_torch
        return ("not a weights-only file" + (f": {detail}" if detail else "")
                + "; hrm loads tensors and plain values only and never unpickles other objects")
    if not text or not any(char.isalpha() for char in text):
        return f"{not_torch} ({type(error).__name__}{': ' + text if text else ''})"
    first = text.splitlines()[0]
    return first.split(". ")[0].rstrip(".")  # torch appends paragraphs of speculation


def torch_load_weights(path: Path, what: str = "a loadable checkpoint") -> Any:
    """torch.load with weights_only=True (no code runs), its errors as one-line HrmErrors."""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise for a bad file
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged or foreign files
        raise HrmError(f"{path}: not {what}: {load_error_reason(error)}") from None


def load_checkpoint(where: str | os.PathLike) -> dict[str, Any]:
    path = resolve_checkpoint(where)
    state = torch_load_weights(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise HrmError(f"{path} is not an hrm checkpoint")
    if state.get("version") != VERSION:
        raise HrmError(f"{path} has checkpoint version {state.get('version')}; this hrm reads {VERSION}")
    state["path"] = str(path)
    return state
