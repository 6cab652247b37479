"""ARC scoring: inverse mapping, voting, pass@K, tie-break by q_halt, Kaggle submission.

The predictions are built in the original frame and pushed into each version's frame with the
independent forward code of tests/eval_helpers.py; the expected scores come from a plain Python
vote over the answers the test put in."""
from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np
import pytest

from hrm.augment.colour import inverse_colour_map
from hrm.augment.dihedral import inverse_dihedral
from hrm.augment.arc import arc_grid_from_tokens
from hrm.eval.inverse import arc_answers
from hrm.builders.dataset import open_dataset
from hrm.eval.run import evaluate
from hrm.eval.score import Scorer
from tests.conftest import run_hrm
from tests.eval_helpers import arc_canvas, arc_version, random_arc_tasks, write_arc_dataset, write_table


def _wrong(grid: np.ndarray, salt: int) -> np.ndarray:
    """A different grid: one cell recoloured (and sometimes another shape)."""
    out = np.array(grid, copy=True)
    out[0, 0] = (out[0, 0] + 1 + salt % 9) % 10
    return out if salt % 2 == 0 else np.vstack([out, out[:1]])


def _predictions(tasks, choose):
    """Rows of a predictions table. `choose(task_index, version_index, pair, truth)` returns
    (original-frame answer grid or None for an empty canvas, q_halt)."""
    rows, answers, row = [], defaultdict(list), 0
    for t, task in enumerate(tasks):
        for v, (transform_id, colour_map) in enumerate(task.versions):
            for pair, truth in enumerate(task.test_outputs):
                answer, q_halt = choose(t, v, pair, truth)
                tokens = (np.zeros(900, np.uint8) if answer is None
                          else arc_canvas(arc_version(answer, transform_id, colour_map)))
                rows.append((row, tokens, q_halt))
                if answer is not None:
                    answers[(task.name, pair)].append((answer.tobytes() + bytes(answer.shape), q_halt))
                row += 1
    return rows, answers


def _oracle(tasks, answers, ks):
    """Task-averaged pass@K by a plain Counter vote (ties by mean sigmoid(q_halt))."""
    scores = {k: 0.0 for k in ks}
    for task in tasks:
        for k in ks:
            solved = 0
            for pair, truth in enumerate(task.test_outputs):
                votes = defaultdict(list)
                for key, q_halt in answers[(task.name, pair)]:
                    votes[key].append(1 / (1 + math.exp(-q_halt)))
                ranked = sorted(votes, key=lambda a: (-len(votes[a]), -np.mean(votes[a])))
                solved += (truth.tobytes() + bytes(truth.shape)) in ranked[:k]
            scores[k] += solved / len(task.test_outputs) / len(tasks)
    return scores


@pytest.fixture(scope="module")
def arc_data(tmp_path_factory):
    rng = np.random.default_rng(3)
    tasks = random_arc_tasks(rng, num_tasks=6, versions=5)
    path = tmp_path_factory.mktemp("arc") / "arc"
    write_arc_dataset(path, tasks)
    return path, tasks


def hand_canvas(rows: list[str]) -> np.ndarray:
    """A hand-written token canvas: one string per row, tokens separated by spaces."""
    return np.array([[int(t) for t in row.split()] for row in rows], np.uint8).ravel()


# SPEC 6's crop, by hand: (canvas, the colours 0-9 of the expected grid). Tokens: 0 pad, 1 end
# marker, c + 2 colour c; anything else is not a colour (a model may predict it).
HAND_CROPS = [
    # a 2x3 grid with its markers
    (["2 3 4 1 0", "5 6 7 1 0", "1 1 1 0 0", "0 0 0 0 0", "0 0 0 0 0"], [[0, 1, 2], [3, 4, 5]]),
    # ragged rows: the width shrinks to 4, then 2; three rows of width 2 (area 6) beat 1x4
    (["2 2 2 2 1", "3 3 1 0 0", "4 4 4 4 4", "1 1 1 1 1", "0 0 0 0 0"], [[0, 0], [1, 1], [2, 2]]),
    # a tie (1x3 = 3x1) keeps the first, the wider
    (["2 3 4 1 0", "5 1 0 0 0", "6 0 0 0 0", "1 0 0 0 0", "0 0 0 0 0"], [[0, 1, 2]]),
    # no marker at all: the whole canvas
    (["11 10 9 8 7", "6 5 4 3 2", "2 2 2 2 2", "3 3 3 3 3", "4 4 4 4 4"],
     [[9, 8, 7, 6, 5], [4, 3, 2, 1, 0], [0] * 5, [1] * 5, [2] * 5]),
    # a token above the colours (12) ends a row like a marker
    (["2 3 12 4 4", "5 6 7 8 9", "1 1 1 1 1", "0 0 0 0 0", "0 0 0 0 0"], [[0, 1], [3, 4]]),
    # a canvas that starts with a marker has no grid
    (["1 2 3 4 5", "2 2 2 2 2", "2 2 2 2 2", "2 2 2 2 2", "2 2 2 2 2"], []),
]


