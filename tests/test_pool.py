"""The vote-pool curve (`hrm eval --pool`): against a brute-force count over every pool of every
item, on hand-made ARC tasks whose answers (right and wrong, agreeing across versions) are made
in the original frame and mapped into each version's frame by the tests' own forward transforms."""
from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict

import numpy as np
import pytest

from hrm.builders.dataset import open_dataset
from hrm.eval.pool import PoolVotes, pool_curve
from hrm.eval.predictions import predictions_dataset_signature
from tests.conftest import assert_one_line_error, run_hrm
from tests.eval_helpers import arc_canvas, arc_version, random_arc_tasks, write_arc_dataset, write_table


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _ranked(votes: list[tuple[int, float]], ranker: str) -> list[int]:
    """Answers (ids) of one pool, best first: votes = count, ties by mean sigmoid(q); max_q = the
    highest q of a vote, ties by count. (Random q: no further ties.)"""
    by_answer: dict[int, list[float]] = defaultdict(list)
    for answer, q in votes:
        by_answer[answer].append(q)
    if ranker == "votes":
        score = {a: (len(qs), sum(map(_sigmoid, qs)) / len(qs)) for a, qs in by_answer.items()}
    else:
        score = {a: (max(qs), len(qs)) for a, qs in by_answer.items()}
    return sorted(score, key=lambda a: score[a], reverse=True)


def _brute_force(answers: dict, q: dict, num_versions: int, size: int, k: int, ranker: str) -> float:
    """Per key (task, pair): the fraction of all N-subsets of its versions whose vote has the
    truth (answer id 0) in its top k; the mean over a task's keys, then over tasks."""
    per_task: dict[int, list[float]] = defaultdict(list)
    for (task, pair), by_version in answers.items():
        pools = list(itertools.combinations(range(num_versions), min(size, num_versions)))
        solved = 0
        for pool in pools:
            votes = [(a, q[task, pair, v, c]) for v in pool for c, a in enumerate(by_version[v]) if a is not None]
            solved += 0 in _ranked(votes, ranker)[:k]
        per_task[task].append(solved / len(pools))
    return float(np.mean([np.mean(values) for values in per_task.values()]))


@pytest.fixture(scope="module")
def pooled_arc(tmp_path_factory):
    """4 tasks x 5 versions, 1-2 test pairs; each version predicts (2 candidates) the truth or one
    of two wrong grids, or an invalid canvas (no vote)."""
    rng = np.random.default_rng(3)
    tasks = random_arc_tasks(rng, num_tasks=4, versions=5)
    root = tmp_path_factory.mktemp("pool")
    write_arc_dataset(root / "arc", tasks)
    rows, answers, q, row = [], {}, {}, 0
    for t, task in enumerate(tasks):
        for v, (transform_id, colour_map) in enumerate(task.versions):
            for p, truth in enumerate(task.test_outputs):
                wrong = [(truth + 1 + i) % 10 for i in range(2)]
                for c in range(2):
                    choice = int(rng.choice(4, p=[0.4, 0.25, 0.25, 0.1]))
                    logit = float(rng.normal())
                    if choice == 3:  # not a grid: no vote
                        tokens = np.zeros(900, np.uint8)  # all padding: an empty grid
                        answer = None
                    else:
                        grid = truth if choice == 0 else wrong[choice - 1]
                        tokens = arc_canvas(arc_version(grid, transform_id, colour_map))
                        answer = choice
                    rows.append((row, tokens, logit))
                    answers.setdefault((t, p), [[] for _ in task.versions])[v].append(answer)
                    q[t, p, v, c] = logit
                row += 1
    signature = predictions_dataset_signature(open_dataset(root / "arc"))
    write_table(root / "preds.parquet", rows, 900, signature=signature)
    return root, answers, q


