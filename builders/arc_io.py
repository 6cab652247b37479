"""Reading ARC tasks: per-task JSON folders and the Kaggle combined layout, validated.

Layouts (SPEC 3.3):
- per task: `{"train": [{"input": grid, "output": grid}, ..], "test": [..]}`, one file per task,
  in subset folders (`training/`, `evaluation/`, ConceptARC's concept folders below `corpus/`);
- Kaggle: `<prefix>_<subset>_challenges.json` (test pairs without outputs) and
  `<prefix>_<subset>_solutions.json` (`{task: [output, ..]}`); `.gz`/`.xz` copies are read too
  (the packaged data is xz-compressed).

An `--input` entry is a folder (holding Kaggle files or subset folders, or being a subset folder
itself), a Kaggle prefix (`../data/arc-agi`), a single task JSON file (its subset: the name of its
folder), or `NAME=PATH` (everything under PATH, or the one file PATH, is subset NAME, e.g.
`concept=ConceptARC/corpus`). Without --subsets the default subsets present in the inputs are
built (`resolve_subsets`). Every problem is one HrmError line naming the file and
task; files are size-checked before they are parsed. With `--no-solutions` the test outputs of
the test-set subset are not read at all (no solutions file needed): those pairs carry None.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from hrm.augment.arc import ARC_SIDE, NUM_COLOURS
from hrm.common import HrmError, log
from hrm.common.json_input import read_json

_SUFFIXES = ("", ".xz", ".gz")
DEFAULT_SUBSETS = ("training", "evaluation", "concept")
DEFAULT_TEST_SET = "evaluation"

Pair = tuple[np.ndarray, np.ndarray | None]  # (input, output); output None: unknown (--no-solutions)


@dataclass
class ArcTask:
    name: str  # the task id (file stem or Kaggle key); the identity version's identifier
    subset: str
    source: str  # the file it came from, for messages
    train: list[Pair]
    test: list[Pair]

    def pairs(self) -> list[Pair]:
        return self.train + self.test

    @property
    def has_solutions(self) -> bool:
        """False for a challenge read with --no-solutions: its test outputs are unknown."""
        return all(output is not None for _, output in self.test)


class _InvalidTask(Exception):
    """A problem with one task: fatal, or the task is skipped with --skip-invalid."""


def _grid(value: Any, where: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise _InvalidTask(f"{where} is not a rectangular grid") from None
    if array.ndim != 2 or array.dtype == object:
        raise _InvalidTask(f"{where} is not a rectangular grid (a list of equally long rows)")
    height, width = array.shape
    if not (1 <= height <= ARC_SIDE and 1 <= width <= ARC_SIDE):
        raise _InvalidTask(f"{where} is {height}x{width}; grid sides must be 1..{ARC_SIDE}")
    if array.dtype.kind not in "iu":
        raise _InvalidTask(f"{where} holds {array.dtype.kind!r}-type values; colours are integers 0-9")
    bad = (array < 0) | (array >= NUM_COLOURS)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise _InvalidTask(f"{where} has colour {array[row, col]} at row {row} column {col}; colours are 0-9")
    return array.astype(np.uint8)


def _pairs(examples: Any, kind: str, solutions: list | None = None, unsolved: bool = False) -> list[Pair]:
    """The pairs of `examples`; with `unsolved` (test pairs of --no-solutions) outputs are None,
    whatever the file holds: withheld answers are never read."""
    if not isinstance(examples, list):
        raise _InvalidTask(f"'{kind}' is not a list of pairs")
    pairs = []
    for index, example in enumerate(examples):
        where = f"{kind} pair {index}"
        if not isinstance(example, dict) or "input" not in example:
            raise _InvalidTask(f"{where} has no 'input'")
        if unsolved:
            pairs.append((_grid(example["input"], f"{where} input"), None))
            continue
        output = example.get("output") if solutions is None else (
            solutions[index] if index < len(solutions) else None)
        if output is None:
            raise _InvalidTask(f"{where} has no solution (output)")
        pairs.append((_grid(example["input"], f"{where} input"), _grid(output, f"{where} output")))
    return pairs


def _task(name: str, subset: str, source: str, content: Any, solutions: Any = None,
          kaggle: bool = False, unsolved: bool = False) -> ArcTask:
    if not isinstance(content, dict):
        raise _InvalidTask("is not an object with 'train' and 'test'")
    if unsolved:
        train, test = _pairs(content.get("train"), "train"), _pairs(content.get("test"), "test", unsolved=True)
        if not train:
            raise _InvalidTask("has no train pairs")
        if not test:
            raise _InvalidTask("has no test inputs")
        return ArcTask(name, subset, source, train, test)
    if kaggle:
        if solutions is None:
            raise _InvalidTask("has no entry in the solutions file (test pairs without solution)")
        if not isinstance(solutions, list):
            raise _InvalidTask("solutions entry is not a list of grids")
    train = _pairs(content.get("train"), "train")
    test = _pairs(content.get("test"), "test", solutions if kaggle else None)
    if kaggle and len(solutions) != len(test):
        raise _InvalidTask(f"has {len(test)} test inputs but {len(solutions)} solutions")
    if not train:
        raise _InvalidTask("has no train pairs")
    return ArcTask(name, subset, source, train, test)


def _collect(tasks: list[ArcTask], make: Any, source: str, name: str, skip_invalid: bool) -> None:
    try:
        tasks.append(make())
    except _InvalidTask as problem:
        if not skip_invalid:
            raise HrmError(f"{source}: task {name}: {problem}; pass --skip-invalid to skip such tasks") from None
        log(f"warning: skipped {source}: task {name}: {problem}")


def read_kaggle(challenges: Path, solutions: Path, subset: str, *, skip_invalid: bool = False,
                no_solutions: bool = False) -> list[ArcTask]:
    """Tasks of one Kaggle subset (challenges + solutions files); with `no_solutions` the
    challenges alone (test outputs unknown; a solutions file beside them is not read)."""
    if no_solutions:
        if solutions.is_file():
            log(f"--no-solutions: not reading {solutions} (the test outputs stay unknown)")
        content = read_json(challenges)
        if not isinstance(content, dict):
            raise HrmError(f"{challenges}: expected a JSON object keyed by task id")
        tasks: list[ArcTask] = []
        for name, task in content.items():
            _collect(tasks, lambda: _task(name, subset, str(challenges), task, unsolved=True),
                     str(challenges), name, skip_invalid)
        return tasks
    if not solutions.is_file():
        raise HrmError(f"{challenges}: missing solutions file {solutions.name} beside it "
                       f"(challenges without solutions: pass --no-solutions)")
    content, answers = read_json(challenges), read_json(solutions)
    for path, data in ((challenges, content), (solutions, answers)):
        if not isinstance(data, dict):
            raise HrmError(f"{path}: expected a JSON object keyed by task id")
    tasks: list[ArcTask] = []
    for name, task in content.items():
        _collect(tasks, lambda: _task(name, subset, str(challenges), task, answers.get(name), kaggle=True),
                 str(challenges), name, skip_invalid)
    return tasks


def read_task_folder(folder: Path, subset: str, *, skip_invalid: bool = False,
                     no_solutions: bool = False) -> list[ArcTask]:
    """Tasks of one subset folder: every *.json below it (recursively, in sorted order); with
    `no_solutions` the test pairs' outputs are not read (unknown)."""
    files = sorted(p for p in folder.rglob("*.json") if p.is_file())
    if not files:
        raise HrmError(f"{folder}: no task JSON files in this folder")
    tasks: list[ArcTask] = []
    for path in files:
        content = read_json(path)
        _collect(tasks, lambda: _task(path.stem, subset, str(path), content, unsolved=no_solutions),
                 str(path), path.stem, skip_invalid)
    return tasks


