#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build, then
#  1. the super-resolution emulator: paired runs (64^3 / 128^3 particles, same white noise) and
#     `caustic train` (validation/superres_emulator.sh, about 2 minutes on 2 cores);
#  2. the default simulation (params/default.toml) on 2 MPI ranks with its in-situ analysis
#     (power spectra, FoF halos) and the emulator applied in-situ at z = 0;
#  3. plots: the z = 0 power spectrum against linear theory, a projected density slice, and the
#     emulator against the high-resolution truth of the same seed.
# Environment: CAUSTIC_NP (ranks, default 2), CAUSTIC_PARAMS (parameter file),
# CAUSTIC_EMULATOR=0 (skip the emulator).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh release
np=${CAUSTIC_NP:-2}
params=${CAUSTIC_PARAMS:-params/default.toml}
emulate=${CAUSTIC_EMULATOR:-1}
extra=()
if [ "$emulate" = 1 ]; then
  bash validation/superres_emulator.sh "$np"
  extra=(--set output.density=true
         --set "emulators.superres.model=\"$PWD/output/emulators/superres/model.pt\""
         --set "emulators.superres.a=[1.0]")
fi
bash jobs/mpirun.sh "$np" build/src/caustic run "$params" --overwrite "${extra[@]}" "$@"
out=$(/usr/bin/python3 -c "import sys, tomllib; print(tomllib.load(open(sys.argv[1], 'rb'))['output']['directory'])" "$params")
/usr/bin/python3 validation/plot_power.py "$out/power_a1.0000.txt" -o "$out/power_z0.png"
/usr/bin/python3 validation/plot_slice.py "$out/snapshot_a1.0000.hdf5" -o "$out/slice_z0.png"
if [ "$emulate" = 1 ]; then
  /usr/bin/python3 validation/plot_superres.py "$out/density_a1.0000.hdf5" "$out/superres_a1.0000.hdf5" \
    output/emulators/pairs/s42_p128/density_a1.0000.hdf5 -o "$out/superres_z0.png"
fi
echo "outputs in $out"
