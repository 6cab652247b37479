"""ARC inputs: layouts and --input forms, validation errors (one line, nothing written),
duplicate ids, the test-set leak check, the packaged copy."""
from __future__ import annotations

import json
import lzma
import shutil
from pathlib import Path

import numpy as np
import pytest

import hrm.common.json_input as json_input
from hrm.builders.arc_checks import check_tasks
from hrm.builders.arc_io import packaged_data, read_inputs
from hrm.common import HrmError
from tests.conftest import REPO, assert_one_line_error, run_hrm

FIXTURES = REPO / "tests" / "fixtures" / "arc"
ALL = ["training", "evaluation", "concept"]


def _names(tasks):
    return [(t.subset, t.name) for t in tasks]


def test_input_forms_find_the_same_tasks(tmp_path):
    expected = _names(read_inputs([str(FIXTURES / "kaggle")], ALL))
    assert len(expected) == 7
    assert _names(read_inputs([str(FIXTURES / "kaggle" / "fx")], ALL)) == expected  # Kaggle prefix
    assert _names(read_inputs([str(FIXTURES / "tasks")], ALL)) == expected  # subset folders
    split_up = [str(FIXTURES / "tasks" / "training"), str(FIXTURES / "tasks" / "evaluation"),
                f"concept={FIXTURES / 'tasks' / 'concept'}"]  # a subset folder itself, NAME=PATH
    assert _names(read_inputs(split_up, ALL)) == expected
    for path in (FIXTURES / "kaggle").iterdir():  # xz-compressed Kaggle files
        (tmp_path / (path.name + ".xz")).write_bytes(lzma.compress(path.read_bytes()))
    assert _names(read_inputs([str(tmp_path)], ALL)) == expected
    pairs = read_inputs([str(tmp_path)], ["evaluation"])[0].pairs()
    assert all(a.dtype == np.uint8 and b.dtype == np.uint8 for a, b in pairs)


def test_subset_choice_and_its_errors():
    assert {t.subset for t in read_inputs([str(FIXTURES / "kaggle")], ["concept"])} == {"concept"}
    with pytest.raises(HrmError, match="training2 not found.*--subsets"):
        read_inputs([str(FIXTURES / "kaggle")], ["training", "training2"])
    with pytest.raises(HrmError, match="no such folder"):
        read_inputs([str(FIXTURES / "nowhere")], ALL)


def _kaggle_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    shutil.copytree(FIXTURES / "kaggle", folder)
    return folder


def _edit_task(folder: Path, subset: str, edit) -> None:
    path = folder / f"fx_{subset}_challenges.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _assert_fails_cleanly(tmp_path, folder, *fragments, extra=()):
    result = run_hrm("build-data", "arc", "--out", tmp_path / "out", "--input", folder, "--aug", "2", *extra)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*")), "nothing written"


def test_truncated_json(tmp_path):
    folder = _kaggle_copy(tmp_path)
    path = folder / "fx_evaluation_challenges.json"
    path.write_text(path.read_text()[:200])
    _assert_fails_cleanly(tmp_path, folder, "fx_evaluation_challenges.json", "truncated JSON")


def test_grid_of_31x31(tmp_path):
    folder = _kaggle_copy(tmp_path)
    _edit_task(folder, "training", lambda d: d["t_shapes"]["train"][1].update(input=[[1] * 31] * 31))
    _assert_fails_cleanly(tmp_path, folder, "fx_training_challenges.json", "task t_shapes", "train pair 1 input",
                          "31x31")


def test_colour_10_and_ragged_rows(tmp_path):
    folder = _kaggle_copy(tmp_path)
    _edit_task(folder, "concept", lambda d: d["Shapes2"]["test"][0].update(input=[[0, 10], [1, 2]]))
    _assert_fails_cleanly(tmp_path, folder, "task Shapes2", "test pair 0 input", "colour 10")
    _edit_task(folder, "concept", lambda d: d["Shapes2"]["test"][0].update(input=[[0, 1], [1]]))
    _assert_fails_cleanly(tmp_path, folder, "task Shapes2", "not a rectangular grid")


def test_missing_solutions_file(tmp_path):
    folder = _kaggle_copy(tmp_path)
    (folder / "fx_concept_solutions.json").unlink()
    _assert_fails_cleanly(tmp_path, folder, "fx_concept_challenges.json", "missing solutions file",
                          "fx_concept_solutions.json")