def test_crop_of_hand_made_canvases():
    tokens = np.stack([hand_canvas(rows) for rows, _ in HAND_CROPS])
    identity_colours = np.tile(np.arange(10, dtype=np.uint8), (len(tokens), 1))
    answers = arc_answers(tokens, np.zeros(len(tokens), np.uint8), identity_colours)
    for n, (_, expected) in enumerate(HAND_CROPS):
        expected = np.array(expected, np.int64) if expected else np.zeros((0, 0), np.int64)
        assert np.array_equal(arc_grid_from_tokens(tokens[n]), expected), n
        assert answers.ok[n] == (expected.size > 0), n
        if expected.size:
            assert np.array_equal(answers.grid(n), expected), n


def test_kernel_matches_reference_crop_dihedral_and_colours():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 12, size=(400, 900)).astype(np.uint8)
    # mostly-colour canvases with a few junk tokens, so that crops are large and varied
    tokens[:200] = rng.integers(2, 12, size=(200, 900))
    junk = rng.random((200, 900)) < 0.01
    tokens[:200][junk] = rng.integers(0, 2, size=junk.sum())
    tokens[200:300] = np.stack([arc_canvas(rng.integers(0, 10, size=rng.integers(1, 31, size=2))) for _ in range(100)])
    dihedral = rng.integers(0, 8, size=400).astype(np.uint8)
    maps = np.stack([np.concatenate([[0], rng.permutation(9) + 1]) for _ in range(400)]).astype(np.uint8)
    answers = arc_answers(tokens, dihedral, np.stack([inverse_colour_map(m) for m in maps]))
    for n in range(400):
        expected = inverse_colour_map(maps[n])[inverse_dihedral(arc_grid_from_tokens(tokens[n]), int(dihedral[n]))]
        assert np.array_equal(answers.grid(n), expected), n
        assert answers.ok[n] == (expected.size > 0)
    # equal hashes exactly for equal grids
    grids = {}
    for n in range(400):
        grids.setdefault(int(answers.hashes[n]), set()).add(answers.grid(n).tobytes() + bytes(answers.grid(n).shape))
    assert all(len(v) == 1 for v in grids.values())
    assert len(grids) == len({answers.grid(n).tobytes() + bytes(answers.grid(n).shape) for n in range(400)})


def test_every_version_inverts_to_its_original(arc_data):
    """All versions predicting the truth (each in its own frame) -> everything perfect."""
    path, tasks = arc_data
    rows, _ = _predictions(tasks, lambda t, v, pair, truth: (truth, 0.0))
    write_table(path.parent / "all_right.parquet", rows, 900)
    summary = evaluate([], path, predictions=[path.parent / "all_right.parquet"], vote_k=2)
    assert summary["exact_accuracy"] == 1.0 and summary["token_accuracy"] == 1.0
    assert summary["pass@1"] == summary["score"] == 1.0
    # every version of every test pair lands on the same original-frame answer
    scorer = Scorer(open_dataset(path))
    scorer.add_table(path.parent / "all_right.parquet")
    votes = scorer.result().votes
    assert len(votes.key) == scorer.num_keys == sum(len(t.test_outputs) for t in tasks)
    assert (votes.count == len(tasks[0].versions)).all()
    assert {v[0] for t in tasks for v in t.versions} == set(range(8))


def test_only_transformed_versions_right_is_perfect_at_pass1(arc_data):
    path, tasks = arc_data
    rows, answers = _predictions(tasks, lambda t, v, pair, truth: (truth if v else _wrong(truth, 0), 0.0))
    write_table(path.parent / "nonidentity.parquet", rows, 900)
    summary = evaluate([], path, predictions=[path.parent / "nonidentity.parquet"], vote_k=2)
    assert summary["pass@1"] == summary["pass@2"] == summary["score"] == 1.0
    # 4 of the 5 versions of every task carry the right answer
    assert summary["exact_accuracy"] == pytest.approx(4 / 5)
    assert summary["pass@5"] == 1.0 and "pass@10" not in summary  # only 5 votes per input


