"""One writer per run folder: an OS lock on RUN/.lock, held by the training process.

Two `hrm train` processes writing one run interleave their checkpoints, config.yaml and
metrics.jsonl into a run neither of them trained. The writer (rank 0 under torchrun) holds an
exclusive `flock` on RUN/.lock for as long as it trains; the OS drops it when the process ends,
however it ends (SIGKILL, a crash, a lost node), so a stale lock never needs cleaning up. The
file also names its holder (pid, host, start time, command) for the refusal message. Readers
(`hrm eval`, `hrm compare`, `hrm show`) take no lock: every file of a run is replaced atomically.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shlex
import socket
import sys
import time
from pathlib import Path

from hrm.common import HrmError, log

LOCK_NAME = ".lock"

# Locks this process holds: path -> (file descriptor, how many callers hold it). flock locks
# belong to the open file, so a second acquire in the same process must reuse the first.
_held: dict[Path, list[int]] = {}


def _holder_line() -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    command = " ".join(shlex.quote(arg) for arg in ["hrm", *sys.argv[1:]])
    return f"pid {os.getpid()} on {socket.gethostname()}, started {started}: {command}\n"


def _describe_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "a process that has not yet written its name"


def acquire_run_lock(run_dir: str | os.PathLike) -> Path:
    """Take the writer's lock of `run_dir` (which must exist) or raise HrmError naming the
    process that holds it. Returns the key to pass to `release_run_lock`."""
    key = Path(run_dir).resolve() / LOCK_NAME
    if key in _held:
        _held[key][1] += 1
        return key
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            holder = _describe_holder(fd)
            os.close(fd)
            raise HrmError(f"{run_dir} is being written by another hrm process ({holder}); a run has one "
                           f"writer: wait for it to finish or stop it first") from None
        # e.g. ENOLCK on a network file system without locks: train unguarded rather than not at all
        log(f"warning: cannot lock {key} ({os.strerror(error.errno or 0)}); make sure no other "
            f"hrm train writes {run_dir} at the same time")
    os.ftruncate(fd, 0)
    os.pwrite(fd, _holder_line().encode(), 0)
    _held[key] = [fd, 1]
    return key


def release_run_lock(key: Path) -> None:
    """Drop one hold of the lock taken by `acquire_run_lock`; the last one unlocks. The file
    stays: removing it would let a third process lock a new file while a second waits on the old."""
    held = _held.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        del _held[key]
        os.close(held[0])  # closing the only descriptor of the open file releases its flock
