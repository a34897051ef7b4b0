"""K runs side by side (issue 26, item 1): weights stacked, each step computed for all runs at once,
each run bitwise its seed trained alone on the CPU, resumable, sampled alone; an architecture that
cannot be stacked says which part in one line and trains one after another; K too large for memory
is refused before the first step."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from test_groups import assert_same, run, train
from training_helpers import small_data, tiny_config, tiny_training

import condgan
from condgan.runs.groups import read_group
from condgan.runs.stacked import check_memory, run_bytes
from condgan.training.stacked import StackedStep, global_generator, refusal
from condgan.training.trainer import Trainer


def test_stacked_runs_equal_their_seeds_trained_alone_bitwise(tmp_path, capsys):
    code, out, err = run(train(tmp_path / "g", "--steps", 9, "--seeds", "0-2"), capsys)  # 9 steps: past an epoch's short batch
    assert code == 0, err
    assert "3 runs side by side, weights stacked" in out
    for seed in (0, 2):
        code, _, err = run(train(tmp_path / f"alone{seed}", "--steps", 9, "--seed", seed), capsys)
        assert code == 0, err
        assert_same(tmp_path / "g" / f"seed_{seed}", tmp_path / f"alone{seed}")
    with pytest.raises(AssertionError, match="differ"):  # the check can fail
        assert_same(tmp_path / "g" / "seed_1", tmp_path / "alone0")
    # a run's checkpoint is an ordinary one: sampled alone, the size of a solo checkpoint
    code, _, err = run(["sample", tmp_path / "g" / "seed_1", "--per-class", 2, "--out", tmp_path / "s.npz"], capsys)
    assert code == 0, err
    sizes = [os.path.getsize(condgan.checkpoint.latest_checkpoint(d)) for d in (tmp_path / "g" / "seed_0", tmp_path / "alone0")]
    assert abs(sizes[0] - sizes[1]) < 4096


def test_a_sweep_of_learning_rates_stacks_with_each_runs_own_adam(tmp_path, capsys):
    code, out, err = run(train(tmp_path / "g", "--steps", 3, "--sweep", "g_optimizer.lr=1e-4,3e-4"), capsys)
    assert code == 0 and "side by side" in out, err
    code, _, err = run(train(tmp_path / "alone", "--steps", 3, "--set", "g_optimizer.lr=3e-4"), capsys)
    assert code == 0, err
    assert_same(tmp_path / "g" / "lr=0.0003", tmp_path / "alone")


class InterruptAtStep3:
    """SIGINT to this process once, at step 3 of seed 1 (a Ctrl-C while the stacked runs train)."""

    sent = False

    @condgan.hookimpl
    def on_step_end(self, trainer, step):
        if trainer.config.seed == 1 and step == 3 and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def test_an_interrupted_stacked_group_resumes_exactly(tmp_path, capsys):
    code, _, err = run(train(tmp_path / "straight", "--steps", 6, "--seeds", "0-2"), capsys)
    assert code == 0, err
    condgan.register_plugin(InterruptAtStep3(), name="interrupt_stacked")
    try:
        code, _, err = run(train(tmp_path / "g", "--steps", 6, "--seeds", "0-2", "--checkpoint-every", 2), capsys)
    finally:
        condgan.unregister_plugin("interrupt_stacked")
    assert code == 130 and "--resume" in err
    assert "done" not in [r.status for r in read_group(tmp_path / "g").runs]
    code, out, err = run(["train", "--out", tmp_path / "g", "--resume", "--loggers", "console"], capsys)
    assert code == 0 and "side by side" in out and "at step" in out, err
    assert [r.status for r in read_group(tmp_path / "g").runs] == ["done"] * 3
    for name in ("seed_0", "seed_1", "seed_2"):
        assert_same(tmp_path / "g" / name, tmp_path / "straight" / name)


def test_an_architecture_that_cannot_be_stacked_says_which_part_and_trains_one_after_another(tmp_path, capsys):
    code, out, err = run(train(tmp_path / "g", "--steps", 2, "--seeds", "0-1",
                               "--set", "discriminator.backbone_options.spectral_norm=True"), capsys)
    assert code == 0, err
    line = [l for l in out.splitlines() if "one after another" in l]
    assert len(line) == 1 and "the discriminator's spectral norm" in line[0], out
    assert "run 2/2: seed_1" in out and "side by side" not in out
    code, out, err = run(train(tmp_path / "w", "--steps", 2, "--sweep", "generator.backbone_options.widths=(8,8,8,8),(16,16,16,16)"), capsys)
    assert code == 0 and "the sweep over generator.backbone_options.widths" in out, err


def test_too_many_runs_for_memory_are_refused_with_the_largest_k_that_fits():
    trainer = Trainer(tiny_config(), tiny_training(seed=0, steps=1, device="cpu", loggers=()), data=small_data())
    per_run = run_bytes(trainer)
    assert per_run > sum(p.numel() for p in trainer.gan.parameters()) * 4 * 4  # weights, grads, Adam's two moments
    check_memory(trainer, 4, available=3 * per_run)  # 1 built + 3 more fit
    with pytest.raises(ValueError, match="at most 3 fit") as info:
        check_memory(trainer, 8, available=2 * per_run + 1)
    assert "8 runs side by side" in str(info.value) and "--no-stack" in str(info.value)


def test_a_subset_of_the_runs_steps_without_touching_the_others():
    made = []
    for seed in (0, 1, 2):
        made.append((Trainer(tiny_config(), tiny_training(seed=seed, steps=3, device="cpu", loggers=()), data=small_data()),))
        made[-1] += (global_generator(torch.device("cpu")),)
    trainers = [t for t, _ in made]
    assert refusal(trainers) is None
    step = StackedStep(trainers, [g for _, g in made])
    before = {k: v.clone() for k, v in trainers[1].gan.state_dict().items()}
    step([0, 2], [trainers[0]._next_batch(), trainers[2]._next_batch()])
    after = trainers[1].gan.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # run 1 sat this step out: weights and running stats
    assert not torch.equal(trainers[0].gan.state_dict()["generator.backbone.layers.0.weight"],
                           trainers[1].gan.state_dict()["generator.backbone.layers.0.weight"])


def test_mode_seeking_runs_are_refused_in_one_line_naming_the_term():
    config = tiny_config(**{"loss_options.mode_seeking_weight": 0.1})
    trainers = [Trainer(config, tiny_training(seed=s, steps=1, device="cpu", loggers=()), data=small_data()) for s in (0, 1)]
    assert refusal(trainers) == "the loss's mode-seeking term (LeastSquaresLoss: mode_seeking_weight) is not stacked"