def test_swapped_versions_give_the_expected_partial_scores(arc_data):
    path, tasks = arc_data

    def choose(t, v, pair, truth):
        if t % 3 == 0:   # identity right, the 4 others agree on one wrong answer: solved at 2 only
            return (truth if v == 0 else _wrong(truth, 1)), 0.0
        if t % 3 == 1:   # identity right, the others 4 distinct wrong answers with higher q_halt
            return (truth if v == 0 else _wrong(truth, 2 * v)), (-1.0 if v == 0 else 1.0)
        return (truth if v != 2 else _wrong(truth, 3)), 0.0   # majority right

    rows, answers = _predictions(tasks, choose)
    write_table(path.parent / "swapped.parquet", rows, 900)
    summary = evaluate([], path, predictions=[path.parent / "swapped.parquet"], vote_k=2)
    expected = _oracle(tasks, answers, [1, 2, 5])
    # by hand: tasks 0, 3 solved at 2; tasks 1, 4 only at 5; tasks 2, 5 at 1
    assert expected == pytest.approx({1: 2 / 6, 2: 4 / 6, 5: 1.0})
    for k in (1, 2, 5):
        assert summary[f"pass@{k}"] == pytest.approx(expected[k])
    assert summary["score"] == pytest.approx(4 / 6)


def test_ties_are_broken_by_mean_sigmoid_q_halt(arc_data):
    path, tasks = arc_data
    for right_first in (True, False):
        def choose(t, v, pair, truth):
            # versions 0-1 vote for the truth, 2-3 for a wrong answer, version 4 has an empty canvas
            if v == 4:
                return None, 5.0
            confident = (v < 2) == right_first
            return (truth if v < 2 else _wrong(truth, 4)), (2.0 if confident else -2.0)

        rows, answers = _predictions(tasks, choose)
        table = path.parent / f"tie_{right_first}.parquet"
        write_table(table, rows, 900)
        summary = evaluate([], path, predictions=[table], vote_k=2)
        assert summary["pass@1"] == (1.0 if right_first else 0.0)
        assert summary["pass@2"] == 1.0
        assert summary["pass@1"] == pytest.approx(_oracle(tasks, answers, [1])[1])


def test_submission_lists_every_task_and_pair_with_valid_grids(arc_data, tmp_path):
    path, tasks = arc_data

    def choose(t, v, pair, truth):
        if t == 0 and pair == 0:
            return None, 0.0            # no valid answer at all -> [[0]]
        if t == 1:
            return truth, 0.0           # one distinct answer -> both attempts
        return (truth if v < 3 else _wrong(truth, 5)), 0.0

    rows, _ = _predictions(tasks, choose)
    write_table(tmp_path / "p.parquet", rows, 900)
    result = run_hrm("eval", "--predictions", tmp_path / "p.parquet", "--data", path,
                     "--submission", tmp_path / "sub.json", "--json", check=True)
    summary = json.loads(result.stdout)
    assert "no valid answer" in result.stderr
    submission = json.loads((tmp_path / "sub.json").read_text())
    assert sorted(submission) == sorted(task.name for task in tasks)
    for t, task in enumerate(tasks):
        assert len(submission[task.name]) == len(task.test_outputs)
        for pair, (attempts, truth) in enumerate(zip(submission[task.name], task.test_outputs)):
            assert sorted(attempts) == ["attempt_1", "attempt_2"]
            for grid in attempts.values():
                assert len(grid) >= 1 and len({len(row) for row in grid}) == 1 and len(grid[0]) >= 1
                assert all(isinstance(c, int) and 0 <= c <= 9 for row in grid for c in row)
            if t == 0 and pair == 0:
                assert attempts == {"attempt_1": [[0]], "attempt_2": [[0]]}
            elif t == 1:
                assert attempts["attempt_1"] == attempts["attempt_2"] == truth.tolist()
            else:
                assert attempts["attempt_1"] == truth.tolist()
                assert attempts["attempt_2"] == _wrong(truth, 5).tolist()
    task0_pairs = len(tasks[0].test_outputs)
    expected_score = ((task0_pairs - 1) / task0_pairs + len(tasks) - 1) / len(tasks)
    assert summary["score"] == pytest.approx(expected_score)


def test_ensembled_tables_vote_together(arc_data, tmp_path):
    """Two tables each with a minority of right answers: together the truth wins."""
    path, tasks = arc_data
    # each table: the truth 2 votes, its own wrong answer 3 votes
    rows_a, _ = _predictions(tasks, lambda t, v, pair, truth: (truth if v < 2 else _wrong(truth, 6), 0.0))
    rows_b, _ = _predictions(tasks, lambda t, v, pair, truth: (truth if v >= 3 else _wrong(truth, 7), 0.0))
    write_table(tmp_path / "a.parquet", rows_a, 900)
    write_table(tmp_path / "b.parquet", rows_b, 900)
    alone = evaluate([], path, predictions=[tmp_path / "a.parquet"], vote_k=1)
    together = evaluate([], path, predictions=[tmp_path / "a.parquet", tmp_path / "b.parquet"], vote_k=1)
    assert alone["pass@1"] == 0.0
    assert together["pass@1"] == 1.0 and together["predictions"] == 2 * alone["predictions"]
    assert [s["exact_accuracy"] for s in together["sources"]] == pytest.approx([2 / 5, 2 / 5])
    assert together["exact_accuracy"] == pytest.approx(2 / 5)
