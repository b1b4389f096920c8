#!/usr/bin/env bash
# PM validation (not a CI test): 128^3 particles, 256^3 mesh, 256 Mpc/h, 40 steps to z = 0, then
# the z = 0 power spectrum against linear theory and halofit (ratio table and plot).
# Usage: bash validation/pm_validation.sh [NP]   (default 2 ranks)
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:-2}
bash scripts/build.sh release >/dev/null
bash jobs/mpirun.sh "$np" build/src/caustic run params/validation_pm.toml --overwrite
/usr/bin/python3 validation/pm_validation.py output/validation_pm -o output/validation_pm/pk_validation.png \
  | tee output/validation_pm/pk_validation.txt
/usr/bin/python3 validation/hmf_validation.py output/validation_pm -o output/validation_pm/hmf_validation.png \
  | tee output/validation_pm/hmf_validation.txt
# FoF alone on the final snapshot, timed (compare with the step times of run_summary.json).
bash jobs/mpirun.sh "$np" build/src/caustic fof output/validation_pm/snapshot_a1.0000.hdf5 \
  -o output/validation_pm/halos_standalone.hdf5
