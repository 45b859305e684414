#!/usr/bin/env bash
# GPU check (issue 20 item 5), at most 5 minutes on one GPU: TF4CTR and DNN training samples/s
# at Criteo shapes in float32, float32+XLA, mixed_float16 and mixed_float16+XLA (the TF4CTR/DNN
# time ratio; paper Table VI: 1.30x), and export parity of a model trained in mixed_float16.
# Writes benchmarks/results/gpu.md. From the repo root of a fresh GPU machine:
#
#   pip install -r requirements.txt
#   bash benchmarks/gpu_check.sh             # exit 2 (nothing written) when no GPU is visible
#   bash benchmarks/gpu_check.sh --smoke     # tiny sizes on any device (CPU too), prints only
#
# Extra arguments go to benchmarks/gpu_check.py (--steps, --repeats, --rows, --tolerance).
set -euo pipefail
cd "$(dirname "$0")/.."
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}"  # one GPU
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
exec timeout 295 python benchmarks/gpu_check.py "$@"
