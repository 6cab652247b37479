"""The training/eval loader: reference sampling semantics, determinism, resume, rank slicing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hrm.common import HrmError
from hrm.builders.dataset import DatasetWriter, atomic_directory, open_dataset
from hrm.common.prefetch import Prefetcher
from hrm.train.data import BlockReader, TrainLoader, TrainSampler
from hrm.eval.batches import eval_batches
from hrm.common.distributed import DistInfo

SEQ = 8


def dist(rank: int = 0, world: int = 1) -> DistInfo:
    return DistInfo(rank=rank, world_size=world, local_rank=rank, device=torch.device("cpu"))


def encode_rows(rows: np.ndarray) -> np.ndarray:
    """Inputs that spell their own row number (3 base-256 digits), so reads can be checked."""
    out = np.zeros((len(rows), SEQ), np.uint8)
    for k in range(3):
        out[:, k] = (rows >> (8 * k)) & 255
    out[:, 3:] = 7
    return out


def decode_rows(inputs: np.ndarray) -> np.ndarray:
    inputs = inputs.astype(np.int64)
    return inputs[:, 0] + (inputs[:, 1] << 8) + (inputs[:, 2] << 16)


def make_structure(rng: np.random.Generator, groups: int):
    puzzles_per_group = rng.integers(1, 5, groups)
    examples_per_puzzle = rng.integers(1, 6, puzzles_per_group.sum())
    return puzzles_per_group, examples_per_puzzle


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    rng = np.random.default_rng(5)
    out = tmp_path_factory.mktemp("loader") / "data"
    with atomic_directory(out) as tmp:
        writer = DatasetWriter(tmp, task="sudoku", seed=0, builder={})
        for name, groups in [("train", 60), ("test", 13)]:
            ppg, epp = make_structure(rng, groups)
            ids = writer.add_identifiers([f"{name}{i}" for i in range(len(epp))])
            n = int(epp.sum())
            inputs = encode_rows(np.arange(n))
            labels = inputs.copy()
            labels[:, 7] = 0  # the ignore label
            labels[:, 6] = np.arange(n) % 3  # some positions ignored, some not
            split = writer.split(name, seq_len=SEQ, vocab_size=256, pad_id=0, ignore_label_id=0)
            split.set().append(inputs, labels, examples_per_puzzle=epp, puzzles_per_group=ppg,
                               puzzle_identifiers=ids)
        writer.close()
    return out


def reference_batches(sampler: TrainSampler, epochs: int, per_pass: int, batch: int):
    """The reference code's loop (one group at a time), over the sampler's per-epoch draws."""
    out = []
    for first in range(0, epochs, per_pass):
        plan = []  # (epoch, position, puzzle) in pass order
        for epoch in range(first, min(first + per_pass, epochs)):
            puzzles, _ = sampler._epoch_plan(epoch)
            plan += [(epoch, pos, int(p)) for pos, p in enumerate(puzzles)]
        index = 0
        while index < len(plan):
            rows, ids, size = [], [], 0
            while index < len(plan) and size < batch:
                epoch, pos, puzzle = plan[index]
                index += 1
                start, count = sampler.puzzle_start[puzzle], int(sampler.puzzle_size[puzzle])
                take = min(count, batch - size)
                if take == count:
                    rows += list(range(start, start + count))
                else:
                    rows += list(sampler._subset(epoch, pos, puzzle, take))
                ids += [puzzle] * take
                size += take
            if size < batch:
                break  # drop the last partial batch of the pass
            out.append((np.array(rows), np.array(ids)))
    return out


def all_batches(sampler: TrainSampler) -> list:
    batches = []
    while (b := sampler.next_batch()) is not None:
        batches.append(b)
    return batches


@pytest.mark.parametrize("batch,epochs,per_pass", [(7, 5, 1), (16, 6, 4), (32, 3, 3), (1, 2, 2), (100, 4, 2)])
def test_sampler_matches_reference_loop(dataset, batch, epochs, per_pass):
    pset = open_dataset(dataset).split("train").set()
    sampler = TrainSampler(pset.puzzle_indices, pset.group_indices, batch_size=batch, epochs=epochs,
                           epochs_per_pass=per_pass, seed=3)
    expected = reference_batches(sampler, epochs, per_pass, batch)
    got = all_batches(sampler)
    assert len(got) == len(expected) > 0
    for (rows, ids), (want_rows, want_ids) in zip(got, expected):
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_array_equal(ids, want_ids)


@pytest.mark.parametrize("sizes", ["varying", "per group", "constant"])
@pytest.mark.parametrize("batch,epochs,per_pass", [(7, 5, 1), (16, 6, 4), (32, 3, 3), (1, 2, 2), (100, 4, 2)])
def test_count_batches_is_the_number_of_batches_of_the_run(sizes, batch, epochs, per_pass):
    """The count the run announces, against the reference loop's batches: with sizes varying
    within a group, shared by a group's versions (ARC), and one size for all (sudoku, maze)."""
    rng = np.random.default_rng(batch + epochs)
    puzzles_per_group, examples = make_structure(rng, 40)
    group_of_puzzle = np.repeat(np.arange(40), puzzles_per_group)
    if sizes == "per group":
        examples = rng.integers(1, 6, 40)[group_of_puzzle]
    elif sizes == "constant":
        examples = np.full(len(examples), 3)
    make = lambda: TrainSampler(np.concatenate([[0], np.cumsum(examples)]),  # noqa: E731
                                np.concatenate([[0], np.cumsum(puzzles_per_group)]), batch_size=batch,
                                epochs=epochs, epochs_per_pass=per_pass, seed=1)
    expected = len(reference_batches(make(), epochs, per_pass, batch))
    sampler = make()
    assert sampler.count_batches() == expected > 0
    assert sampler.count_batches(limit=3) == min(3, expected)
    assert len(all_batches(sampler)) == expected  # counting did not move the sampler


