"""Training-step throughput of condgan against the reference loop and a matmul ceiling.

    python benchmarks/step_throughput.py --device cpu [--data-root ../shared/data] [--json out.json]

Prints one table per section (batch size, image size, number of classes; ``--ablation`` adds what
each part of the fast path buys) and the JSON of all figures. The logic lives in
``benchmarks/throughput.py``; its docstring states what is timed and how FLOPs
are counted. ``--quick`` runs every section in seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
