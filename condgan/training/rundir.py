"""Run directories: one process at a time, one run per directory, no orphaned temporary files.

- :func:`lock_run_directory`: an exclusive OS lock (``fcntl.flock``) on ``RUN_DIR/run.lock``, held by
  the Trainer while it trains or writes. The kernel drops it when the process exits in any way
  (SIGKILL included), so a lock is never stale; the file records the holder's pid and host for the
  message the next process gets. Within one process the lock is re-entrant. Where ``fcntl`` is
  missing (Windows) nothing is locked.
- :func:`check_run_continues`: the one rule for reusing a directory, used by the Trainer (and so by
  ``condgan train``): a new run needs a directory without a run, a resumed run needs the directory's
  ``latest`` to still be the checkpoint it resumed from (or last wrote).
- :func:`orphaned_temporary_files`: ``.NAME.tmpPID`` files that :func:`condgan.checkpoint.atomic_write`
  left behind when its process was killed mid-write (only those whose process is gone); the Trainer
  counts them as free space when it checks the disk, and removes them when it takes the directory.
- :func:`check_writable`, :func:`check_space`: a bad ``--out`` or a full disk fails before the data
  loads, not after an hour; :func:`claim`: lock and check the directory for a trainer (agreed by
  every process under torch.distributed).
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import distributed
from ..checkpoint import files as ckpt

LOCK_FILE = "run.lock"
_TMP_FILE = re.compile(r"^\..+\.tmp(\d+)$")  # atomic_write's temporary files: .NAME.tmpPID

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]


class RunDirectoryError(OSError):
    """The run directory cannot be used: not writable, no room, in use by another process, or it
    holds another run."""


# path -> [file descriptor, holders in this process]
_HELD: dict[str, list[int]] = {}


class RunLock:
    """This process's hold on a run directory's lock; :meth:`release` (or ``with``) lets it go."""

    def __init__(self, key: str):
        self.key = key
        self.released = False

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        entry = _HELD.get(self.key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _HELD[self.key]
            os.close(entry[0])  # closing the descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"pid {int(info['pid'])} on {info['host']}, since {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"


def _in_use(run_dir: Path) -> RunDirectoryError:
    return RunDirectoryError(f"the run directory {run_dir} is in use by another condgan process "
                             f"({_holder(run_dir / LOCK_FILE)}): wait for it to finish or stop it, or choose another "
                             "--out / out_dir")


def lock_run_directory(run_dir: str | Path) -> RunLock:
    """Lock ``run_dir`` (created if needed) for this process, or raise RunDirectoryError at once.

    Raises:
        RunDirectoryError: another process holds the lock (the message names its pid and host),
            or the lock file cannot be made.
    """
    run_dir = Path(run_dir)
    key = os.path.realpath(run_dir)
    if key in _HELD:
        _HELD[key][1] += 1
        return RunLock(key)
    path = run_dir / LOCK_FILE
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunDirectoryError(f"cannot lock the run directory {run_dir}: {exc.strerror or exc}") from None
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _in_use(run_dir) from None
            raise RunDirectoryError(f"cannot lock the run directory {run_dir}: {exc.strerror or exc}") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    _HELD[key] = [fd, 1]
    return RunLock(key)


def check_not_locked(run_dir: str | Path) -> None:
    """Raise RunDirectoryError when another process holds ``run_dir``'s lock (a probe: creates nothing)."""
    run_dir = Path(run_dir)
    if fcntl is None or os.path.realpath(run_dir) in _HELD:
        return
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR)
    except OSError:
        return  # no lock file (or none readable): nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise _in_use(run_dir) from None
    finally:
        os.close(fd)


def check_run_continues(run_dir: str | Path, expected: Path | None) -> None:
    """Raise RunDirectoryError unless ``run_dir``'s latest checkpoint is ``expected``.

    ``expected=None`` means a new run: the directory must hold no checkpoint. Otherwise it is the
    checkpoint the caller resumed from or last wrote: another process that trained there since
    would be overwritten (``latest`` moved backwards, files of two runs mixed).
    """
    run_dir = Path(run_dir)
    try:
        latest = ckpt.latest_checkpoint(run_dir)
    except ckpt.CheckpointError:
        latest = run_dir / ckpt.CHECKPOINT_DIR / ckpt.LATEST  # a damaged pointer: a run is there all the same
    if latest is None and ckpt.list_checkpoints(run_dir / ckpt.CHECKPOINT_DIR):
        latest = ckpt.list_checkpoints(run_dir / ckpt.CHECKPOINT_DIR)[-1]
    if expected is None:
        if latest is not None:
            raise RunDirectoryError(f"{run_dir} already holds a run; continue it with --resume (Python: "
                                    "Trainer.from_checkpoint), or choose another --out / out_dir")
        return
    if latest is None or os.path.realpath(latest) != os.path.realpath(expected):
        now = "holds no checkpoint" if latest is None else f"is {latest.name}"
        raise RunDirectoryError(f"the run in {run_dir} has changed since this trainer resumed from (or wrote) "
                                f"{expected.name}: its latest checkpoint now {now}, from another process; resume from "
                                "the directory again, or give another --out / out_dir to branch from an earlier checkpoint")