def _kaggle_file(prefix: str, subset: str, kind: str) -> Path | None:
    for suffix in _SUFFIXES:
        path = Path(f"{prefix}_{subset}_{kind}.json{suffix}")
        if path.is_file():
            return path
    return None


def _kaggle_in_folder(folder: Path, subset: str) -> Path | None:
    found = sorted(p for suffix in _SUFFIXES for p in folder.glob(f"*_{subset}_challenges.json{suffix}"))
    if len(found) > 1:
        raise HrmError(f"{folder}: several Kaggle files for subset {subset!r} "
                       f"({', '.join(p.name for p in found)}); give the prefix, e.g. --input {found[0].parent}/"
                       f"{found[0].name.split(f'_{subset}_')[0]}")
    return found[0] if found else None


def _solutions_for(challenges: Path) -> Path:
    """`<prefix>_<subset>_solutions.json` beside the challenges (any of the compressions)."""
    name = challenges.name[:challenges.name.rindex("_challenges.json")] + "_solutions.json"
    candidates = [challenges.parent / (name + suffix) for suffix in _SUFFIXES]
    return next((path for path in candidates if path.is_file()), candidates[0])


def read_task_file(path: Path, subset: str, *, skip_invalid: bool = False,
                   no_solutions: bool = False) -> list[ArcTask]:
    """The one task of a per-task JSON file (its name: the file stem); with `no_solutions` its
    test outputs are not read."""
    tasks: list[ArcTask] = []
    content = read_json(path)
    _collect(tasks, lambda: _task(path.stem, subset, str(path), content, unsolved=no_solutions),
             str(path), path.stem, skip_invalid)
    return tasks


