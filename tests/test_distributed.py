"""Training on several processes (torch.distributed, gloo on the CPU), launched with torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import condgan
from condgan import checkpoint as ckpt
from condgan.data import TensorBatches
from condgan.distributed import ProcessInfo, init_from_env, process_info, rank_seed
from condgan.training.trainer import Trainer
from condgan.training.step import FastStep

from distributed_worker import BATCH, equivalence_config, train
from training_helpers import tiny_training, small_data, tiny_config, tiny_set_args

TESTS = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="this PyTorch has no torch.distributed with gloo")


def torchrun(*args: str, cwd: Path, nproc: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CONDGAN_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_two_processes_keep_identical_weights_equal_to_one_process_on_the_whole_batch(tmp_path):
    out = tmp_path / "weights.pt"
    torchrun(str(TESTS / "distributed_worker.py"), str(out), cwd=tmp_path)  # the worker checks rank equality each step
    distributed = torch.load(out)
    assert distributed["world_size"] == 2

    torch.manual_seed(0)
    single = train(condgan.GAN(equivalence_config()), slice(0, 2 * BATCH), world_size=2, distributed=False)
    start = torch.nn.utils.parameters_to_vector(condgan.GAN(equivalence_config()).parameters())
    for step, (a, b) in enumerate(zip(distributed["weights"], single), 1):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=lambda m: f"after step {step}: {m}")
    assert not torch.allclose(single[-1], start)  # it trained


def test_torchrun_cli_run_writes_from_rank_0_and_resumes_with_another_process_count(tmp_path):
    run = tmp_path / "run"
    common = ["-m", "condgan", "train", *tiny_set_args(), "--device", "cpu", "--checkpoint-every", "3",
              "--sample-every", "0", "--loggers", "console", "--log-every", "2", "--out", str(run)]
    done = torchrun(*common, "--steps", "6", cwd=tmp_path)
    assert done.stdout.count("done:") == 1  # one process reports (and writes)
    state = ckpt.read_file(ckpt.latest_checkpoint(run))
    assert (state["step"], state["world_size"], state["batch_size"]) == (6, 2, 16)
    assert len(state["rank_rng"]) == 2
    assert not torch.equal(state["rank_rng"][0]["torch"], state["rank_rng"][1]["torch"])  # one stream per process
    # synthetic set: 640 images; a global batch of 2 x 16 = 32, so 20 batches per epoch
    assert state["batch_in_epoch"] == 6 and sorted(p.name for p in (run / "checkpoints").glob("step_*.pt")) == [
        "step_0000003.pt", "step_0000006.pt"]

    with pytest.warns(RuntimeWarning, match="written by 2 process.* batch 16, this run has 1 x 16: it continues from image 192"):
        one = Trainer.from_checkpoint(run, steps=8, loggers=())
    assert (one.step, one.batch_in_epoch) == (6, 12)  # the same image of the same epoch order
    torch.testing.assert_close(one.gan.generator.state_dict(), state["generator"])
    one.train()
    assert ckpt.read_file(ckpt.latest_checkpoint(run))["world_size"] == 1

    torchrun(*common, "--steps", "10", "--resume", cwd=tmp_path)  # 1 -> 2 processes
    final = ckpt.read_file(ckpt.latest_checkpoint(run))
    assert (final["step"], final["world_size"], final["batch_in_epoch"]) == (10, 2, 9)  # image 14*16=224 -> batch 7, +2
    assert all(torch.isfinite(v).all() for v in final["generator"].values())


def test_batches_are_shards_of_the_same_global_batches():
    images, labels = small_data()  # 100 images
    def batches(rank, world_size, batch):
        gen = torch.Generator().manual_seed(3)
        return list(TensorBatches(images, labels, batch, generator=gen, rank=rank, world_size=world_size))

    whole = batches(0, 1, 8)
    halves = [batches(r, 2, 4) for r in range(2)]
    assert len(halves[0]) == len(halves[1]) == 100 // 8 == 12  # the last incomplete global batch is dropped
    for i, (a, b) in enumerate(zip(*halves)):
        torch.testing.assert_close(torch.cat([a[0], b[0]]), whole[i][0])
        torch.testing.assert_close(torch.cat([a[1], b[1]]), whole[i][1])
    with pytest.raises(ValueError, match="rank must lie in"):
        TensorBatches(images, labels, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="cannot fill one global batch of 4 processes x 30"):
        TensorBatches(images, labels, 30, rank=0, world_size=4)


def test_process_streams_are_derived_from_one_seed():
    assert rank_seed(7, 0) == 7
    seeds = {rank_seed(7, r) for r in range(1, 6)} | {rank_seed(8, 1)}
    assert len(seeds) == 6 and 7 not in seeds and all(0 <= s < 2**32 for s in seeds)
    assert rank_seed(7, 3) == rank_seed(7, 3)


def test_without_torchrun_nothing_is_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert init_from_env(torch.device("cpu")) == process_info() == ProcessInfo(0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers"):
        init_from_env(torch.device("cpu"))


def test_distributed_step_and_sync_batchnorm_need_their_setting():
    gan = condgan.GAN(tiny_config())
    opt_g, opt_d = gan.optimizers()
    with pytest.raises(ValueError, match="distributed=True needs an initialised torch.distributed process group"):
        FastStep(gan, opt_g, opt_d, distributed=True)
    with pytest.raises(ValueError, match="sync_batchnorm=True needs CUDA"):
        Trainer(tiny_config(), tiny_training(device="cpu", loggers=(), sync_batchnorm=True, steps=1), data=small_data())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sync_batchnorm_converts_the_batch_norms_on_cuda():
    trainer = Trainer(tiny_config(), tiny_training(device="cuda", loggers=(), sync_batchnorm=True, steps=2), data=small_data())
    kinds = {type(m).__name__ for m in trainer.gan.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    assert kinds == {"SyncBatchNorm"}
    trainer.train()  # one process: SyncBatchNorm acts as BatchNorm


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_stalled_or_dead_process_ends_the_others_with_one_line_and_a_valid_latest(tmp_path):
    """Process 1 stops itself (SIGSTOP) or dies at its 5th step; process 0 gives up after the
    process-group timeout (2 s here) instead of waiting for the backend's 30 minutes."""
    import signal

    pairs = {}
    for how in ("stop", "exit"):  # both pairs at once: their start-ups overlap
        env = {**os.environ, "OMP_NUM_THREADS": "1", "CONDGAN_DISABLE_PLUGIN_AUTOLOAD": "1", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2",
               "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
        pairs[how] = [subprocess.Popen([sys.executable, str(TESTS / "stall_worker.py"), str(tmp_path / how), how, "2"],
                                       env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    try:
        for how, (first, second) in pairs.items():
            _, err = first.communicate(timeout=180)
            assert first.returncode == 1, err[-3000:]
            lines = [line for line in err.splitlines() if line.strip()]
            assert lines[-1].startswith("condgan: error: process 0 of 2 stopped at step 4: another process stalled or died, "
                                        "and this one waited up to 2 s (process_group_timeout) for it"), err[-3000:]
            assert "Traceback" not in err and "the run's latest checkpoint" in lines[-1]
            state = ckpt.read_file(ckpt.latest_checkpoint(tmp_path / how))  # intact
            assert state["step"] == 4 and state["world_size"] == 2
            if how == "exit":
                assert second.wait(timeout=60) == 3
    finally:
        for first, second in pairs.values():
            for p in (first, second):
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                p.communicate()
