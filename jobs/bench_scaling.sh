#!/usr/bin/env bash
# Strong scaling of the PM step from 1 to 2 ranks, in runs paired in time (this machine's speed
# drifts over minutes, so each 2-rank run is compared with the 1-rank run just before it).
# 128^3 particles, 256^3 single-precision mesh, 256 Mpc/h, 8 steps, measured FFTW plans.
# Prints one line per pair: step times, efficiency T1 / (2 T2), the same for the four FFTs alone
# (same plans, same runs), step / four FFTs at 2 ranks, bytes per particle at 2 ranks.
# Usage: bash jobs/bench_scaling.sh [PAIRS] [single|double]
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-8}
prec=${2:-single}
# CAUSTIC_BENCH_DIR: the bench/ folder of another build (e.g. of an older commit, to compare);
# without it this checkout is built and its build/bench used.
bench_dir=${CAUSTIC_BENCH_DIR:-}
if [ -z "$bench_dir" ]; then
  bash scripts/build.sh release >/dev/null
  bench_dir=build/bench
fi
mkdir -p output/bench
bench() {
  bash jobs/mpirun.sh "$1" "$bench_dir"/caustic-bench --particles 128 --mesh 256 --box 256 \
    --precision "$prec" --steps 8 --plan measure --wisdom output/bench/fftw.wisdom
}
field() { awk -v k="$1" -v n="$2" '$0 ~ k {print $n; exit}'; }
printf "%-5s %10s %11s %11s %16s %16s %15s\n" pair "1 rank [s]" "2 ranks [s]" efficiency \
  "4 FFTs: eff." "step/4 FFTs (2)" "bytes/particle"
for i in $(seq "$pairs"); do
  one=$(bench 1)
  two=$(bench 2)
  t1=$(echo "$one" | field "^  step " 2)
  t2=$(echo "$two" | field "^  step " 2)
  f1=$(echo "$one" | field "four FFTs" 3)
  f2=$(echo "$two" | field "four FFTs" 3)
  r2=$(echo "$two" | field "four FFTs" 10)
  m2=$(echo "$two" | field "bytes per particle" 4)
  eff=$(awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.1f%%", 100 * a / (2 * b)}')
  feff=$(awk -v a="$f1" -v b="$f2" 'BEGIN {printf "%.1f%%", 100 * a / (2 * b)}')
  printf "%-5s %10s %11s %11s %16s %16s %15s\n" "$i" "$t1" "$t2" "$eff" "$feff" "$r2" "$m2"
done
