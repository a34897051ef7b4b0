#!/usr/bin/env bash
# One prepared GPU session: the CUDA tests, the throughput benchmark on CUDA, and a short CUDA training
# run with its evaluation. Writes logs and JSON under $OUT (default ./cuda_check).
#
#   OUT=out DATA=/path/with/MNIST CLASSIFIER=runs/classifier.pt MINUTES=2 bash benchmarks/cuda_check.sh
set -uo pipefail
OUT=${OUT:-cuda_check}; DATA=${DATA:-./data}; CLASSIFIER=${CLASSIFIER:-runs/classifier.pt}; MINUTES=${MINUTES:-2}
DEVICE=${DEVICE:-cuda}; BENCH=${BENCH:-1}; TESTS=${TESTS:-1}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
{ nvidia-smi -L; python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"; nproc; } 2>&1 | tee "$OUT/env.txt"

echo "== tests (CUDA ones run here, CPU ones too)"
XDIST=$(python3 -c "import xdist" 2>/dev/null && echo "-n 8")
[ "$TESTS" = 1 ] && timeout 240 python3 -m pytest -q -x -p no:cacheprovider $XDIST tests 2>&1 | tail -25 | tee "$OUT/tests.txt"

echo "== benchmark"
[ "$BENCH" = 1 ] && timeout 330 python3 benchmarks/step_throughput.py --device "$DEVICE" --data-root "$DATA" --ablation --min-time 0.3 \
    --json "$OUT/bench_cuda.json" --markdown "$OUT/bench_cuda.md" > "$OUT/bench_stdout.txt" 2> "$OUT/bench_stderr.txt"
echo "bench rc=$?"; tail -5 "$OUT/bench_stderr.txt"; cat "$OUT/bench_cuda.md" 2>/dev/null | head -60

echo "== train mnist_mlp on CUDA for $MINUTES min, then sample and evaluate"
timeout $((MINUTES * 60 + 90)) python3 -m condgan train --preset mnist_mlp --data-root "$DATA" --minutes "$MINUTES" \
    --device "$DEVICE" --out /tmp/cuda_run --loggers console --sample-every 0 > "$OUT/train.txt" 2>&1
echo "train rc=$?"; tail -4 "$OUT/train.txt"
python3 -m condgan sample /tmp/cuda_run --per-class 1000 --device "$DEVICE" --out /tmp/cuda_run/samples.npz \
    --grid "$OUT/grid.png" 2>&1 | tail -2
timeout 200 python3 -m condgan eval /tmp/cuda_run/samples.npz --data-root "$DATA" --classifier "$CLASSIFIER" \
    --device "$DEVICE" --json "$OUT/eval.json" 2>&1 | tail -30 | tee "$OUT/eval.txt"
