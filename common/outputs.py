"""The one rule for every output hrm writes (datasets, runs, predictions, pictures, submissions).

- A missing output is created, with its missing parent folders; an empty folder is used as it is.
- An existing output is refused unless `--force` is given.
- With `--force`, only what hrm itself wrote (each kind of output knows how to recognise its own)
  or an empty folder is replaced; anything else is refused with one line, so a mistyped `--out`
  can never wipe a user's folder. The current folder and its parents are never replaced.
- The new output is written to a temporary sibling and renamed into place when complete, and
  nothing (no `.partial-`/`.old-` sibling) is left behind on success or failure.

Every writer declares an `OutputKind` and goes through `check_output` (early, before the work)
and `atomic_directory` / `output_file` (when writing).
"""
from __future__ import annotations

import errno
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from hrm.common import HrmError, atomic_file, format_bytes, log, storage_error


@dataclass(frozen=True)
class OutputKind:
    """What an output is: `what` names it in messages ("an hrm dataset"), `directory` says
    whether it is a folder, and `written_by_hrm(path)` recognises an existing one of ours."""
    what: str
    directory: bool
    written_by_hrm: Callable[[Path], bool]


def _is_current_or_parent(path: Path) -> bool:
    target = path.resolve()
    here = Path.cwd().resolve()
    return target == here or target in here.parents


def _first_entry(folder: Path) -> str:
    return next((entry.name for entry in sorted(folder.iterdir())), "")


def check_output(path: str | os.PathLike, kind: OutputKind, *, force: bool) -> Path:
    """Raise `HrmError` (one line) unless `path` may be written as `kind`; see the module doc.
    Writes nothing, so commands call it before they start long work."""
    path = Path(path)
    if _is_current_or_parent(path):
        raise HrmError(f"refusing to write {kind.what} to {path}: it is the current folder or one of its "
                       f"parents; give a new folder name")
    if not path.exists() and not path.is_symlink():
        return path
    if kind.directory and path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return path  # an empty folder made for the output
    if not kind.directory and path.is_dir():
        raise HrmError(f"cannot write {kind.what} to {path}: it is a folder; give a file name")
    if not force:
        raise HrmError(f"{path} already exists; pass --force to replace it")
    if path.is_symlink():
        raise HrmError(f"refusing to replace {path}: it is a symbolic link; remove it or choose another path")
    if kind.directory:
        if not path.is_dir():
            raise HrmError(f"refusing to replace {path}: it is a file, not {kind.what}")
        if not kind.written_by_hrm(path):
            raise HrmError(f"refusing to replace {path}: it is not {kind.what} written by hrm (it holds "
                           f"{_first_entry(path)!r}); remove it yourself or choose another path")
    elif not kind.written_by_hrm(path):
        raise HrmError(f"refusing to replace {path}: it is not {kind.what} written by hrm; remove it "
                       f"yourself or choose another path")
    return path


@contextmanager
def atomic_directory(out: str | os.PathLike, kind: OutputKind, *, force: bool = False) -> Iterator[Path]:
    """Yield a hidden temporary sibling of `out` to fill; when the block succeeds it replaces
    `out` (checked by `check_output` first), and when it fails it is removed."""
    out = check_output(out, kind, force=force)
    with _storage_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
    except OSError as error:
        # the size reached when the disk filled is a lower bound of what the output needs
        written = _directory_bytes(tmp) if error.errno in (errno.ENOSPC, errno.EDQUOT) else 0
        shutil.rmtree(tmp, ignore_errors=True)
        # what it needs in all is unknown (zarr had more to write): what it reached is said
        replacement = storage_error(error, out, needed=f"more than the {format_bytes(written)} it had "
                                                       f"written when the disk filled" if written else None)
        if replacement is None:
            raise
        raise replacement from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not out.exists():
        os.rename(tmp, out)
        return
    check_output(out, kind, force=force)  # it may have changed while we worked
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    if old.exists():
        log(f"warning: could not remove the replaced {old}; delete it by hand")


@contextmanager
def output_file(path: str | os.PathLike, kind: OutputKind, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of the file `path` to write; renamed over `path` when the block
    completes (after `check_output`), removed if it fails."""
    path = check_output(path, kind, force=force)
    with _storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            yield tmp


@contextmanager
def _storage_errors(path: Path) -> Iterator[None]:
    """A read-only or full file system met while preparing `path`: one line naming it."""
    try:
        yield
    except OSError as error:
        replacement = storage_error(error, path)
        if replacement is None:
            raise
        raise replacement from None


def _directory_bytes(folder: Path) -> int:
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(parent, name))
            except OSError:
                pass
    return total


def replace_run_folder(run_dir: str | os.PathLike, kind: OutputKind, *, force: bool,
                       keep: tuple[str, ...] = ()) -> Path:
    """Make `run_dir` a folder for a new run: created, or (checked by `check_output`) an old run
    of ours emptied first, but for the entries named in `keep` (the lock its writer holds).
    Runs grow in place, so this is not atomic like a dataset."""
    run_dir = check_output(run_dir, kind, force=force)
    with _storage_errors(run_dir):
        if run_dir.exists():
            for entry in run_dir.iterdir():
                if entry.name in keep:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir
