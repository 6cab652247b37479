"""hrm: build reasoning-puzzle datasets, train recurrent reasoning models, score them by voting.

The repository's top-level folders install beneath this package (see pyproject.toml):
`common/` -> `hrm.common` (the ground floor: errors, logging, atomic outputs), `augment/` ->
`hrm.augment`, `builders/` -> `hrm.builders`, `show/` -> `hrm.show` (text and PNG renderings),
`train/` -> `hrm.train`, `eval/` -> `hrm.eval`, `hrm_cli/` -> `hrm.cli`. One namespace keeps a
user's own `train.py` or `eval.py` from shadowing ours.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("hrm")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
