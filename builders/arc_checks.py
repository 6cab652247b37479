"""Checks on a set of ARC tasks before a build: test-set leaks and duplicate task ids.

Leak: the train split must not hold a copy of a test-set task. ARC-AGI-2 training contains
most ARC-AGI-1 evaluation tasks (same pairs, some moved between train and test), so building
`--subsets training2 evaluation --test-set evaluation` would train on the answers. Pairs are
compared up to the augmentations (dihedral transform + permutation of colours 1-9, applied to
input and output together), since augmentation would turn such a copy into the answer anyway.
A training-side task counts as a copy when it holds one of the test task's test pairs together
with at least one other pair of that task. A lone shared pair, and the two known overlaps of the
public ARC-AGI-1 data (KNOWN_PUBLIC_OVERLAPS), are kept with a warning.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from hrm.augment.dihedral import NUM_DIHEDRAL, dihedral
from hrm.builders.arc_io import ArcTask
from hrm.common import HrmError, log


@dataclass
class CheckReport:
    overlaps: list[str] = field(default_factory=list)  # kept overlaps, "<test task>:<pair> in <task>"
    dropped_duplicates: list[str] = field(default_factory=list)  # "<name> (<subset>)"
    renamed: dict[str, str] = field(default_factory=dict)  # new name -> "<name> (<subset>)"


def _invariant(inp: np.ndarray, out: np.ndarray) -> tuple:
    """Cheap summary of a pair that the augmentations do not change (a prefilter)."""
    counts_in = np.bincount(inp.ravel(), minlength=10)
    counts_out = np.bincount(out.ravel(), minlength=10)
    return (tuple(sorted(inp.shape)), tuple(sorted(out.shape)), int(counts_in[0]), int(counts_out[0]),
            tuple(sorted(zip(counts_in[1:].tolist(), counts_out[1:].tolist()))))


def _canonical(inp: np.ndarray, out: np.ndarray) -> bytes:
    """The same bytes for every augmented version of a pair: the least, over the 8 dihedral
    transforms, of the pair with colours 1-9 renumbered in order of first appearance."""
    best = None
    for transform in range(NUM_DIHEDRAL):
        a, b = dihedral(inp, transform), dihedral(out, transform)
        flat = np.concatenate([a.ravel(), b.ravel()])
        colours, first = np.unique(flat, return_index=True)
        order = colours[np.argsort(first)]
        order = order[order != 0]
        relabel = np.zeros(10, np.uint8)
        relabel[order] = np.arange(1, len(order) + 1)
        key = bytes([*a.shape, *b.shape]) + relabel[a].tobytes() + relabel[b].tobytes()
        best = key if best is None or key < best else best
    return best


# (evaluation task, training task) pairs of the public ARC-AGI-1 data where the evaluation task
# repeats pairs of a training task (070dd51e is 40853293 with fewer pairs; 50a16a69 shares two
# pairs, test included, with caa06a1f up to colours). The paper's ARC-1 setting trains with
# them, so they are reported, not refused.
KNOWN_PUBLIC_OVERLAPS = frozenset({("070dd51e", "40853293"), ("50a16a69", "caa06a1f")})


def _train_side(task: ArcTask, test_set: str) -> list:
    return task.train if task.subset == test_set else task.pairs()


def check_leaks(tasks: list[ArcTask], test_set: str, report: CheckReport) -> None:
    """Raise HrmError if a training-side task is a copy of a test-set task; note lone overlaps."""
    test_tasks = [k for k, task in enumerate(tasks) if task.subset == test_set]
    wanted: dict[tuple, set[int]] = defaultdict(set)  # invariant -> test-set tasks with such a pair
    for k in test_tasks:
        for a, b in tasks[k].pairs():
            if b is not None:  # a test input without its output (--no-solutions) cannot leak an answer
                wanted[_invariant(a, b)].add(k)
    held: dict[tuple, set[int]] = defaultdict(set)  # the same for training-side pairs
    holders: dict[bytes, set[int]] = defaultdict(set)  # canonical pair -> training-side tasks
    for k, task in enumerate(tasks):
        for a, b in _train_side(task, test_set):
            invariant = _invariant(a, b)
            if wanted.get(invariant, set()) - {k}:  # canonical forms only where a match is possible
                held[invariant].add(k)
                holders[_canonical(a, b)].add(k)
    leaks = []
    for k in test_tasks:
        task = tasks[k]
        with_test, with_any = defaultdict(list), Counter()
        for index, (a, b) in enumerate(task.pairs()):
            if b is None or not held.get(_invariant(a, b), set()) - {k}:
                continue
            for other in holders.get(_canonical(a, b), set()) - {k}:
                with_any[other] += 1
                if index >= len(task.train):
                    with_test[other].append(index - len(task.train))
        for other, test_pairs in with_test.items():
            if with_any[other] >= 2 and (task.name, tasks[other].name) not in KNOWN_PUBLIC_OVERLAPS:
                leaks.append(f"{test_set} task {task.name} is also in {tasks[other].subset} task "
                             f"{tasks[other].name} ({tasks[other].source})")
            else:
                report.overlaps.extend(f"{task.name}:{p} in {tasks[other].name}" for p in test_pairs)
    if leaks:
        more = f" (and {len(leaks) - 1} more)" if len(leaks) > 1 else ""
        raise HrmError(f"test-set leak: {leaks[0]}{more}; the train split would hold the answers of the "
                       f"test split - drop that subset or choose another --test-set")
    if report.overlaps:
        log(f"warning: {len(report.overlaps)} test pair(s) of {test_set} tasks also appear in training tasks "
            f"({', '.join(report.overlaps[:3])}); kept: a lone pair, or a known overlap of the public data")


def _content(task: ArcTask) -> tuple:
    def pair_bytes(a, b) -> bytes:  # b is None for an unknown test output (--no-solutions)
        return bytes([*a.shape]) + a.tobytes() if b is None else bytes([*a.shape, *b.shape]) + a.tobytes() + b.tobytes()
    return tuple(sorted(pair_bytes(a, b) for a, b in task.pairs()))


def resolve_duplicates(tasks: list[ArcTask], test_set: str, report: CheckReport) -> list[ArcTask]:
    """One task per id: a copy with the same pairs is dropped, a different task with the same
    id is renamed `<id>.<subset>`; a test-set task always keeps its bare id."""
    by_name: dict[str, list[int]] = defaultdict(list)
    for k, task in enumerate(tasks):
        by_name[task.name].append(k)
    taken = set(by_name)
    dropped: set[int] = set()
    subsets_seen: Counter = Counter()
    for name, indices in by_name.items():
        if len(indices) == 1:
            continue
        subsets_seen["/".join(sorted({tasks[k].subset for k in indices}))] += 1
        order = sorted(indices, key=lambda k: (tasks[k].subset != test_set, k))
        kept_contents = {_content(tasks[order[0]])}
        for k in order[1:]:
            task = tasks[k]
            content = _content(task)
            if content in kept_contents:
                dropped.add(k)
                report.dropped_duplicates.append(f"{name} ({task.subset})")
                continue
            kept_contents.add(content)
            new_name, copy = f"{name}.{task.subset}", 2
            while new_name in taken:
                new_name, copy = f"{name}.{task.subset}{copy}", copy + 1
            taken.add(new_name)
            report.renamed[new_name] = f"{name} ({task.subset})"
            task.name = new_name
    if subsets_seen:
        where = ", ".join(f"{n} in {s}" for s, n in subsets_seen.most_common())
        log(f"warning: {sum(subsets_seen.values())} task ids appear more than once ({where}): "
            f"{len(report.dropped_duplicates)} copies with the same pairs dropped, {len(report.renamed)} "
            f"different tasks renamed <id>.<subset>")
    return [task for k, task in enumerate(tasks) if k not in dropped]


def check_tasks(tasks: list[ArcTask], test_set: str) -> tuple[list[ArcTask], CheckReport]:
    """Leak check, then one task per id. Raises HrmError on a leak or an empty test set."""
    if not any(task.subset == test_set and task.test for task in tasks):
        raise HrmError(f"--test-set {test_set}: no task of that subset has test pairs")
    report = CheckReport()
    check_leaks(tasks, test_set, report)
    return resolve_duplicates(tasks, test_set, report), report
