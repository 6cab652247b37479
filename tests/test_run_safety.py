"""Run-folder safety (issue 22, section 5): one writer per run, resume from any folder, a damaged
newest checkpoint set aside, and a damaged dataset named as such."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, assert_one_line_error, run_hrm, wait_for_lines
from sudoku4_data import write_sudoku4
from hrm.models.checkpoints import list_checkpoints, load_checkpoint
from hrm.train.loop import train
from tests.train_helpers import TINY, tiny

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_sudoku4(tmp_path_factory.mktemp("safety") / "s4", train_size=200, test_size=40, blanks=6)


def _snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}


def test_a_second_writer_is_refused_while_the_first_lives_and_resumes_after_it_dies(data, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "hrm", "train", "--data", str(data), "--out", str(run), "--quiet",
            *TINY, "epochs=2000", "max_steps=100000", "checkpoint_interval=2"]
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(run / "metrics.jsonl", 4, first, timeout=120)
        assert first.poll() is None, first.communicate()[1]
        first.send_signal(signal.SIGSTOP)  # hold still: the run folder must not change under the checks
        before = _snapshot(run)
        resumed = run_hrm("train", "--resume", run, "max_steps=5000")
        assert_one_line_error(resumed, str(run), f"pid {first.pid}", "hrm train --data")
        assert resumed.returncode == 1
        forced = run_hrm("train", "--data", data, "--out", run, "--force", *TINY)
        assert_one_line_error(forced, f"pid {first.pid}")
        assert _snapshot(run) == before  # neither touched anything
        # readers take no lock
        assert run_hrm("show", run, "--json").returncode == 0
        assert run_hrm("compare", run, "--json").returncode == 0
    finally:
        first.kill()  # SIGKILL: no handler runs, only the OS releases the lock
        first.communicate(timeout=60)
    stopped = load_checkpoint(run)["step"]
    result = run_hrm("train", "--resume", run, f"max_steps={stopped + 2}", "--json", check=True)
    assert json.loads(result.stdout)["step"] == stopped + 2


def test_the_lock_is_taken_once_per_process_and_released_after_training(data, tmp_path):
    """In process: train() twice on one run (a resume) works, and after it returns another
    process may write the run."""
    run = tmp_path / "run"
    train(tiny(data, "max_steps=2"), run)
    from hrm.train.config import resume_config
    train(resume_config(run, ["max_steps=3"]), run, resume=True)
    assert run_hrm("train", "--resume", run, "max_steps=4", "--json", check=True).returncode == 0


def test_resume_works_from_any_folder_and_names_data_when_the_dataset_moved(data, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(data, work / "data" / "s4")
    run_hrm("train", "--data", "data/s4", "--out", "runs/a", *TINY, "max_steps=2", "--quiet", check=True, cwd=work)
    run = work / "runs" / "a"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_hrm("train", "--resume", run, "max_steps=3", "--quiet", check=True, cwd=elsewhere)
    (work / "data" / "s4").rename(work / "moved")
    lost = run_hrm("train", "--resume", run, "max_steps=4", cwd=elsewhere)
    assert_one_line_error(lost, str(work / "data" / "s4"), "does not exist", "--data DIR")
    run_hrm("train", "--resume", run, "--data", "../work/moved", "max_steps=4", "--quiet", check=True, cwd=elsewhere)
    assert load_checkpoint(run)["step"] == 4
    # the new place is recorded (absolute): the next resume needs no --data
    run_hrm("train", "--resume", run, "max_steps=5", "--quiet", check=True, cwd=tmp_path)
    assert load_checkpoint(run)["step"] == 5


def test_a_truncated_newest_checkpoint_is_set_aside_with_its_eval_result(data, tmp_path):
    run = tmp_path / "run"
    train(tiny(data, "max_steps=6", "checkpoint_interval=3", "keep_checkpoints=2"), run)
    assert [s for s, _ in list_checkpoints(run)] == [3, 6] and (run / "eval" / "step_6.json").is_file()
    latest = run / "checkpoints" / "step_6.pt"
    latest.write_bytes(latest.read_bytes()[:1000])  # a full disk cut the write short
    result = run_hrm("train", "--resume", run, "max_steps=5", "--json", check=True)
    assert "moved it aside" in result.stderr and "step_6.pt.damaged" in result.stderr
    assert not (run / "eval" / "step_6.json").exists()  # the result of the step that is trained again
    assert (run / "eval" / "step_5.json").is_file()
    # it no longer counts: keep_checkpoints=2 keeps the two good ones (before: 5 and the damaged 6)
    assert [s for s, _ in list_checkpoints(run)] == [3, 5]
    assert (run / "checkpoints" / "step_6.pt.damaged").is_file()


def _damage(dataset: Path) -> None:
    shard = dataset / "train" / "all" / "inputs" / "c" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 3: len(raw) // 3 + 40] = b"\x55" * 40
    shard.write_bytes(bytes(raw))


def test_a_damaged_dataset_is_named_in_one_line_and_leaves_no_run(data, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    _damage(bad)
    damage = ("is damaged", "train/all/inputs chunk 0", "train/all/inputs/c/0/0", "checksum", "rebuild")
    assert_one_line_error(run_hrm("train", "--data", bad, "--out", tmp_path / "run", *TINY, "max_steps=2", "--quiet"), *damage)
    assert not (tmp_path / "run").exists()  # no run folder without a checkpoint
    assert_one_line_error(run_hrm("show", bad, "--split", "train", "--index", "3"), *damage)
    verified = run_hrm("inspect", bad, "--verify")
    assert_one_line_error(verified, "1 of", "chunks do not read back", "train/all/inputs chunk 0", "rebuild")
    assert verified.returncode == 1
    intact = run_hrm("inspect", data, "--verify", check=True)
    assert "verified: all" in intact.stdout and "intact" in intact.stdout


def test_verify_reads_every_chunk_and_names_a_missing_shard(tmp_path):
    """Against a brute-force count: a dataset with several chunks and shards per array."""
    from hrm.builders import dataset as dataset_module
    from hrm.builders.inspect import verify_dataset

    old = dataset_module._CHUNK_BYTES, dataset_module._CHUNKS_PER_SHARD
    dataset_module._CHUNK_BYTES, dataset_module._CHUNKS_PER_SHARD = 16 * 8, 2  # 8 rows a chunk, 16 a shard
    try:
        path = write_sudoku4(tmp_path / "s", train_size=40, test_size=8, blanks=6)
    finally:
        dataset_module._CHUNK_BYTES, dataset_module._CHUNKS_PER_SHARD = old
    report = verify_dataset(path)
    assert report["damaged"] == []
    import zarr
    root = zarr.open_group(path, mode="r")
    expected, arrays = 0, 0

    def walk(group):
        nonlocal expected, arrays
        for _, member in group.members():
            if isinstance(member, zarr.Group):
                walk(member)
            else:
                arrays += 1
                expected += -(-member.shape[0] // member.chunks[0])
    walk(root)
    assert (report["chunks"], report["arrays"]) == (expected, arrays)
    (path / "train" / "all" / "labels" / "c" / "1" / "0").unlink()  # rows 16-31: zarr would read zeros
    _damage(path)
    found = verify_dataset(path)["damaged"]
    assert any("train/all/labels file train/all/labels/c/1/0 is missing" in d for d in found), found
    assert any(d.startswith("train/all/inputs chunk ") and "checksum" in d for d in found), found


def test_damage_in_a_dataset_without_checksums_is_named_too(tmp_path):
    """Datasets written before the CRC32C codec: zstd's own failure, named the same way."""
    import numpy as np
    import zarr
    from zarr.codecs import ZstdCodec

    from hrm.builders.dataset import DatasetDamaged, checked_read

    root = zarr.open_group(tmp_path / "old", mode="w-", zarr_format=3)
    rows = np.random.default_rng(0).integers(0, 6, (4096, 16), dtype=np.uint8)
    array = root.create_array("inputs", shape=rows.shape, dtype=np.uint8, chunks=(1024, 16), shards=(2048, 16),
                              compressors=ZstdCodec(level=5))
    array[:] = rows
    assert np.array_equal(checked_read(array, 1000, 3000), rows[1000:3000])
    shard = tmp_path / "old" / "inputs" / "c" / "1" / "0"  # rows 2048-4095: chunks 2 and 3
    raw = bytearray(shard.read_bytes())
    raw[0:40] = b"\x55" * 40  # chunk 2 (the shard's first) from its zstd frame header: without a
    # checksum, damage inside the compressed data may decode silently, which is why new datasets have one
    shard.write_bytes(bytes(raw))
    assert np.array_equal(checked_read(array, 0, 2048), rows[:2048])  # other shards still read
    with pytest.raises(DatasetDamaged) as error:
        checked_read(array, 1000, 4096)
    message = str(error.value)
    assert "inputs chunk 2 (rows 2048-3071, file inputs/c/1/0) does not decode" in message, message
    assert "rebuild" in message and "\n" not in message
    # evaluation's reader of chosen rows (subsets, scoring) names it the same way
    from hrm.eval.batches import read_rows
    assert np.array_equal(read_rows(array, np.array([5, 2000])), rows[[5, 2000]])
    with pytest.raises(DatasetDamaged, match="inputs chunk 2 .*does not decode"):
        read_rows(array, np.array([5, 2500]))
