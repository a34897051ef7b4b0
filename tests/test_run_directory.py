"""A run directory serves one process and one run: an OS lock, the rule for reusing a directory, orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from test_cli import run, train_args
from training_helpers import small_data, tiny_config, tiny_set_args

from condgan import Trainer, TrainerConfig
from condgan import checkpoint as ckpt
from condgan.training import rundir
from condgan.training.rundir import RunDirectoryError


def wait_for(condition, timeout=120.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_second_process_on_a_run_directory_gets_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CONDGAN_DISABLE_PLUGIN_AUTOLOAD": "1"}
    first = subprocess.Popen([sys.executable, "-m", "condgan", "train", *tiny_set_args(), "--out", str(out), "--device", "cpu",
                              "--loggers", "", "--steps", "1000000", "--checkpoint-every", "3", "--sample-every", "0"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: ckpt.latest_checkpoint(out) is not None or first.poll() is not None, what="the first checkpoint")
        assert first.poll() is None, first.stderr.read()
        for extra in ([], ["--resume"]):  # a new run on the same --out, and a second --resume
            code, _, err = run(train_args(out, "--steps", "2", *extra), capsys)
            assert code == 1 and err.count("\n") == 1, err
            assert f"the run directory {out} is in use by another condgan process (pid {first.pid} on " in err
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the kernel dropped the killed process's lock: the run continues, and `latest` only moves forward
    before = ckpt.read_file(ckpt.latest_checkpoint(out))["step"]
    code, _, err = run(train_args(out, "--steps", str(before + 2), "--resume", "--checkpoint-every", "1"), capsys)
    assert code == 0, err
    assert ckpt.read_file(ckpt.latest_checkpoint(out))["step"] == before + 2


def test_the_lock_is_per_process_and_reentrant(tmp_path):
    with rundir.lock_run_directory(tmp_path / "a") as outer:
        with rundir.lock_run_directory(tmp_path / "a"):  # the same process: shares the hold
            pass
        assert not outer.released and str(os.getpid()) in (tmp_path / "a" / rundir.LOCK_FILE).read_text()
        holder = subprocess.run([sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
                                 "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", str(tmp_path / "a" / rundir.LOCK_FILE)],
                                capture_output=True, text=True)
        assert holder.returncode != 0 and "BlockingIOError" in holder.stderr  # another process cannot take it
    holder = subprocess.run([sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
                             "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", str(tmp_path / "a" / rundir.LOCK_FILE)])
    assert holder.returncode == 0  # released


def trainer(out, **fields):
    return Trainer(tiny_config(), TrainerConfig(device="cpu", loggers=(), out_dir=str(out), **fields), data=small_data())


def test_the_python_trainer_refuses_a_directory_holding_another_run(tmp_path):
    trainer(tmp_path, steps=2).train()
    with pytest.raises(RunDirectoryError, match=rf"{tmp_path} already holds a run; continue it with --resume \(Python: "
                                                r"Trainer.from_checkpoint\), or choose another --out / out_dir"):
        trainer(tmp_path, steps=4)
    Trainer.from_checkpoint(tmp_path, data=small_data(), steps=4).train()  # continuing it is fine
    branch = Trainer.from_checkpoint(tmp_path / "checkpoints" / "step_0000002.pt", data=small_data(), steps=6,
                                     out_dir=str(tmp_path / "branch"))
    branch.train()  # branching from an earlier checkpoint into a new directory is fine
    assert ckpt.read_file(ckpt.latest_checkpoint(tmp_path))["step"] == 4


def test_two_resumed_trainers_of_one_run_cannot_both_write(tmp_path):
    trainer(tmp_path, steps=2).train()
    first = Trainer.from_checkpoint(tmp_path, data=small_data(), steps=6)
    second = Trainer.from_checkpoint(tmp_path, data=small_data(), steps=4)
    first.train()
    with pytest.raises(RunDirectoryError, match=r"the run in .* has changed since this trainer resumed from \(or wrote\) "
                                                r"step_0000002.pt: its latest checkpoint now is step_0000006.pt"):
        second.train()
    with pytest.raises(RunDirectoryError, match="has changed since"):
        second.export_generator()  # nor its generator.pt
    assert ckpt.read_file(ckpt.latest_checkpoint(tmp_path))["step"] == 6  # latest never moved backwards
    assert torch.load(tmp_path / "generator.pt", weights_only=True)["step"] == 6


# -- orphaned temporary files (issue 18, item 5) ----------------------------------------------------------
def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_orphaned_temporary_files_of_dead_processes_are_removed_at_the_next_start(tmp_path):
    trainer(tmp_path, steps=2).train()
    dead, alive = dead_pid(), os.getppid()  # the pytest runner's parent is alive and is not condgan
    orphans = [tmp_path / "checkpoints" / f".step_0000004.pt.tmp{dead}", tmp_path / f".generator.pt.tmp{dead}"]
    kept = [tmp_path / "checkpoints" / f".step_0000004.pt.tmp{alive}", tmp_path / "checkpoints" / ".notes.tmpabc"]
    for path in orphans + kept:
        path.write_bytes(b"x" * 1000)
    assert sorted(rundir.orphaned_temporary_files(tmp_path)) == sorted(orphans)
    resumed = Trainer.from_checkpoint(tmp_path, data=small_data(), steps=3)
    assert all(p.exists() for p in orphans)  # constructing a trainer changes nothing
    resumed.train()
    assert not any(p.exists() for p in orphans) and all(p.exists() for p in kept)


def test_orphaned_temporary_files_count_as_free_space(tmp_path, monkeypatch):
    import shutil

    trainer(tmp_path, steps=2).train()
    orphan = tmp_path / "checkpoints" / f".step_0000004.pt.tmp{dead_pid()}"
    with open(orphan, "wb") as f:
        f.truncate(10**8)  # 100 MB (sparse): far more than these checkpoints need
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    Trainer.from_checkpoint(tmp_path, data=small_data(), steps=3)  # 1 kB free, but the orphan's space comes back
    orphan.unlink()
    with pytest.raises(RunDirectoryError, match=r"has 0.0 MB free but its checkpoints need about"):
        Trainer.from_checkpoint(tmp_path, data=small_data(), steps=3)
