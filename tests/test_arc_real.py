"""The ARC builder on the real data: the copy shipped in the package (the `shared_arc` fixture),
checked once against the original files in ../shared/data/arc where they are present."""
from __future__ import annotations

import json
import lzma

import pytest

from hrm.builders.arc import build_arc
from hrm.builders.arc_checks import check_tasks
from hrm.builders.arc_io import packaged_data, read_inputs
from hrm.common import HrmError
from hrm.builders.dataset import open_dataset
from tests.arc_oracle import check_dataset, read_tasks_json
from tests.conftest import run_hrm

ARC1 = ["training", "evaluation", "concept"]
ARC2 = ["training2", "evaluation2"]


def test_arc1_every_version_decodes_to_its_task(shared_arc, tmp_path):
    result = run_hrm("build-data", "arc", "--out", tmp_path / "arc1", "--input", shared_arc, "--aug", "3",
                     "--json", check=True)
    summary = json.loads(result.stdout)
    assert summary["tasks"] == 960 and summary["test_tasks"] == 400
    tasks = read_tasks_json(shared_arc, "arc-agi", ARC1)
    assert len(tasks) == 960
    stats = check_dataset(tmp_path / "arc1", tasks, "evaluation", aug=3)
    assert stats["versions"] == 960 * 4 and stats["translated"] > stats["train_examples"] // 2
    assert "070dd51e" in result.stderr  # the known overlap of the public data is reported, not refused


def test_arc2_setting_builds_1120_tasks(shared_arc, tmp_path):
    build_arc(tmp_path / "arc2", inputs=[str(shared_arc)], subsets=ARC2, test_set="evaluation2", aug=1)
    dataset = open_dataset(tmp_path / "arc2")
    assert dataset.split("train").set().num_groups == 1120 and dataset.split("test").set().num_groups == 120
    check_dataset(tmp_path / "arc2", read_tasks_json(shared_arc, "arc-agi", ARC2), "evaluation2", aug=1)


@pytest.mark.parametrize("subsets, test_set, culprit", [
    (["training2", "evaluation"], "evaluation", "training2 task"),  # ARC-AGI-2 training holds ARC-1 evaluation
    (ARC1 + ["evaluation2"], "evaluation2", "evaluation task"),  # 6 ARC-2 evaluation tasks are ARC-1 evaluation
])
def test_real_leaks_are_refused(shared_arc, subsets, test_set, culprit):
    tasks = read_inputs([str(shared_arc)], subsets)
    with pytest.raises(HrmError, match=f"test-set leak: {test_set} task .* is also in {culprit}"):
        check_tasks(tasks, test_set)


def test_packaged_copy_equals_the_shared_data(original_shared_arc):
    with packaged_data() as folder:
        for path in sorted(original_shared_arc.glob("*.json")):
            assert json.loads(lzma.decompress((folder / (path.name + ".xz")).read_bytes())) == json.loads(path.read_text())
