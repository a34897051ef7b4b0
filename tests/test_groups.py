"""Groups of runs (issue 26): ``condgan train --seeds/--sweep`` trains K runs (side by side where they
stack, tests/test_stacked.py; with ``--no-stack`` one after another), each
equal to its run trained alone, resumable, and usable on its own; bad seeds and sweeps are one line."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from training_helpers import tiny_set_args

import condgan
from condgan import checkpoint as ckpt
from condgan.cli import main
from condgan.runs.groups import GroupError, parse_seeds, parse_sweep, plan_group, read_group


def run(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def train(out, *extra):
    return ["train", *tiny_set_args(), "--out", out, "--device", "cpu", "--loggers", "console", "--log-every", 2, *extra]


def weights(run_dir) -> dict[str, torch.Tensor]:
    """G and D weights and both optimizers' moments of the run's latest checkpoint."""
    state = ckpt.read_file(ckpt.latest_checkpoint(run_dir))
    flat = {}
    for name in ("generator", "discriminator"):
        flat.update({f"{name}.{k}": v for k, v in state[name].items()})
    for name in ("opt_g", "opt_d"):
        for index, slots in state[name]["state"].items():
            flat.update({f"{name}.{index}.{k}": torch.as_tensor(v) for k, v in slots.items()})
    return flat


def assert_same(a, b) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    differ = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not differ, f"{a} and {b} differ in {differ[:4]}"


# -- parsing -------------------------------------------------------------------------------------
def test_seeds_parse_as_ranges_and_lists():
    assert parse_seeds("0-3") == (0, 1, 2, 3)
    assert parse_seeds("0,3,5") == (0, 3, 5)
    assert parse_seeds("0-2, 8") == (0, 1, 2, 8)
    for bad, said in [("7-0", "runs backwards"), ("a", "not a seed"), ("1,,2", "not a seed"), ("-1", "not a seed"),
                      ("0-2,2", "given twice")]:
        with pytest.raises(GroupError, match=said):
            parse_seeds(bad)


def test_sweeps_parse_values_as_python_literals():
    assert parse_sweep("model.g_optimizer.lr=1e-4,2e-4") == ("model.g_optimizer.lr", (1e-4, 2e-4))
    assert parse_sweep("loss=lsgan,hinge") == ("loss", ("lsgan", "hinge"))
    assert parse_sweep("generator.backbone_options.widths=(8,8),(16,16)") == (
        "generator.backbone_options.widths", ((8, 8), (16, 16)))
    for bad, said in [("lr", "expected KEY=v1"), ("lr=1e-4", "at least two"), ("lr=1,,2", "empty value"),
                      ("w=(1,2", "unbalanced"), ("lr=1,1", "given twice")]:
        with pytest.raises(GroupError, match=said):
            parse_sweep(bad)


def test_a_grid_names_each_run_by_what_varies():
    runs = plan_group((0, 1), [parse_sweep("model.g_optimizer.lr=1e-4,2e-4"), parse_sweep("model.d_optimizer.lr=1e-4,3e-4")])
    assert len(runs) == 8
    assert runs[0].name == "model.g_optimizer.lr=0.0001,model.d_optimizer.lr=0.0001,seed_0"  # two 'lr': whole keys
    assert runs[-1].overrides == {"model.g_optimizer.lr": 2e-4, "model.d_optimizer.lr": 3e-4, "training.seed": 1}
    assert [r.name for r in plan_group((3,), [])] == ["seed_3"]
    with pytest.raises(GroupError, match="both by --seeds and by --sweep"):
        plan_group((0,), [parse_sweep("seed=1,2")])


# -- training ------------------------------------------------------------------------------------------
def test_run_k_of_a_group_equals_its_seed_trained_alone(tmp_path, capsys):
    code, out, err = run(train(tmp_path / "g", "--steps", 5, "--seeds", "0-2"), capsys)
    assert code == 0, err
    group = json.loads((tmp_path / "g" / "group.json").read_text())
    assert [r["name"] for r in group["runs"]] == ["seed_0", "seed_1", "seed_2"]
    assert [r["overrides"] for r in group["runs"]] == [{"training.seed": s} for s in range(3)]
    assert all(r["status"] == "done" and r["result"]["step"] == 5 for r in group["runs"])
    code, _, err = run(train(tmp_path / "alone", "--steps", 5, "--seed", 1), capsys)
    assert code == 0, err
    assert_same(tmp_path / "g" / "seed_1", tmp_path / "alone")
    with pytest.raises(AssertionError, match="differ"):  # the check can fail: seeds 0 and 1 differ
        assert_same(tmp_path / "g" / "seed_0", tmp_path / "alone")
    # each run is a run of its own: sampled alone
    code, _, err = run(["sample", tmp_path / "g" / "seed_2", "--per-class", 2, "--out", tmp_path / "s.npz"], capsys)
    assert code == 0, err


def test_a_sweep_sets_its_key_in_each_run(tmp_path, capsys):
    code, _, err = run(train(tmp_path / "g", "--steps", 2, "--sweep", "g_optimizer.lr=1e-4,3e-4"), capsys)
    assert code == 0, err
    lrs = [ckpt.read_file(ckpt.latest_checkpoint(tmp_path / "g" / name))["gan_config"]["g_optimizer"]["lr"]
           for name in ("lr=0.0001", "lr=0.0003")]
    assert lrs == [1e-4, 3e-4]


class InterruptOnce:
    """Sends SIGINT to this process at step 3 of the second run it sees start (a Ctrl-C mid-group)."""

    def __init__(self):
        self.starts = 0

    @condgan.hookimpl
    def on_train_start(self, trainer):
        self.starts += 1

    @condgan.hookimpl
    def on_step_end(self, trainer, step):
        if self.starts == 2 and step == 3:
            self.starts += 1
            os.kill(os.getpid(), signal.SIGINT)


def test_an_interrupted_group_resumes_every_unfinished_run_exactly(tmp_path, capsys):
    code, _, err = run(train(tmp_path / "straight", "--steps", 6, "--seeds", "0-2", "--no-stack"), capsys)
    assert code == 0, err
    condgan.register_plugin(InterruptOnce(), name="interrupt_once")
    try:
        code, _, err = run(train(tmp_path / "g", "--steps", 6, "--seeds", "0-2", "--checkpoint-every", 2, "--no-stack"), capsys)
    finally:
        condgan.unregister_plugin("interrupt_once")
    assert code == 130 and "interrupted in run seed_1 at step 3" in err and "--resume" in err
    assert [r.status for r in read_group(tmp_path / "g").runs] == ["done", "running", "pending"]
    code, out, err = run(["train", "--out", tmp_path / "g", "--resume", "--loggers", "console", "--no-stack"], capsys)
    assert code == 0, err
    assert "run 1/2: seed_1" in out and "resumed at step 3" in out and "run 2/2: seed_2" in out  # seed_0 skipped
    assert [r.status for r in read_group(tmp_path / "g").runs] == ["done"] * 3
    for name in ("seed_0", "seed_1", "seed_2"):
        assert_same(tmp_path / "g" / name, tmp_path / "straight" / name)


# -- bad input: one line, before any step ------------------------------------------------------------
@pytest.mark.parametrize("extra, said", [
    (["--seeds", "7-0"], "runs backwards"),
    (["--seeds", "x"], "'x' is not a seed"),
    (["--sweep", "g_optimizer.lr"], "expected KEY=v1"),
    (["--sweep", "g_optimizer.lr=1e-4,,2e-4"], "empty value"),
])
def test_a_bad_seed_list_or_sweep_is_one_line(tmp_path, capsys, extra, said):
    code, out, err = run(train(tmp_path / "g", "--steps", 2, *extra), capsys)
    assert code == 2 and said in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "g").exists()


def test_a_sweep_of_an_unknown_key_fails_before_any_run(tmp_path, capsys):
    code, out, err = run(train(tmp_path / "g", "--steps", 2, "--sweep", "g_optimizer.lrr=1e-4,2e-4"), capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "group run lrr=0.0001: unknown config key 'model.g_optimizer.lrr'; did you mean 'model.g_optimizer.lr'" in err
    assert not (tmp_path / "g").exists()


def test_a_group_is_not_planned_twice_and_seed_with_seeds_is_refused(tmp_path, capsys):
    code, _, err = run(train(tmp_path / "g", "--steps", 1, "--seeds", "0"), capsys)
    assert code == 0, err
    code, _, err = run(train(tmp_path / "g", "--steps", 1, "--seeds", "0"), capsys)
    assert code == 1 and "already holds a group" in err and "--resume" in err
    code, _, err = run(train(tmp_path / "h", "--steps", 1, "--seeds", "0", "--seed", "3"), capsys)
    assert code == 1 and "--seed and --seeds" in err
