"""Never a traceback from the storage (issue 22, section 5): a read-only target and a full disk
give one line naming the path (and, when full, the space needed and free), exit 1, and leave
nothing half-written; training keeps its previous checkpoint and says which one resume uses."""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
import torch

from hrm.common import StorageError
from conftest import assert_one_line_error, run_hrm
from sudoku4_data import write_sudoku4
from hrm.models.checkpoints import list_checkpoints, load_checkpoint
from hrm.train import checkpoint as checkpoint_module
from hrm.train.loop import train
from tests.train_helpers import TINY, tiny

pytestmark = pytest.mark.usefixtures("single_thread")

SMALL_BUILD = ["build-data", "sudoku", "--box", "2", "--blanks", "8", "--train-size", "500", "--test-size", "20",
               "--aug", "100", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_sudoku4(tmp_path_factory.mktemp("storage") / "s4", train_size=200, test_size=40, blanks=6)


@pytest.fixture
def tmpfs(tmp_path):
    """mount(name, size, read_only) -> a fresh tmpfs; skips the test where mounting is not
    permitted (it needs root, which the project's CI has)."""
    mounted: list[Path] = []

    def mount(name: str, size: str, read_only: bool = False) -> Path:
        point = tmp_path / name
        point.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        try:
            result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                                    capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            pytest.skip("no mount command")
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], capture_output=True, timeout=30)


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`hrm ARGS` through the CLI's entry point in this process: (exit code, stderr)."""
    from hrm.cli.app import main

    monkeypatch.setattr("sys.argv", ["hrm", *map(str, args)])
    with pytest.raises(SystemExit) as stop:
        main()
    return stop.value.code, capsys.readouterr().err


def test_a_read_only_folder_is_one_line_in_process(tmp_path, monkeypatch, capsys):
    """EROFS simulated where the writes start (works without root): build-data and a PNG."""
    real_mkdir = os.mkdir

    def read_only_mkdir(path, *args, **kwargs):
        if str(tmp_path / "ro") in os.fspath(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(os, "mkdir", read_only_mkdir)
    code, err = _main(monkeypatch, capsys, *SMALL_BUILD, "--out", tmp_path / "ro" / "d")
    assert code == 1 and err.strip() == f"error: cannot write {tmp_path / 'ro' / 'd'}: read-only file system", err
    assert list((tmp_path / "ro").iterdir()) == []


def test_read_only_targets_give_one_line_and_write_nothing(data, tmp_path, tmpfs):
    run = tmp_path / "run"
    train(tiny(data, "max_steps=2"), run)
    ro = tmpfs("ro", "1m", read_only=True)
    for args, target in [((*SMALL_BUILD, "--out", ro / "d"), ro / "d"),
                         (("train", "--data", data, "--out", ro / "run", *TINY, "max_steps=2", "--quiet"), ro / "run"),
                         (("eval", "--checkpoint", run, "--data", data, "--out", ro / "e", "--quiet"), ro / "e")]:
        result = run_hrm(*args)
        assert_one_line_error(result, f"cannot write {target}: read-only file system")
        assert result.returncode == 1
    assert list(ro.iterdir()) == []


def test_a_full_disk_during_a_build_names_the_output_and_leaves_nothing(tmpfs):
    small = tmpfs("small", "64k")
    result = run_hrm(*SMALL_BUILD, "--out", small / "d")
    assert_one_line_error(result, f"cannot write {small / 'd'}: no space left on device", "written", "free")
    assert result.returncode == 1
    assert list(small.iterdir()) == []


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one(data, tmpfs):
    """A real full disk: the first checkpoint fits, the second does not (torch's 'unexpected pos')."""
    size = 600 * 1024
    small = tmpfs("small", f"{size}")
    run = small / "run"
    result = run_hrm("train", "--data", data, "--out", run, *TINY, "max_steps=6", "checkpoint_interval=2", "--quiet")
    assert_one_line_error(result, f"cannot write {run / 'checkpoints' / 'step_4.pt'}: no space left on device",
                          "needs ~", "KiB free", f"hrm train --resume {run}", str(run / "checkpoints" / "step_2.pt"))
    assert result.returncode == 1
    assert [step for step, _ in list_checkpoints(run)] == [2]
    assert load_checkpoint(run)["step"] == 2  # intact
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]  # no partial file


def test_a_checkpoint_write_meeting_a_full_disk_in_process(data, tmp_path, monkeypatch):
    """ENOSPC simulated in torch.save (works without root): the second save fails."""
    real_save = torch.save
    saves = []

    def filling_save(obj, handle, *args, **kwargs):
        saves.append(obj["step"])
        if len(saves) == 2:
            handle.write(b"x" * 100)  # a partial write, as a full disk leaves
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 198336 vs 198224")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "save", filling_save)
    run = tmp_path / "run"
    with pytest.raises(StorageError) as error:
        train(tiny(data, "max_steps=6", "checkpoint_interval=2"), run)
    message = str(error.value)
    assert "\n" not in message and "step_4.pt: no space left on device" in message and "needs ~" in message
    assert f"continues from {run / 'checkpoints' / 'step_2.pt'}" in message
    assert [step for step, _ in list_checkpoints(run)] == [2] and load_checkpoint(run)["step"] == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_2.pt"]


def test_a_new_run_whose_first_checkpoint_meets_a_full_disk_is_removed(data, tmp_path, monkeypatch):
    def full(obj, handle, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module.torch, "save", full)
    with pytest.raises(StorageError, match="before its first checkpoint and its run folder was removed"):
        train(tiny(data, "max_steps=2"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
