#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build, run the default simulation
# (params/default.toml) on 2 MPI ranks, and plot its outputs: the z = 0 power spectrum
# against linear theory and a projected density slice.
# Environment: CAUSTIC_NP (ranks, default 2), CAUSTIC_PARAMS (parameter file).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh release
np=${CAUSTIC_NP:-2}
params=${CAUSTIC_PARAMS:-params/default.toml}
bash jobs/mpirun.sh "$np" build/src/caustic run "$params" "$@"
out=$(/usr/bin/python3 -c "import sys, tomllib; print(tomllib.load(open(sys.argv[1], 'rb'))['output']['directory'])" "$params")
/usr/bin/python3 validation/plot_power.py "$out/power_a1.0000.txt" -o "$out/power_z0.png"
/usr/bin/python3 validation/plot_slice.py "$out/snapshot_a1.0000.hdf5" -o "$out/slice_z0.png"
echo "outputs in $out"