def _kaggle_subset(path: Path) -> str | None:
    """`arc-agi_training_challenges.json[.xz]` -> "training"; None for any other file name."""
    name = path.name
    for suffix in _SUFFIXES:
        stem = name[:len(name) - len(suffix)] if suffix and name.endswith(suffix) else name
        if stem.endswith("_challenges.json") and "_" in stem[:-len("_challenges.json")]:
            return stem[:-len("_challenges.json")].rsplit("_", 1)[1]
    return None


def _file_source(path: Path, name: str | None) -> dict[str, list[tuple[str, Path]]]:
    """A single file given as --input: a Kaggle challenges file, or one task (subset NAME when
    given as NAME=FILE, else the name of its folder, as in ARC-AGI's data/training/<task>.json)."""
    subset = _kaggle_subset(path)
    if subset is not None:
        return {name or subset: [("kaggle", path)]}
    return {name or path.parent.resolve().name or "task": [("file", path)]}


def present_subsets(inputs: Sequence[str]) -> list[str]:
    """Every subset the --input entries provide, in the order found (without a --subsets list)."""
    found: dict[str, None] = {}
    for entry in inputs:
        if "=" in entry and not Path(entry).exists():
            found[entry.partition("=")[0]] = None
            continue
        path = Path(entry)
        if path.is_file():
            found.update(dict.fromkeys(_file_source(path, None)))
        elif path.is_dir():
            kaggle = [_kaggle_subset(p) for p in sorted(path.iterdir()) if p.is_file()]
            found.update(dict.fromkeys(s for s in kaggle if s))
            found.update(dict.fromkeys(p.name for p in sorted(path.iterdir())
                                       if p.is_dir() and next(p.rglob("*.json"), None) is not None))
            if next(path.glob("*.json"), None) is not None and not any(kaggle):
                found[path.resolve().name] = None  # the folder is itself a subset folder
        else:
            parent = path.parent
            if parent.is_dir():
                prefix = path.name + "_"
                found.update(dict.fromkeys(s for p in sorted(parent.iterdir())
                                           if p.name.startswith(prefix) and (s := _kaggle_subset(p))))
    return list(found)


def resolve_subsets(inputs: Sequence[str] | None, subsets: Sequence[str] | None,
                    test_set: str | None, packaged: Sequence[str] = ()) -> tuple[list[str], str]:
    """The subsets to build and the test set. Without --subsets: the default subsets that the
    inputs hold (or, when they hold none of them, every subset they hold), said in one log line
    when that is not the default list; without --test-set: `evaluation`, or the only subset found."""
    if subsets:
        chosen = list(dict.fromkeys(subsets))
    else:
        present = present_subsets(inputs) if inputs else list(packaged)
        chosen = [s for s in DEFAULT_SUBSETS if s in present] or present
        if not chosen:
            raise HrmError(f"--input {' '.join(inputs or ())} holds no ARC tasks (per-task JSON files, "
                           f"subset folders of them, or Kaggle <prefix>_<subset>_challenges.json files)")
        if chosen != list(DEFAULT_SUBSETS):
            log(f"subsets: {' '.join(chosen)} (the default subsets {' '.join(DEFAULT_SUBSETS)} found in "
                f"--input{'' if set(chosen) & set(DEFAULT_SUBSETS) else ': none, so every subset found'}; "
                f"choose with --subsets)")
    if test_set is None:
        if subsets or DEFAULT_TEST_SET in chosen or len(chosen) != 1:
            test_set = DEFAULT_TEST_SET
        else:
            test_set = chosen[0]
            log(f"test set: {test_set} (the only subset; choose with --test-set)")
    return chosen, test_set


