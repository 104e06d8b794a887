#!/usr/bin/env bash
# The paper's MNIST-SVHN add-one experiment on one CUDA device, ready for the first GPU run.
#
#   WYNERKIT_DATA=/path/to/data bash benchmarks/gpu_paper.sh [SEEDS]     (default seeds: 0,1,2)
#
# 1. Trains specs/paper/mnist-svhn-addone.yaml once (lambda_CI 1, the paper's settings: 50 epochs, the
#    `paper` networks) into runs/gpu-paper/, with coherence, FD, probe and reconstruction at the end.
# 2. Runs the Figure 2 sweep on the same spec (benchmarks/addone_sweep.py --spec ...: lambda_CI in
#    {0, 0.1, 0.5, 1} plus the degenerate-local and iiae baselines, every seed) into sweeps/gpu-paper-addone/,
#    and writes addone_sweep.json, .md and .png to benchmarks/results/gpu/ (the CPU results stay where they are).
# Both steps resume where an earlier invocation stopped. The data root must hold MNIST and SVHN
# (`wynerkit data download mnist svhn`). DRY_RUN=1 prints the commands (and checks the spec) without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds="${1:-0,1,2}"
spec=specs/paper/mnist-svhn-addone.yaml
python="${PYTHON:-.venv/bin/python}"
run=("$python" -m wynerkit run "$spec" --set train.device=cuda --out runs/gpu-paper)
sweep=("$python" benchmarks/addone_sweep.py --spec "$spec" --seeds "$seeds" --set train.device=cuda
  --out sweeps/gpu-paper-addone --results benchmarks/results/gpu)

if [ "${DRY_RUN:-0}" = 1 ]; then
  "$python" -m wynerkit spec validate "$spec" --set train.device=cuda >&2
  printf '%q ' "${run[@]}"; echo
  printf '%q ' "${sweep[@]}"; echo
  exit 0
fi
if [ -z "${WYNERKIT_DATA:-}" ]; then
  echo "gpu_paper.sh: set WYNERKIT_DATA to the data root holding mnist/ and svhn/" >&2
  exit 2
fi
if ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_paper.sh: no CUDA device is visible to torch; run this on a GPU machine (DRY_RUN=1 to check it)" >&2
  exit 2
fi
latest=$(ls -d runs/gpu-paper/mnist-svhn-addone/*/ 2>/dev/null | tail -n 1 || true)
if [ -n "$latest" ] && ! grep -q '"status": "finished"' "$latest/summary.json" 2>/dev/null; then
  run=("$python" -m wynerkit run --resume "$latest")
fi
"${run[@]}"
"${sweep[@]}"
