"""Scoring on a dataset built from the real ARC-AGI-1 evaluation set by `hrm build-data arc`.

The expected answers come straight from the Kaggle solutions file, pushed into each version's
frame by the test's own forward transforms, so the builder's descriptors, the inverse mapping
and the voting are all checked against the source data."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hrm.builders.dataset import open_dataset
from tests.conftest import run_hrm
from tests.eval_helpers import arc_canvas, arc_version, write_table


@pytest.fixture(scope="module")
def real_eval(tmp_path_factory, shared_arc):
    root = tmp_path_factory.mktemp("real_arc")
    run_hrm("build-data", "arc", "--out", root / "arc", "--input", shared_arc, "--subsets", "evaluation",
            "--test-set", "evaluation", "--aug", "3", "--quiet", check=True)
    solutions = json.loads((shared_arc / "arc-agi_evaluation_solutions.json").read_text())
    return root, solutions


def _table(root, solutions, right_version) -> tuple[list, int]:
    """Predictions for every test example: the true output in the version's frame when
    `right_version(is_identity)` holds, else a wrong grid."""
    dataset = open_dataset(root / "arc")
    puzzle_set = dataset.split("test").set("all")
    names = dataset.identifiers()
    dihedral, maps = puzzle_set.field("aug_dihedral"), puzzle_set.field("aug_colour_map")
    indices, labels = puzzle_set.puzzle_indices, puzzle_set.labels[:]
    rows, mismatched = [], 0
    for p, identifier in enumerate(puzzle_set.puzzle_identifiers):
        task = str(names[identifier]).split("_t")[0]
        identity = int(dihedral[p]) == 0 and (maps[p] == np.arange(10)).all()
        for pair, row in enumerate(range(indices[p], indices[p + 1])):
            truth = np.array(solutions[task][pair], np.uint8)
            expected = arc_canvas(arc_version(truth, int(dihedral[p]), maps[p]))
            mismatched += not np.array_equal(expected, labels[row])
            answer = truth if right_version(identity) else (truth + 1) % 10
            rows.append((row, arc_canvas(arc_version(answer, int(dihedral[p]), maps[p])), 0.0))
    return rows, mismatched


def test_real_arc_only_transformed_versions_right(real_eval, tmp_path):
    root, solutions = real_eval
    rows, mismatched = _table(root, solutions, lambda identity: not identity)
    assert mismatched == 0  # the builder's labels are the solutions in each version's frame
    write_table(tmp_path / "p.parquet", rows, 900)
    result = run_hrm("eval", "--predictions", tmp_path / "p.parquet", "--data", root / "arc", "--vote", "2",
                     "--json", "--submission", tmp_path / "submission.json", check=True)
    summary = json.loads(result.stdout)
    assert summary["pass@1"] == summary["score"] == 1.0
    assert summary["groups"] == 400 and summary["test_inputs"] == sum(len(v) for v in solutions.values())
    assert summary["exact_accuracy"] == pytest.approx(3 / 4)
    submission = json.loads((tmp_path / "submission.json").read_text())
    assert sorted(submission) == sorted(solutions)
    for task, outputs in solutions.items():
        assert [a["attempt_1"] for a in submission[task]] == outputs
        assert all(a["attempt_2"] == [[(c + 1) % 10 for c in r] for r in out]
                   for a, out in zip(submission[task], outputs))


def test_real_arc_identity_right_is_second(real_eval, tmp_path):
    """Swapped: three versions agree on a wrong answer, the identity alone is right."""
    root, solutions = real_eval
    rows, _ = _table(root, solutions, lambda identity: identity)
    write_table(tmp_path / "p.parquet", rows, 900)
    summary = json.loads(run_hrm("eval", "--predictions", tmp_path / "p.parquet", "--data", root / "arc",
                                 "--vote", "2", "--json", check=True).stdout)
    assert summary["pass@1"] == 0.0 and summary["pass@2"] == summary["score"] == 1.0
