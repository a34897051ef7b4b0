#!/usr/bin/env bash
# One prepared GPU session: the CUDA tests, the throughput benchmark on CUDA, and a short CUDA training
# run with its evaluation. Writes logs and JSON under $OUT (default ./cuda_check).
#
#   OUT=out DATA=/path/with/MNIST CLASSIFIER=runs/classifier.pt MINUTES=2 bash benchmarks/cuda_check.sh
set -uo pipefail
OUT=${OUT:-cuda_check}; DATA=${DATA:-./data}; CLASSIFIER=${CLASSIFIER:-runs/classifier.pt}; MINUTES=${MINUTES:-2}
DEVICE=${DEVICE:-cuda}; BENCH=${BENCH:-1}; TESTS=${TESTS:-1}; TRAIN=${TRAIN:-1}; DDP=${DDP:-1}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
{ nvidia-smi -L; python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"; nproc; } 2>&1 | tee "$OUT/env.txt"

echo "== tests (CUDA ones run here, CPU ones too)"
XDIST=$(python3 -c "import xdist" 2>/dev/null && echo "-n 8")
[ "$TESTS" = 1 ] && timeout 240 python3 -m pytest -q -p no:cacheprovider $XDIST tests 2>&1 | tail -25 | tee "$OUT/tests.txt"

echo "== DistributedDataParallel on CUDA: 2 processes on the first GPU (gloo), against one process on the whole batch"
[ "$DDP" = 1 ] && timeout 120 python3 -m torch.distributed.run --standalone --nproc_per_node=2 tests/distributed_worker.py \
    /tmp/ddp_cuda.pt cuda > "$OUT/ddp.txt" 2>&1 && timeout 60 python3 - <<'PY' 2>&1 | tee -a "$OUT/ddp.txt"
import sys, torch
sys.path.insert(0, "tests")
import condgan
from distributed_worker import BATCH, equivalence_config, train
torch.manual_seed(0)
single = train(condgan.GAN(equivalence_config()).cuda(), slice(0, 2 * BATCH), world_size=2, distributed=False)
ddp = torch.load("/tmp/ddp_cuda.pt")["weights"]
print("max |DDP - single| per step:", [f"{(a - b).abs().max().item():.2e}" for a, b in zip(ddp, single)])
PY
[ "$DDP" = 1 ] && tail -3 "$OUT/ddp.txt"

echo "== benchmark"
[ "$BENCH" = 1 ] && timeout 330 python3 benchmarks/step_throughput.py --device "$DEVICE" --data-root "$DATA" --ablation --min-time 0.3 \
    --json "$OUT/bench_cuda.json" --markdown "$OUT/bench_cuda.md" > "$OUT/bench_stdout.txt" 2> "$OUT/bench_stderr.txt"
echo "bench rc=$?"; tail -5 "$OUT/bench_stderr.txt"; cat "$OUT/bench_cuda.md" 2>/dev/null | head -60

[ "$TRAIN" = 1 ] || exit 0
echo "== train mnist_mlp on CUDA for $MINUTES min, then sample and evaluate"
timeout $((MINUTES * 60 + 90)) python3 -m condgan train --preset mnist_mlp --data-root "$DATA" --minutes "$MINUTES" \
    --device "$DEVICE" --out /tmp/cuda_run --loggers console --sample-every 0 > "$OUT/train.txt" 2>&1
echo "train rc=$?"; tail -4 "$OUT/train.txt"
python3 -m condgan sample /tmp/cuda_run --per-class 1000 --device "$DEVICE" --out /tmp/cuda_run/samples.npz \
    --grid "$OUT/grid.png" 2>&1 | tail -2
timeout 200 python3 -m condgan eval /tmp/cuda_run/samples.npz --data-root "$DATA" --classifier "$CLASSIFIER" \
    --device "$DEVICE" --json "$OUT/eval.json" 2>&1 | tail -30 | tee "$OUT/eval.txt"
