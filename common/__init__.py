"""Things every stage shares: the user-error type, stderr logging, progress bars, atomic file
writes, and holding Ctrl-C while a numba kernel runs.

Library code raises `HrmError` for anything the user can fix (bad input, missing file,
wrong format); the CLI turns it into one line on stderr and a non-zero exit.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import sys
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, TypeVar

if TYPE_CHECKING:
    from tqdm import tqdm

T = TypeVar("T")

_quiet = False


class HrmError(Exception):
    """An error caused by the user's input, reported as one line without a traceback (exit 1)."""


class StorageError(HrmError):
    """The file system refused a write: read-only, full, or not permitted (`storage_error`)."""


class UsageError(HrmError):
    """A command line that asks for something impossible - an option value out of its range,
    options that exclude each other, an override without `=`: exit 2, like a parse error."""


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def log(message: str) -> None:
    """A log line on stderr (results go to stdout), kept when stderr is not a terminal (a
    pipeline's log wants them) and silenced by --quiet. Written through tqdm when a bar may be
    on screen, so that the bar is cleared, the line printed whole and the bar redrawn below it."""
    if _quiet:
        return
    tqdm_module = sys.modules.get("tqdm")  # loaded only once some command drew a bar
    if tqdm_module is not None and sys.stderr.isatty():
        tqdm_module.tqdm.write(message, file=sys.stderr)
        sys.stderr.flush()
    else:
        print(message, file=sys.stderr, flush=True)


def plural(count: float, word: str, many: str | None = None) -> str:
    """`1 task`, `3 tasks`, `3,633,400 examples`, `2.5 versions`: a count for people (thousands
    separated, never in exponent notation) with the word in the form the count takes."""
    if float(count).is_integer():
        number = f"{int(count):,}"
    else:  # a mean (e.g. versions per puzzle): two decimals at most
        number = f"{count:,.2f}".rstrip("0").rstrip(".")
    return f"{number} {word if count == 1 else (many or word + 's')}"


def print_error(message: str) -> None:
    """`error: MESSAGE` on stderr, on a line of its own: a progress bar still drawn (the command
    stopped inside its loop) is cleared first rather than having the message glued to its end."""
    tqdm_module = sys.modules.get("tqdm")
    if tqdm_module is not None:
        for bar in list(getattr(tqdm_module.tqdm, "_instances", ())):
            bar.close()  # hrm's bars do not stay on screen (leave=False): closing erases the line
    print(f"error: {message}", file=sys.stderr, flush=True)


def format_bytes(num_bytes: float) -> str:
    """A byte count for people: "1.7 GiB", "62.5 KiB", "150 MiB", "512 B" (binary units; one decimal
    below 100 of a unit, none above)."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if num_bytes >= scale:
            value = num_bytes / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{int(num_bytes)} B"


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it") -> "tqdm":
    """A tqdm bar on stderr, drawn only when stderr is a terminal (a log file or pipe gets the
    log lines, not a stream of carriage returns) and not with --quiet. With a total it shows the
    rate (`unit`/s) and the time left."""
    if _quiet or not sys.stderr.isatty():
        # Scripts and pipes (the usual way hrm runs in loops) never see a bar: skip tqdm's import.
        return SilentBar(iterable)  # type: ignore[return-value]
    from tqdm import tqdm  # here, so that `hrm --help` does not pay for it

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)


class SilentBar:
    """What callers use of a disabled tqdm bar: iteration, update, set_postfix, close, `with`."""

    disable = True  # as a disabled tqdm bar says

    def __init__(self, iterable: Iterable[T] | None = None):
        self.iterable = iterable
        self.n = 0

    def __iter__(self) -> Iterator[T]:
        for item in self.iterable or ():
            yield item
            self.n += 1

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *args: object, **kwargs: object) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "SilentBar":
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


# Temporary siblings (`.NAME.partial-1a2b3c4d`) are named by the output they become.
_PARTIAL = re.compile(r"\.([^/]+)\.partial-[0-9a-f]{8}")


def free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes on the file system that holds `path` (or its nearest existing parent)."""
    path = Path(os.path.abspath(path))
    for folder in (path, *path.parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return None


def storage_error(error: OSError, path: str | os.PathLike | None = None, *,
                  needed: str | None = None) -> StorageError | None:
    """The one line for an OSError of the storage (read-only, full, not permitted), naming
    `path` (default: the error's own file, its temporary name mapped to the output's); None for
    other errors. `needed`: what the write needed, e.g. "~352 KiB", said beside the free space."""
    target = path if path is not None else (error.filename or "the output")
    target = _PARTIAL.sub(r"\1", os.fsdecode(target))
    if error.errno == errno.EROFS:
        return StorageError(f"cannot write {target}: read-only file system")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        free = free_bytes(target)
        space = ", ".join(part for part in (f"needs {needed}" if needed else "",
                                            f"{format_bytes(free)} free" if free is not None else "") if part)
        return StorageError(f"cannot write {target}: no space left on device" + (f" ({space})" if space else ""))
    if error.errno in (errno.EACCES, errno.EPERM):
        return StorageError(f"{target}: permission denied")
    return None


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write; when the block completes it is renamed over
    `path`, and if the block fails it is removed, so `path` is never seen half-written."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) while a numba kernel runs and raise KeyboardInterrupt after it.

    A KeyboardInterrupt raised while numba boxes a kernel's results (it calls back into Python)
    turns into a SystemError and can crash the interpreter; deferred, it unwinds normally and
    the atomic output directory is cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