def test_test_pair_without_solution_fails_or_is_skipped(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(FIXTURES / "tasks", folder)
    path = folder / "evaluation" / "e_one.json"
    task = json.loads(path.read_text())
    del task["test"][0]["output"]
    path.write_text(json.dumps(task))
    _assert_fails_cleanly(tmp_path, folder, "e_one.json", "task e_one", "test pair 0", "no solution",
                          "--skip-invalid")
    result = run_hrm("build-data", "arc", "--out", tmp_path / "out", "--input", folder, "--aug", "2",
                     "--skip-invalid", "--json", check=True)
    assert json.loads(result.stdout)["tasks"] == 6 and "skipped" in result.stderr and "e_one" in result.stderr


def test_oversized_json_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(json_input, "MAX_JSON_BYTES", 1000)
    with pytest.raises(HrmError, match="fx_training_challenges.json.*too large"):
        read_inputs([str(FIXTURES / "kaggle")], ["training"])
    (tmp_path / "fx_training_challenges.json.xz").write_bytes(
        lzma.compress((FIXTURES / "kaggle" / "fx_training_challenges.json").read_bytes()))
    with pytest.raises(HrmError, match="too large once decompressed"):
        json_input.read_json(tmp_path / "fx_training_challenges.json.xz")


def test_duplicate_ids_dropped_when_equal_renamed_when_different(tmp_path, capsys):
    other = tmp_path / "other" / "training"
    other.mkdir(parents=True)
    shutil.copy(FIXTURES / "tasks" / "training" / "t_shapes.json", other)  # same pairs
    changed = json.loads((FIXTURES / "tasks" / "training" / "t_wide.json").read_text())
    changed["train"] = changed["train"][:1]
    (other / "t_wide.json").write_text(json.dumps(changed))
    tasks = read_inputs([str(FIXTURES / "tasks"), str(tmp_path / "other")], ALL)
    kept, report = check_tasks(tasks, "evaluation")
    assert "2 task ids appear more than once" in capsys.readouterr().err
    names = [t.name for t in kept]
    assert names.count("t_shapes") == 1 and "t_wide" in names and len(names) == len(set(names)) == 8
    assert report.dropped_duplicates == ["t_shapes (training)"] and list(report.renamed) == ["t_wide.training"]


def _leak_folder(tmp_path: Path, transform) -> Path:
    """The fixtures plus a training task holding a (transformed) copy of evaluation task e_rot,
    with its first test pair moved among the train pairs as ARC-AGI-2 training does."""
    folder = tmp_path / "in"
    shutil.copytree(FIXTURES / "tasks", folder)
    task = json.loads((folder / "evaluation" / "e_rot.json").read_text())
    pairs = [{key: transform(np.array(grid)).tolist() for key, grid in pair.items()}
             for pair in task["train"] + task["test"]]
    (folder / "training" / "copy.json").write_text(json.dumps({"train": pairs[:4], "test": pairs[4:]}))
    return folder


@pytest.mark.parametrize("transform", [lambda g: g, lambda g: np.rot90(np.array([0, 3, 2, 1, 9, 8, 7, 6, 5, 4])[g])],
                         ids=["verbatim", "rotated-recoloured"])
def test_a_copy_of_a_test_task_in_training_is_refused(tmp_path, transform):
    _assert_fails_cleanly(tmp_path, _leak_folder(tmp_path, transform), "test-set leak", "evaluation task e_rot",
                          "training task copy")


def test_a_lone_shared_pair_is_only_a_warning(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(FIXTURES / "tasks", folder)
    test_pair = json.loads((folder / "evaluation" / "e_rot.json").read_text())["test"][1]
    path = folder / "training" / "t_shapes.json"
    task = json.loads(path.read_text())
    task["train"].append(test_pair)
    path.write_text(json.dumps(task))
    result = run_hrm("build-data", "arc", "--out", tmp_path / "out", "--input", folder, "--aug", "1", check=True)
    assert "e_rot:1 in t_shapes" in result.stderr


def test_test_set_must_be_a_subset(tmp_path):
    result = run_hrm("build-data", "arc", "--out", tmp_path / "out", "--input", FIXTURES / "kaggle",
                     "--subsets", "training", "concept", "--test-set", "evaluation")
    assert_one_line_error(result, "--test-set evaluation", "--subsets")


def test_packaged_copy_holds_arc1_arc2_and_conceptarc():
    with packaged_data() as folder:
        counts = {s: len(read_inputs([str(folder / "arc-agi")], [s]))
                  for s in ("training", "evaluation", "concept", "training2", "evaluation2")}
        notices = (folder / "README.md").read_text()
        assert "Apache License" in (folder / "LICENSE-Apache-2.0.txt").read_text()
    assert counts == {"training": 400, "evaluation": 400, "concept": 160, "training2": 1000, "evaluation2": 120}
    assert "Copyright (c) 2024 Victor Vikram Odouard" in notices and "Apache License" in notices


def test_options_take_several_values_as_documented(tmp_path):
    from hrm.cli.options import expand_multi_value_options

    names = {"--input", "--subsets"}
    assert expand_multi_value_options(["--input", "a", "b", "--aug", "3", "--subsets=x", "y"], names) == \
        ["--input", "a", "--input", "b", "--aug", "3", "--subsets=x", "--subsets", "y"]
    result = run_hrm("build-data", "arc", "--out", tmp_path / "d", "--input", FIXTURES / "tasks" / "training",
                     FIXTURES / "tasks" / "evaluation", "--subsets", "training", "evaluation", "--aug", "1",
                     "--json", check=True)
    assert json.loads(result.stdout)["subsets"] == {"training": 3, "evaluation": 2}
