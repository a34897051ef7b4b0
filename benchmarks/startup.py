"""Whole-process time of ``condgan train`` against the reference loop: start-up, shut-down, N steps.

Each contender runs as a fresh process (``PYTHONUNBUFFERED=1``), in interleaved rounds; the times
of its output lines are read as they arrive:

- **start-up**: launch to the first step's line (``condgan train --steps 1 --log-every 1``: "step
  1/1"; the reference loop: its first "[Epoch 0/200] [Batch 0/...]" line). It holds what every
  PyTorch training script pays (the interpreter, ``import torch`` and the ``torch._dynamo`` import
  that ``torch.optim``'s first optimizer triggers: the "torch + Adam" row) and what is the
  script's own (data, model, checks).
- **shut-down**: the first step's line to the process's exit (condgan: the final checkpoint, the
  sample grid, ``generator.pt``; the reference loop saves nothing at the end).
- **N steps**: the whole process for ``--steps N`` (the reference loop runs 5 warm-up steps more).

Example::

    python benchmarks/startup.py --data-root ../shared/data --steps 1000 --rounds 2 --json results/startup_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
PY = sys.executable


def timed_lines(cmd: list[str], marker: str) -> tuple[float, float]:
    """(seconds to the first stdout line containing ``marker``, seconds from it to the exit)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen = None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if seen is None and marker in line:
            seen = time.perf_counter()
    if proc.wait() != 0 or seen is None:
        raise RuntimeError(f"{' '.join(cmd)} failed or printed no {marker!r} line:\n{''.join(lines[-20:])}")
    end = time.perf_counter()
    return seen - start, end - seen


def whole(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="torchvision MNIST layout (DIR/MNIST/raw)")
    parser.add_argument("--steps", type=int, default=1000, help="steps of the whole-process rows (0: leave them out)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="condgan-startup-"))

    def condgan(steps: int, name: str, log_every: int) -> list[str]:
        return [PY, "-m", "condgan", "train", "--preset", "mnist_mlp", "--data-root", args.data_root, "--device", "cpu",
                "--out", str(tmp / name), "--steps", str(steps), "--log-every", str(log_every)]

    def reference(steps: int) -> list[str]:
        return [PY, str(HERE / "reference_loop.py"), "--data-root", args.data_root, "--device", "cpu",
                "--steps", str(steps), "--print"]

    floors = {"python + import torch": [PY, "-c", "import torch"],
              "torch + Adam (torch._dynamo import)": [PY, "-c", "import torch; torch.optim.Adam([torch.zeros(1, requires_grad=True)])"]}
    times: dict[str, list] = {}
    for r in range(args.rounds):
        for name, cmd in floors.items():
            times.setdefault(name, []).append(whole(cmd))
        times.setdefault("condgan train", []).append(timed_lines(condgan(1, f"one_{r}", 1), "step 1/1"))
        times.setdefault("reference loop", []).append(timed_lines(reference(1), "[Batch 0/"))
        if args.steps:
            times.setdefault(f"condgan train, {args.steps} steps", []).append(
                whole(condgan(args.steps, f"many_{r}", args.steps)))
            times.setdefault(f"reference loop, {args.steps} (+5) steps", []).append(whole(reference(args.steps)))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    rows = []
    for name, values in times.items():
        if isinstance(values[0], tuple):
            rows.append({"what": name, "start_up_s": statistics.median(v[0] for v in values),
                         "shut_down_s": statistics.median(v[1] for v in values), "runs": [list(v) for v in values]})
        else:
            rows.append({"what": name, "whole_s": statistics.median(values), "runs": values})
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "rounds": args.rounds,
              "load_average": list(os.getloadavg()), "rows": rows}
    print("| process | start-up s (to step 1) | shut-down s (step 1 to exit) | whole process s |")
    print("|---|---:|---:|---:|")
    for row in rows:
        cells = [f"{row[k]:.2f}" if k in row else "" for k in ("start_up_s", "shut_down_s", "whole_s")]
        print(f"| {row['what']} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
