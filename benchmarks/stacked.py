"""Total training steps/s of K runs: stacked in one process, K separate processes, K one after another.

    python benchmarks/stacked.py [--ks 1,2,4,8,16] [--threads 1] [--steps 6] [--rounds 2] [--json out.json]

For ``mnist_mlp`` (batch 64) on random data of MNIST's shape (6,400 images of 1x32x32 in [-1, 1],
random labels: throughput does not depend on the pixels). Each contender times ``--steps`` steps
of each of its K runs after one warm-up step each:

- ``stacked``: K trainers' runs in one :class:`condgan.training.stacked.StackedStep` (bitwise the
  solo runs on the CPU), ``steps`` stacked steps;
- ``sequential``: the K trainers' own fast steps (``FastStep``) one run after another in one process;
- ``processes``: K processes started together, each one run with ``--threads`` threads, timed from
  a common start (after their warm-up) to the last one's end.

Total steps/s = K x steps / wall seconds. Rounds interleave the contenders (every K, every
contender, then again); ``ratio`` is a contender's total steps/s over one run's (``sequential`` at
K=1) in the same round, so machine load shifts cancel. The JSON holds every round; the table shows
the median over rounds.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_trainers(k: int, n_images: int = 6400):
    from condgan.resolve import run_config
    from condgan.training.stacked import global_generator
    from condgan.training.trainer import Trainer

    gen = torch.Generator().manual_seed(0)
    images = torch.rand(n_images, 1, 32, 32, generator=gen) * 2 - 1
    labels = torch.randint(0, 10, (n_images,), generator=gen)
    trainers, gens = [], []
    for seed in range(k):
        run = run_config("mnist_mlp", {"training.seed": seed, "training.device": "cpu", "training.steps": 10**6,
                                       "training.loggers": ()})
        trainers.append(Trainer(run, data=(images, labels)))
        gens.append(global_generator(torch.device("cpu")))
    return trainers, gens


def time_stacked(k: int, steps: int) -> float:
    from condgan.training.stacked import StackedStep

    trainers, gens = make_trainers(k)
    step = StackedStep(trainers, gens)
    members = list(range(k))

    def one():
        step(members, [t._next_batch() for t in trainers])
        for t in trainers:
            t._advance()

    one()  # warm-up (and the layer probes)
    start = time.perf_counter()
    for _ in range(steps):
        one()
    return k * steps / (time.perf_counter() - start)


def time_sequential(k: int, steps: int) -> float:
    trainers, _ = make_trainers(k)
    for t in trainers:
        t.step_fn(*t._next_batch())  # warm-up
    start = time.perf_counter()
    for t in trainers:
        for _ in range(steps):
            t.step_fn(*t._next_batch())
            t._advance()
    return k * steps / (time.perf_counter() - start)


def time_processes(k: int, steps: int, threads: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        procs = [subprocess.Popen([sys.executable, __file__, "--child", str(steps), "--threads", str(threads), "--go", str(go)],
                                  stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
                 for _ in range(k)]
        for p in procs:  # each says "ready" after its warm-up step
            assert p.stdout.readline().strip() == "ready"
        go.touch()
        spans = [json.loads(p.stdout.readline()) for p in procs]
        for p in procs:
            p.wait()
    return k * steps / (max(s["end"] for s in spans) - min(s["start"] for s in spans))


def child(steps: int, go: Path) -> None:
    trainers, _ = make_trainers(1)
    t = trainers[0]
    t.step_fn(*t._next_batch())
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    start = time.time()
    for _ in range(steps):
        t.step_fn(*t._next_batch())
        t._advance()
    print(json.dumps({"start": start, "end": time.time()}), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="1,2,4,8,16")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--contenders", default="stacked,sequential,processes")
    parser.add_argument("--json")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--go", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child is not None:
        child(args.child, args.go)
        return 0
    ks = [int(k) for k in args.ks.split(",")]
    contenders = args.contenders.split(",")
    rounds = []
    for r in range(args.rounds):
        one = time_sequential(1, args.steps)
        row = {"round": r, "one_run_steps_per_s": one, "results": []}
        for k in ks:
            for name in contenders:
                rate = {"stacked": lambda: time_stacked(k, args.steps), "sequential": lambda: time_sequential(k, args.steps),
                        "processes": lambda: time_processes(k, args.steps, args.threads)}[name]()
                row["results"].append({"k": k, "contender": name, "steps_per_s": rate, "ratio": rate / one})
                print(f"round {r} K={k:2d} {name:10s} {rate:7.2f} steps/s  x{rate / one:.2f} of one run", flush=True)
        rounds.append(row)
    table = {}
    for row in rounds:
        for res in row["results"]:
            table.setdefault((res["k"], res["contender"]), []).append(res)
    summary = [{"k": k, "contender": c, "steps_per_s": statistics.median(x["steps_per_s"] for x in v),
                "ratio": statistics.median(x["ratio"] for x in v)} for (k, c), v in table.items()]
    print(f"\n| K | " + " | ".join(contenders) + " |  (total steps/s, x one run; median of rounds)")
    print("|---|" + "---|" * len(contenders))
    for k in ks:
        cells = [next(f"{s['steps_per_s']:.1f} (x{s['ratio']:.2f})" for s in summary if s["k"] == k and s["contender"] == c)
                 for c in contenders]
        print(f"| {k} | " + " | ".join(cells) + " |")
    result = {"protocol": {"preset": "mnist_mlp", "batch": 64, "data": "random, MNIST shape (6400 x 1x32x32), random labels",
                           "device": "cpu", "threads": args.threads, "steps_per_run": args.steps, "warmup_steps": 1,
                           "rounds": args.rounds, "torch": torch.__version__, "cpus": os.cpu_count(),
                           "load_average": os.getloadavg()},
              "rounds": rounds, "summary": summary}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
