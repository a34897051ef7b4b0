"""Training is bit-identical across refactors: a fixed short run's weights against a stored digest.

The digest was recorded on the code before the Trainer was split into the loop and its callbacks
(issue 24). It holds for one torch version and one CPU kernel family: elsewhere the test skips
(another torch or another vector unit may round differently), saying which.
"""

import pytest
import torch

import condgan
from condgan.checkpoint.integrity import content_sha256

RECORDED = {
    "torch": "2.14.1",
    "cpu": "AVX2",
    # mnist_mlp's networks on the synthetic set, 7 steps at batch 16, EMA on, checkpoints at 3 and 6, one
    # intra-op thread (the suite's, set in conftest.py: another thread count sums in another order)
    "mnist_mlp": "sha256:c2bff35fefcad2daa14a5939781fd4f17b1868823964b615d23f509d9c2d5379",
}


def _run(tmp_path, steps, resume_at=None):
    overrides = {"data.name": "synthetic", "data.options": {"per_class": 8}, "model.image_shape": (1, 16, 16),
                 "batch_size": 16, "steps": steps, "device": "cpu", "loggers": (), "log_every": 2,
                 "checkpoint_every": 3, "sample_every": 4, "out_dir": str(tmp_path / "run"), "ema_decay": 0.9}
    if resume_at is None:
        trainer = condgan.Trainer(condgan.run_config("mnist_mlp", overrides))
        trainer.train()
    else:
        first = condgan.Trainer(condgan.run_config("mnist_mlp", {**overrides, "steps": resume_at}))
        first.train()
        trainer = condgan.Trainer.from_checkpoint(tmp_path / "run", steps=steps)
        trainer.train()
    return content_sha256({"g": trainer.gan.generator.state_dict(), "d": trainer.gan.discriminator.state_dict(),
                           "ema": trainer.ema.module.state_dict()})


def _skip_elsewhere():
    here = (torch.__version__.split("+")[0], torch.backends.cpu.get_cpu_capability())
    if here != (RECORDED["torch"], RECORDED["cpu"]):
        pytest.skip(f"digest recorded under torch {RECORDED['torch']} on {RECORDED['cpu']}; this is torch {here[0]} on {here[1]}")


def test_a_fixed_short_run_trains_bit_identically_to_the_recorded_digest(tmp_path):
    _skip_elsewhere()
    assert _run(tmp_path, 7) == RECORDED["mnist_mlp"]


def test_a_resumed_run_trains_bit_identically_to_the_recorded_digest(tmp_path):
    _skip_elsewhere()
    assert _run(tmp_path, 7, resume_at=3) == RECORDED["mnist_mlp"]  # resume is exact: the same weights