@pytest.mark.parametrize("ranker", ["votes", "max_q"])
def test_pool_curve_equals_brute_force_over_all_pools(pooled_arc, tmp_path, ranker):
    root, answers, q = pooled_arc
    result = run_hrm("eval", "--predictions", root / "preds.parquet", "--data", root / "arc", "--pool", "1,2,3,5,9",
                     "--rank", ranker, "--json", "--out", tmp_path / "out", check=True)
    summary = json.loads(result.stdout)
    curve = summary["accuracy_by_pool"]
    assert list(curve) == ["1", "2", "3", "5", "9"]
    for size in (1, 2, 3, 5, 9):
        assert curve[str(size)]["exact"]  # C(5, N) <= 16 pools: all of them
        for k in (1, 2):
            assert curve[str(size)][f"pass@{k}"] == pytest.approx(_brute_force(answers, q, 5, size, k, ranker), abs=1e-12)
    # A pool of all versions is the full vote.
    assert curve["9"]["pass@1"] == pytest.approx(summary["pass@1"]) and curve["5"]["pass@2"] == pytest.approx(summary["pass@2"])
    assert summary["protocol"]["pool"] == {"sizes": [1, 2, 3, 5, 9], "draws": 16, "seed": 0}
    png = (tmp_path / "out" / "pool.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["accuracy_by_pool"] == curve
    table = run_hrm("eval", "--predictions", root / "preds.parquet", "--data", root / "arc", "--pool", "2",
                    "--rank", ranker, check=True).stdout
    assert "vote pool" in table and f"{curve['2']['pass@1']:7.2%}" in table


def _random_votes(seed: int, keys: int, versions: int) -> PoolVotes:
    rng = np.random.default_rng(seed)
    key = np.repeat(np.arange(keys), versions)
    answer = rng.integers(0, 3, size=len(key)).astype(np.uint64)
    return PoolVotes(key=key, version=np.arange(len(key)), ok=np.ones(len(key), bool), answer=answer,
                     q_halt=rng.normal(size=len(key)), residual=np.full(len(key), np.nan), right=answer == 0)


def test_sampled_pools_are_seeded():
    votes = _random_votes(0, keys=12, versions=8)
    kwargs = dict(key_group=np.arange(12), chosen_groups=np.ones(12, bool), draws=4)
    first = pool_curve(votes, [3], [1, 2], seed=5, **kwargs)
    assert first["3"]["exact"] is False  # C(8, 3) = 56 > 4 draws
    assert pool_curve(votes, [3], [1, 2], seed=5, **kwargs) == first
    assert any(pool_curve(votes, [3], [1, 2], seed=s, **kwargs) != first for s in range(6, 12))
    # The draw for one N does not depend on the other sizes asked for.
    assert pool_curve(votes, [2, 3, 4], [1, 2], seed=5, **kwargs)["3"] == first["3"]
    # Unchosen groups (a --max-items subset) are left out of the mean.
    chosen = np.zeros(12, bool)
    chosen[:3] = True
    every_pool = pool_curve(votes, [1], [1], key_group=np.arange(12), chosen_groups=chosen, draws=16)
    expected = np.mean([np.mean(votes.right[votes.key == k]) for k in range(3)])  # N=1: the share of right versions
    assert every_pool["1"]["pass@1"] == pytest.approx(expected)


@pytest.mark.parametrize("value", ["0", "two", "1,,2"])
def test_bad_pool_sizes_are_usage_errors(pooled_arc, value):
    root, _, _ = pooled_arc
    result = run_hrm("eval", "--predictions", root / "preds.parquet", "--data", root / "arc", "--pool", value)
    assert result.returncode == 2
    assert_one_line_error(result, "--pool")


@pytest.mark.parametrize("task, build", [("sudoku", "--test-aug K"), ("arc", "--aug K")])
def test_pool_on_one_version_per_puzzle_says_how_to_build_versions(tmp_path, task, build):
    """A split of one version per puzzle has nothing to pool: one line naming the build option."""
    from tests.eval_helpers import write_grid_dataset

    if task == "arc":
        write_arc_dataset(tmp_path / "data", random_arc_tasks(np.random.default_rng(2), num_tasks=3, versions=1))
        seq_len = 900
    else:
        grids = np.random.default_rng(0).integers(1, 10, size=(4, 81)).astype(np.uint8)
        write_grid_dataset(tmp_path / "data", "sudoku", grids, grids)
        seq_len = 81
    rows = [(row, np.zeros(seq_len, np.uint8), 0.0) for row in range(3)]
    write_table(tmp_path / "p.parquet", rows, seq_len,
                signature=predictions_dataset_signature(open_dataset(tmp_path / "data")))
    result = run_hrm("eval", "--predictions", tmp_path / "p.parquet", "--data", tmp_path / "data", "--pool", "1,2",
                     "--out", tmp_path / "out")
    assert result.returncode == 1
    assert_one_line_error(result, "--pool", "one version per puzzle", f"hrm build-data {task}", build)
    assert not (tmp_path / "out").exists()
