"""Run by tests/test_campaign.py: a training run killed at random points, resumed each time, compared
bit for bit with an uninterrupted run.

    python tests/fault_worker.py WORK_DIR KILLS SEED  ->  one JSON line on stdout

The process imports torch and condgan once and forks every training process from itself (no
start-up cost per kill). Each child resumes the run in WORK_DIR/run from its latest checkpoint (or
starts it) and trains to STEPS with a checkpoint every CHECKPOINT_EVERY steps; every checkpoint
write pauses halfway through its bytes (WRITE_PAUSE_S), so that many kills land inside a write. The
parent kills each child after a random delay: mostly SIGKILL, sometimes SIGTERM or SIGINT (which
the Trainer turns into a last checkpoint). After KILLS kills one child trains to the end; its
final checkpoint and generator.pt must equal those of one uninterrupted child (WORK_DIR/reference)
in every tensor, and no temporary file may be left.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from training_helpers import small_data, tiny_config  # noqa: E402

from condgan import Trainer, TrainerConfig  # noqa: E402
from condgan import checkpoint as ckpt  # noqa: E402

STEPS, CHECKPOINT_EVERY, WRITE_PAUSE_S = 240, 3, 0.02


def slow_saves() -> None:
    """Every torch.save writes half its bytes, pauses, then writes the rest (this process only)."""
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)):
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(WRITE_PAUSE_S)
        f.write(data[len(data) // 2:])

    torch.save = save


def train(run: Path, slow: bool) -> None:
    """One training process: resume the run in ``run`` (or start it) and train to STEPS."""
    torch.set_num_threads(1)
    if slow:
        slow_saves()
    if ckpt.latest_checkpoint(run) is None:
        config = TrainerConfig(device="cpu", loggers=(), out_dir=str(run), steps=STEPS, checkpoint_every=CHECKPOINT_EVERY,
                               log_every=4, sample_every=0, ema_decay=0.9, keep_last=2)
        trainer = Trainer(tiny_config(**{"discriminator.backbone_options.dropout": 0.4}), config, data=small_data())
    else:
        trainer = Trainer.from_checkpoint(run, data=small_data())
    trainer.train()


def fork_training(run: Path, slow: bool = True) -> int:
    pid = os.fork()
    if pid == 0:  # the child
        code = 0
        try:
            train(run, slow)
        except KeyboardInterrupt:  # SIGINT before the Trainer's handler was installed
            code = 128 + signal.SIGINT
        except BaseException:  # noqa: BLE001 - report and exit with a code the parent checks
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    return pid


def latest_step(run: Path) -> int:
    path = ckpt.latest_checkpoint(run)
    return -1 if path is None else ckpt.read_file(path)["step"]


def tensors(obj, prefix=""):
    """Every tensor in a file's content, by dotted path (elapsed_s and other numbers left out)."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key != "trainer_config":
                yield from tensors(value, f"{prefix}.{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from tensors(value, f"{prefix}[{i}]")


def finish(run: Path) -> None:
    """One process resumes the run and trains to the end undisturbed (or, when the last kill came
    after the final checkpoint, writes the generator.pt that was cut short); nothing when the run is
    complete (a kill after its end)."""
    generator = run / ckpt.GENERATOR_FILE
    if latest_step(run) == STEPS and generator.is_file() and ckpt.read_file(generator)["step"] == STEPS:
        return
    pid = fork_training(run)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the final resumed run failed"


def compare(run: Path, reference: Path, summary: dict) -> list[str]:
    """Tensors of the final checkpoint and generator.pt of ``run`` that differ from ``reference``'s."""
    mismatched = []
    for name, path in (("checkpoint", lambda d: ckpt.latest_checkpoint(d)), ("generator", lambda d: d / "generator.pt")):
        a, b = dict(tensors(ckpt.read_file(path(run)))), dict(tensors(ckpt.read_file(path(reference))))
        if a.keys() != b.keys():
            mismatched.append(f"{name}: entries differ")
        mismatched += [f"{name}{k}" for k in a if k in b and not (a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]))]
        summary[f"{name}_tensors_compared"] = len(a)
    if ckpt.read_file(ckpt.latest_checkpoint(run))["step"] != STEPS:
        mismatched.append("final step")
    mismatched += [f"left behind: {p.name}" for p in run.rglob("*") if ".tmp" in p.name]
    return mismatched


def main(work: str, kills: str, seed: str) -> None:
    work_dir, kills_wanted, rng = Path(work), int(kills), random.Random(int(seed))
    run, reference = work_dir / "run", work_dir / "reference"
    torch.set_num_threads(1)
    Trainer(tiny_config(), TrainerConfig(device="cpu", loggers=(), steps=2), data=small_data()).train()  # warm up once, here
    pid = fork_training(reference, slow=False)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the uninterrupted run failed"

    started = time.monotonic()
    summary = {"kills": 0, "sigkill": 0, "sigterm": 0, "sigint": 0, "inside_write": 0, "finished_before_kill": 0,
               "orphans_seen": 0, "restarts": 0, "steps_after_each": []}
    previous = -1
    while summary["kills"] < kills_wanted:
        pid = fork_training(run)
        summary["restarts"] += 1
        time.sleep(rng.uniform(0.05, 0.45))
        sig = rng.choices([signal.SIGKILL, signal.SIGTERM, signal.SIGINT], weights=[8, 1, 1])[0]
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code == 0 and sig == signal.SIGKILL:
            summary["finished_before_kill"] += 1
        elif code not in (0, -signal.SIGKILL, 128 + sig, -sig):
            raise SystemExit(f"a training process failed with exit code {code}")
        else:
            summary["kills"] += 1
            summary[{signal.SIGKILL: "sigkill", signal.SIGTERM: "sigterm", signal.SIGINT: "sigint"}[sig]] += 1
        orphans = [p for folder in (run, run / ckpt.CHECKPOINT_DIR) if folder.is_dir() for p in folder.iterdir()
                   if ".tmp" in p.name]
        summary["orphans_seen"] += len(orphans)
        summary["inside_write"] += bool(orphans) and sig == signal.SIGKILL
        step = latest_step(run)  # `latest` is valid after every kill ...
        assert step >= previous, f"latest moved backwards: {previous} -> {step}"  # ... and never moves back
        summary["steps_after_each"].append(step)
        previous = step
        if step == STEPS:  # the run ended before enough kills: finish it, check it, then start it again
            finish(run)
            summary["mismatched"] = summary.get("mismatched", []) + compare(run, reference, summary)
            summary["runs_compared"] = summary.get("runs_compared", 0) + 1
            for path in sorted(run.iterdir()):
                if path.is_dir():
                    for inner in path.iterdir():
                        inner.unlink()
                    path.rmdir()
                else:
                    path.unlink()
            previous = -1
    finish(run)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["mismatched"] = summary.get("mismatched", []) + compare(run, reference, summary)
    summary["runs_compared"] = summary.get("runs_compared", 0) + 1
    print(json.dumps(summary))


if __name__ == "__main__":
    main(*sys.argv[1:])
