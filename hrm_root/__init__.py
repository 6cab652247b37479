"""hrm: build reasoning-puzzle datasets, train recurrent reasoning models, score them by voting.

The repository's top-level folders install beneath this package (see pyproject.toml):
`common/` -> `hrm.common` (the ground floor: errors, logging, atomic outputs), `augment/` ->
`hrm.augment`, `builders/` -> `hrm.builders`, `show/` -> `hrm.show` (text and PNG renderings),
`train/` -> `hrm.train`, `eval/` -> `hrm.eval`, `hrm_cli/` -> `hrm.cli`. One namespace keeps a
user's own `train.py` or `eval.py` from shadowing ours.
"""
from __future__ import annotations

# The one place the version is written: pyproject.toml reads it from here (dynamic version), so
# `hrm --version` needs no importlib.metadata lookup (~35 ms of every start-up).
__version__ = "0.1.0"
