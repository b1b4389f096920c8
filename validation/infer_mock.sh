#!/usr/bin/env bash
# Field-level reconstruction of a mock (params/infer_mock.toml): `caustic infer` from zero noise
# to the MAP, then the table (r(k) and T(k) of the reconstructed linear density against the
# truth at k = 0.1, 0.2, 0.5 h/Mpc, the MAP's -log posterior against the truth's) and the plots
# (validation/plot_infer.py). Usage: validation/infer_mock.sh [NP] [--set ...]
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:-2}
shift || true
out=$(sed -n 's/^directory = "\(.*\)"/\1/p' params/infer_mock.toml)
for a in "$@"; do
  case "$a" in output.directory=*) out=${a#output.directory=}; out=${out//\"/} ;; esac
done
sets=()
for a in "$@"; do sets+=(--set "$a"); done
bash jobs/mpirun.sh "$np" build/src/caustic infer params/infer_mock.toml --overwrite "${sets[@]}"
/usr/bin/python3 validation/plot_infer.py "$out"
