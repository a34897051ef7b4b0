"""The evaluation workflow end to end on coloured shapes, through the command line, with a browser screenshot.

    PYTHONPATH=. python benchmarks/eval_end_to_end.py --out runs/e2e [--steps 600] [--size 32]

Writes the test suite's coloured shapes (squares, discs and bars; ``tests/metrics_helpers.py``) as an
image folder (``OUT/shapes/train|test/<class>/*.png``), then runs ``condgan train-classifier --dataset
imagefolder``,
``condgan train`` with in-training metrics (``--eval-every``), ``condgan eval`` of the run and its
``best.pt`` in one table, ``condgan report`` and, when Chromium is installed,
``benchmarks/report_screenshot.sh`` on the page. Prints the seconds per in-training evaluation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/e2e")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--eval-every", type=int, default=100)
    args = parser.parse_args()

    from condgan.cli import main as condgan
    from metrics_helpers import write_shapes_folder

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    folder = write_shapes_folder(out / "shapes", args.size)
    judge, run = out / "judge_shapes.pt", out / "run"
    data = ["--dataset", "imagefolder", "--data-root", str(folder)]
    steps = [
        ["train-classifier", *data, "--out", str(judge), "--arch", "judge-cnn", "--epochs", "3"],
        ["train", "--preset", "dcgan_projection", *data, "--image-size", str(args.size), "--out", str(run),
         "--steps", str(args.steps), "--device", "cpu", "--eval-every", str(args.eval_every), "--judge", str(judge),
         "--sample-every", str(args.eval_every), "--loggers", "console,grid"],
        ["eval", str(run), str(run / "best.pt"), "--judge", str(judge), "--data-root", str(folder), "--per-class", "300",
         "--json", str(run / "eval.json")],
        ["report", str(run)],
    ]
    for argv in steps:
        print("$ condgan " + " ".join(argv), flush=True)
        if condgan(argv) != 0:
            return 1
    entries = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in entries if e["kind"] == "eval"]
    samples = next(e["samples"] for e in entries if e["kind"] == "protocol")
    seconds = [e["seconds"] for e in evals]
    print(f"in-training evaluations: {len(evals)}, seconds each: median {sorted(seconds)[len(seconds) // 2]:.2f} "
          f"(min {min(seconds):.2f}, max {max(seconds):.2f}), {samples} samples each")
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        subprocess.run(["bash", str(REPO / "benchmarks" / "report_screenshot.sh"), str(run / "report.html"), str(out / "report.png")],
                       check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
