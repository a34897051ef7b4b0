"""Issue 27's protocol on the coloured shapes: three judges, one preset, every figure under each judge.

    PYTHONPATH=. python benchmarks/shapes_quality.py --out runs/shapes27 [--steps 4000] [--seed 0] [--threads 2]

Writes the evaluation benchmark's coloured shapes (``tests/metrics_helpers.py``: a square, a disc, a
horizontal and a vertical bar, each in a random colour on dark noise; 4,000 training and 1,000 test
images at 32 px) as an image folder, trains three judges on it independently (the data-sized CNN
seed 0, the small ResNet seed 1, the CNN with rotations and shifts seed 2), trains ``--preset``
for ``--steps`` steps (timed, ``--threads`` threads) and scores 250 samples per class under the
three judges against the 1,000 test images: label accuracy (target >= 0.95 under every judge),
FID on each judge's features, and the worst-scored samples of each class as grids
(``OUT/worst_s<seed>_generated_J<k>.png``). Judges and folder are kept and reused when present.
Prints the evaluation and writes ``OUT/eval_s<seed>.json`` and ``OUT/summary_s<seed>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

JUDGES = (("cnn", ["--arch", "cnn", "--seed", "0"]), ("resnet", ["--arch", "resnet", "--seed", "1"]),
          ("aug", ["--arch", "cnn", "--augment", "--seed", "2"]))


def condgan(argv: list[str], threads: int, log: Path) -> float:
    """Runs ``condgan ARGV`` in its own process with ``threads`` threads; its output to ``log``; the seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    with log.open("w") as f:
        done = subprocess.run([sys.executable, "-m", "condgan", *argv], stdout=f, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # eval exits 1 when a target is missed: still a result
        raise SystemExit(f"condgan {' '.join(argv)} failed (exit {done.returncode}); see {log}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/shapes27")
    parser.add_argument("--preset", default="dcgan_projection_ac")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="threads of the training run (judges: 1 each)")
    parser.add_argument("--judge-epochs", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], help="a config override for the run (as condgan train)")
    args = parser.parse_args()

    from metrics_helpers import write_shapes_folder

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folder = out / "shapes"
    if not (folder / "test").is_dir():
        write_shapes_folder(folder, 32)
    data = ["--dataset", "imagefolder", "--data-root", str(folder)]
    judges = []
    for name, recipe in JUDGES:
        path = out / f"judge_{name}.pt"
        if not path.exists():
            seconds = condgan(["train-classifier", *data, "--image-size", "32", *recipe, "--epochs", str(args.judge_epochs),
                               "--out", str(path)], 1, out / f"judge_{name}.log")
            print(f"judge {name}: {seconds:.0f} s, {(out / f'judge_{name}.log').read_text().splitlines()[-1]}", flush=True)
        judges.append(str(path))
    run = out / f"run_s{args.seed}"
    overrides = [a for s in args.set for a in ("--set", s)]
    seconds = condgan(["train", "--preset", args.preset, *data, "--image-size", "32", *overrides, "--seed", str(args.seed),
                       "--steps", str(args.steps), "--device", "cpu", "--out", str(run)], args.threads, out / f"train_s{args.seed}.log")
    print(f"trained {args.steps} steps in {seconds:.0f} s ({args.steps / seconds:.1f} steps/s, {args.threads} threads)", flush=True)
    evaluation = out / f"eval_s{args.seed}.json"
    condgan(["eval", str(run), "--judges", ",".join(judges), *data[2:], "--no-parzen", "--per-class", "250",
             "--target", "label_accuracy>=0.95", "--worst-grid", str(out / f"worst_s{args.seed}.png"), "--json", str(evaluation)],
            args.threads, out / f"eval_s{args.seed}.txt")
    print((out / f"eval_s{args.seed}.txt").read_text(), flush=True)
    summary = {"preset": args.preset, "overrides": args.set, "steps": args.steps, "seed": args.seed, "threads": args.threads,
               "train_seconds": round(seconds, 1), "judges": judges, "eval": str(evaluation)}
    (out / f"summary_s{args.seed}.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