def test_epoch_plan_is_a_shuffle_with_one_version_per_group(dataset):
    pset = open_dataset(dataset).split("train").set()
    gi = pset.group_indices
    sampler = TrainSampler(pset.puzzle_indices, gi, batch_size=4, epochs=400, epochs_per_pass=1, seed=0)
    group_of = np.repeat(np.arange(len(gi) - 1), np.diff(gi))
    counts = np.zeros(len(group_of))
    orders = set()
    for epoch in range(400):
        puzzles, _ = sampler._epoch_plan(epoch)
        groups = group_of[puzzles]
        assert sorted(groups) == list(range(len(gi) - 1))  # every group once per epoch
        orders.add(tuple(groups))
        counts[puzzles] += 1
    assert len(orders) == 400  # shuffled anew each epoch
    # Every version of a group is picked, about uniformly (400 draws per group).
    share = counts / 400 * np.diff(gi)[group_of]
    assert share.min() > 0.55 and share.max() < 1.6


def test_sampler_is_seeded_and_resumes_exactly(dataset):
    pset = open_dataset(dataset).split("train").set()
    make = lambda seed: TrainSampler(pset.puzzle_indices, pset.group_indices, batch_size=9, epochs=6,
                                     epochs_per_pass=2, seed=seed)
    full = all_batches(make(1))
    assert [r.tolist() for r, _ in full] == [r.tolist() for r, _ in all_batches(make(1))]
    assert [r.tolist() for r, _ in full] != [r.tolist() for r, _ in all_batches(make(2))]
    for k in [1, 5, len(full) - 1]:
        first = make(1)
        for _ in range(k):
            first.next_batch()
        resumed = make(1)
        resumed.load_state_dict(dict(first.state_dict()))
        rest = all_batches(resumed)
        assert [r.tolist() for r, _ in rest] == [r.tolist() for r, _ in full[k:]]


def test_batch_larger_than_a_pass_is_a_user_error(dataset):
    pset = open_dataset(dataset).split("train").set()
    with pytest.raises(HrmError, match="global_batch_size"):
        TrainSampler(pset.puzzle_indices, pset.group_indices, batch_size=10_000, epochs=3,
                     epochs_per_pass=1, seed=0)


