#!/usr/bin/env bash
# The standard PM benchmark set (issue "PM performance"): 64^3 particles on a 128^3 mesh
# (128 Mpc/h) and 128^3 on 256^3 (256 Mpc/h), at 1 and 2 ranks, single and double precision,
# one process per configuration. FFTW plans are measured once and kept as wisdom in
# output/bench/fftw.wisdom. Usage: bash jobs/bench.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-5}
bash scripts/build.sh release >/dev/null
mkdir -p output/bench
echo "# caustic-bench on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for cfg in "64 128 128" "128 256 256"; do
  set -- $cfg
  for prec in single double; do
    for np in 1 2; do
      bash jobs/mpirun.sh "$np" build/bench/caustic-bench --particles "$1" --mesh "$2" --box "$3" \
        --precision "$prec" --steps "$steps" --plan measure --wisdom output/bench/fftw.wisdom
    done
  done
done
