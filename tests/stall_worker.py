"""Run by tests/test_distributed.py as one of two gloo processes (RANK, WORLD_SIZE, MASTER_* set):
``condgan train`` through :func:`condgan.cli.main`, with process 1 stalling (SIGSTOP to itself) or
dying (os._exit) at its 5th training step.

    python tests/stall_worker.py RUN_DIR stop|exit TIMEOUT_S
"""

from __future__ import annotations

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from training_helpers import tiny_set_args  # noqa: E402

from condgan.training import trainer as trainer_module  # noqa: E402
from condgan.cli import main  # noqa: E402


def stall_at(step: int, how: str):
    build = trainer_module.Trainer._build_step

    def patched(self):
        fn = build(self)
        if self.process.rank != 1:
            return fn
        calls = [0]

        def step_fn(real, y):
            calls[0] += 1
            if calls[0] == step:
                if how == "stop":
                    os.kill(os.getpid(), signal.SIGSTOP)
                else:
                    os._exit(3)
            return fn(real, y)
        return step_fn

    trainer_module.Trainer._build_step = patched


if __name__ == "__main__":
    out, how, timeout = sys.argv[1:4]
    stall_at(5, how)
    sys.exit(main(["train", *tiny_set_args(), "--out", out, "--device", "cpu", "--loggers", "", "--steps", "1000",
                   "--checkpoint-every", "2", "--log-every", "1", "--sample-every", "0", "--process-group-timeout", timeout]))
