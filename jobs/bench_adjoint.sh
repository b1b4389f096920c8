#!/usr/bin/env bash
# Gradient of the differentiable PM model against its forward run (issue "Differentiable PM"):
# 64^3 particles on a 128^3 double mesh, 128 Mpc/h, at 5 and 20 steps, one process each (peak
# memory is per process). Usage: bash jobs/bench_adjoint.sh [NP]
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:-1}
# CAUSTIC_BENCH_DIR: the bench/ folder of another build (e.g. of an older commit, to compare);
# without it this checkout is built and its build/bench used.
bench_dir=${CAUSTIC_BENCH_DIR:-}
if [ -z "$bench_dir" ]; then
  bash scripts/build.sh release >/dev/null
  bench_dir=build/bench
fi
for steps in 5 20; do
  bash jobs/mpirun.sh "$np" "$bench_dir"/caustic-adjoint-bench --particles 64 --mesh 128 --box 128 \
    --steps "$steps"
done