@pytest.mark.parametrize("cache_bytes", [1 << 30, 1000])  # whole shards / chunk blocks with eviction
def test_loader_reads_the_sampled_rows_and_slices_ranks(dataset, cache_bytes):
    split = open_dataset(dataset).split("train")
    pset = split.set()
    kw = dict(global_batch_size=12, epochs=4, epochs_per_pass=2, seed=7, cache_bytes=cache_bytes)
    single = list(TrainLoader(split, dist=dist(), **kw).iterate())
    ranks = [list(TrainLoader(split, dist=dist(r, 3), **kw).iterate(prefetch=r == 1)) for r in range(3)]
    sampler = TrainSampler(pset.puzzle_indices, pset.group_indices, batch_size=12, epochs=4,
                           epochs_per_pass=2, seed=7)
    expected = all_batches(sampler)
    assert len(single) == len(expected) and all(len(r) == len(expected) for r in ranks)
    all_labels = pset.labels[:]
    for step, (rows, puzzles) in enumerate(expected):
        batch = single[step].batch
        np.testing.assert_array_equal(decode_rows(batch["inputs"]), rows)
        assert batch["inputs"].dtype == np.int32 and batch["labels"].dtype == np.int64
        want = all_labels[rows].astype(np.int64)
        want[want == 0] = -100
        np.testing.assert_array_equal(batch["labels"], want)
        np.testing.assert_array_equal(batch["puzzle_identifiers"], pset.puzzle_identifiers[puzzles])
        for r in range(3):  # rank r holds rows [4r, 4r+4) of the global batch
            for key in batch:
                np.testing.assert_array_equal(ranks[r][step].batch[key], batch[key][4 * r:4 * r + 4])
    # The position after the last batch resumes into "nothing left" (the partial tail is dropped).
    assert single[-1].sampler_state["batches"] == len(expected)
    sampler.load_state_dict(single[-1].sampler_state)
    assert sampler.next_batch() is None


def test_block_reader_small_budget_evicts_and_stays_correct(dataset):
    array = open_dataset(dataset).split("train").set().inputs
    reader = BlockReader(array, budget_bytes=3 * array.chunks[0] * SEQ)
    rng = np.random.default_rng(0)
    for _ in range(20):
        rows = rng.integers(0, array.shape[0], 17)
        np.testing.assert_array_equal(decode_rows(reader.take(rows)), rows)
    assert len(reader.blocks) <= reader.max_blocks


@pytest.mark.parametrize("world", [1, 2])
def test_eval_batches_cover_every_example_in_order_with_padding(dataset, world):
    split = open_dataset(dataset).split("test")
    pset = split.set()
    n = pset.num_examples
    batch_size = 10
    per_rank = [list(eval_batches(split, batch_size, dist(r, world))) for r in range(world)]
    # Oracle: identifier of each row by walking the puzzles.
    row_ids = np.concatenate([[pset.puzzle_identifiers[p]] * int(pset.puzzle_indices[p + 1] - pset.puzzle_indices[p])
                              for p in range(pset.num_puzzles)])
    seen = []
    assert len({len(b) for b in per_rank}) == 1 and len(per_rank[0]) == -(-n // batch_size)
    for step in range(len(per_rank[0])):
        for r in range(world):
            item = per_rank[r][step]
            assert len(item.rows) == batch_size // world
            valid = item.mask
            expected_rows = np.arange(step * batch_size + r * batch_size // world,
                                      step * batch_size + (r + 1) * batch_size // world)
            np.testing.assert_array_equal(item.rows[valid], expected_rows[expected_rows < n])
            np.testing.assert_array_equal(decode_rows(item.batch["inputs"][valid]), item.rows[valid])
            np.testing.assert_array_equal(item.batch["puzzle_identifiers"][valid], row_ids[item.rows[valid]])
            assert (item.batch["inputs"][~valid] == 0).all() and (item.batch["labels"][~valid] == -100).all()
            assert (item.batch["puzzle_identifiers"][~valid] == 0).all()
            seen += item.rows[valid].tolist()
    assert seen == list(range(n))


def test_prefetcher_reraises_errors_in_the_consumer():
    def items():
        yield 1
        raise ValueError("broken shard")

    prefetcher = Prefetcher(items())
    assert next(prefetcher) == 1
    with pytest.raises(ValueError, match="broken shard"):
        next(prefetcher)
    prefetcher.close()