def _sources(entry: str, subsets: Sequence[str]) -> dict[str, list[tuple[str, Path]]]:
    """What one --input entry provides: {subset: [("kaggle", challenges) | ("folder", dir) |
    ("file", task json)]}."""
    if "=" in entry and not Path(entry).exists():
        name, _, path = entry.partition("=")
        target = Path(path)
        if target.is_file():
            return _file_source(target, name)
        if not target.is_dir():
            raise HrmError(f"--input {entry}: {target} is neither a folder nor a task file")
        return {name: [("folder", target)]}
    path = Path(entry)
    if path.is_file():
        return {s: v for s, v in _file_source(path, None).items() if s in subsets}
    found: dict[str, list[tuple[str, Path]]] = {}
    for subset in subsets:
        if path.is_dir():
            challenges = _kaggle_in_folder(path, subset)
            if challenges is not None:
                found[subset] = [("kaggle", challenges)]
            elif (path / subset).is_dir():
                found[subset] = [("folder", path / subset)]
            elif path.name == subset:
                found[subset] = [("folder", path)]
        else:
            challenges = _kaggle_file(entry, subset, "challenges")
            if challenges is not None:
                found[subset] = [("kaggle", challenges)]
    if not path.exists() and not found:
        raise HrmError(f"--input {entry}: no such folder, nor Kaggle files {entry}_<subset>_challenges.json")
    return found


@contextmanager
def packaged_data() -> Iterator[Path]:
    """The folder of the ARC copy shipped in the package (xz-compressed Kaggle files)."""
    with resources.as_file(resources.files("hrm.builders").joinpath("arc_data")) as folder:
        if not folder.is_dir():
            raise HrmError("the packaged ARC data (builders/arc_data) is missing from this install; "
                           "pass --input")
        yield folder


def read_inputs(inputs: Sequence[str], subsets: Sequence[str], *, skip_invalid: bool = False,
                unsolved_subset: str | None = None) -> list[ArcTask]:
    """All tasks of `subsets` found in `inputs`, in the order of `subsets`, then of `inputs`,
    then of task ids. The test outputs of `unsolved_subset` (--no-solutions) are not read."""
    found: dict[str, list[tuple[str, Path]]] = {}
    for entry in inputs:
        provided = _sources(entry, subsets)
        if not provided:
            held = present_subsets([entry])
            raise HrmError(f"--input {entry} holds none of the subsets {', '.join(subsets)}"
                           + (f" (it holds {', '.join(held)}; choose with --subsets)" if held else ""))
        for subset, sources in provided.items():
            found.setdefault(subset, []).extend(sources)
    missing = [s for s in subsets if s not in found]
    if missing:
        raise HrmError(f"subset(s) {', '.join(missing)} not found in --input {' '.join(inputs)} "
                       f"(found: {', '.join(found) or 'nothing'}); choose them with --subsets")
    tasks: list[ArcTask] = []
    for subset in [*subsets, *(s for s in found if s not in subsets)]:
        unsolved = subset == unsolved_subset
        for kind, path in found[subset]:
            if kind == "kaggle":
                read = read_kaggle(path, _solutions_for(path), subset, skip_invalid=skip_invalid,
                                   no_solutions=unsolved)
            elif kind == "file":
                read = read_task_file(path, subset, skip_invalid=skip_invalid, no_solutions=unsolved)
            else:
                read = read_task_folder(path, subset, skip_invalid=skip_invalid, no_solutions=unsolved)
            # sorted by id, so that both layouts (and any key order) give the same dataset
            tasks.extend(sorted(read, key=lambda task: task.name))
    return tasks