def orphaned_temporary_files(run_dir: str | Path) -> list[Path]:
    """``.NAME.tmpPID`` files in ``run_dir`` and its checkpoints folder whose process is gone."""
    found = []
    for folder in (Path(run_dir), Path(run_dir) / ckpt.CHECKPOINT_DIR):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            m = _TMP_FILE.match(path.name)
            if m and path.is_file() and not _alive(int(m.group(1))):
                found.append(path)
    return found


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process writes none while it starts a run
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process: leave its files alone
    return True


def remove_orphans(run_dir: str | Path) -> list[Path]:
    """Remove :func:`orphaned_temporary_files` of ``run_dir``; returns what was removed."""
    removed = []
    for path in orphaned_temporary_files(run_dir):
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def _existing(out: Path) -> Path:
    return next(p for p in (out, *out.parents) if p.exists() or p == p.parent)  # nothing is created here


def check_before_run(out: Path, *, resuming: bool) -> None:
    """The checks before a trainer loads its data: ``out`` writable, not held by another process,
    and (for a new run) holding no other run."""
    check_writable(out)
    check_not_locked(out)
    if not resuming:
        check_run_continues(out, None)  # a directory holding another run, too


def check_writable(out: str | Path) -> None:
    """Raise :class:`RunDirectoryError` unless ``out`` (or its nearest existing parent) can be written."""
    out = Path(out)
    existing = _existing(out)
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        with tempfile.TemporaryFile(dir=existing) as f:  # a write probe, gone when closed
            f.write(b"0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise RunDirectoryError(f"cannot write to the run directory {out}: {exc.strerror or exc}; choose another "
                                "--out / out_dir or fix its permissions") from None


def check_space(out: str | Path, generator: nn.Module, discriminator: nn.Module, *, ema: bool, keep_last: int) -> None:
    """Raise :class:`RunDirectoryError` when ``out`` has no room for the run's checkpoints (estimated
    from the built networks: weights and two Adam moments each, EMA, ``keep_last`` + 1, generator.pt)."""
    out = Path(out)
    nbytes = lambda m: sum(t.numel() * t.element_size() for t in m.state_dict().values())  # noqa: E731
    g, d = nbytes(generator), nbytes(discriminator)
    one = 3 * (g + d) + (g if ema else 0)  # weights + two Adam moments
    need = one * (keep_last + 1) + g  # kept checkpoints, one being written, generator.pt
    orphans = sum(p.stat().st_size for p in orphaned_temporary_files(out)) if out.is_dir() else 0
    free = shutil.disk_usage(_existing(out)).free + orphans  # orphaned temporary files are removed when the run starts
    if free < need:
        counted = f" (counting {orphans / 1e6:.1f} MB of orphaned temporary files, removed at the start)" if orphans else ""
        raise RunDirectoryError(f"the run directory {out} has {free / 1e6:.1f} MB free{counted} but its checkpoints need about "
                                f"{need / 1e6:.1f} MB (keep_last={keep_last} of {one / 1e6:.1f} MB, one "
                                "being written, generator.pt): free some space, lower keep_last or choose another --out")


def claim(out: Path, expected_latest: Path | None, process: Any, device: torch.device, *, agree: bool = True) -> RunLock | None:
    """Lock ``out`` for this process (process 0 under torch.distributed) and check that it still
    holds this trainer's run (:func:`check_run_continues`); orphaned temporary files are removed.
    With ``agree``, every process learns whether process 0 succeeded (a collective)."""
    lock, error = None, None
    if process.is_main:
        try:
            lock = lock_run_directory(out)
            check_run_continues(out, expected_latest)
            remove_orphans(out)  # writes killed midway by a dead process
        except RunDirectoryError as exc:
            if lock is not None:
                lock.release()
            lock, error = None, exc
    if distributed.agree_any([error is not None], device)[0] if agree else error is not None:
        raise error if error is not None else RunDirectoryError(
            f"process 0 could not take the run directory {out} (see its message)")
    return lock
