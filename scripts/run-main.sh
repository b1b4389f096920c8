#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build, then
#  1. the super-resolution emulator: paired runs (64^3 / 128^3 particles, same white noise) and
#     `caustic train` (validation/superres_emulator.sh, about 2 minutes on 2 cores);
#  2. the default simulation (params/default.toml) on 2 MPI ranks with its in-situ analysis
#     (power spectra, FoF halos, baryonification) and the emulator applied in-situ at z = 0;
#  3. plots: the z = 0 power spectrum against linear theory, a projected density slice, the
#     emulator against the high-resolution truth of the same seed, and the in-situ baryon
#     correction model (S(k) against published hydro runs, gas/temperature/pressure slices,
#     Compton-y map);
#  4. the hybrid PM: the production configuration params/hybrid_pm.toml (64^3 particles, 64^3
#     mesh, 10 steps) for a held-out seed, uncorrected and with the committed force corrections
#     (models/hybrid_pm/: PGD and the neural correction), against its 4x-mesh reference
#     (validation/hybrid_pm.py: P(k) ratios, r(k), table and plot). CAUSTIC_HYBRID=0 skips it.
# Environment: CAUSTIC_NP (ranks, default 2), CAUSTIC_PARAMS (parameter file),
# CAUSTIC_EMULATOR=0 (skip the emulator), CAUSTIC_HYBRID=0 (skip the hybrid PM).
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
if [ -f "$out/baryons_a1.0000/suppression.txt" ]; then
  /usr/bin/python3 validation/plot_baryons.py --case "in-situ BCM, default parameters=$out/baryons_a1.0000" \
    --fields "$out/baryons_a1.0000" -o "$out/baryons_a1.0000" > /dev/null
fi
if [ "$emulate" = 1 ]; then
  /usr/bin/python3 validation/plot_superres.py "$out/density_a1.0000.hdf5" "$out/superres_a1.0000.hdf5" \
    output/emulators/pairs/s42_p128/density_a1.0000.hdf5 -o "$out/superres_z0.png"
fi
if [ "${CAUSTIC_HYBRID:-1}" = 1 ]; then
  hy=output/hybrid_pm_main
  bash validation/hybrid_pm_references.sh "$hy/refs" 201
  for c in plain pgd neural_spline; do
    corr=()
    [ "$c" = plain ] || corr=(--set "gravity.correction.model=../models/hybrid_pm/$c.json")
    bash jobs/mpirun.sh "$np" build/src/caustic run params/hybrid_pm.toml --overwrite \
      --set simulation.seed=201 --set "output.directory=$hy/$c" "${corr[@]}"
  done
  /usr/bin/python3 validation/hybrid_pm.py --reference "$hy/refs/seed_201" --run "PM=$hy/plain" \
    --run "PGD=$hy/pgd" --run "neural=$hy/neural_spline" -o "$hy/hybrid_pm_z0"
  echo "hybrid PM outputs in $hy (hybrid_pm_z0.png, hybrid_pm_z0.md)"
fi
echo "outputs in $out"
