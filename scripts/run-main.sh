#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build, then
#  1. the default simulation (params/default.toml) on 2 MPI ranks with its in-situ analysis
#     (power spectra, FoF halos, baryonification) and the particle super-resolution emulator
#     (models/superres_particles/, committed; trained by validation/superres_particles.sh)
#     applied in-situ at z = 0: 128^3 particles from the run's 64^3, sharpened by PGD with the
#     parameters fitted for it (models/superres_particles/pgd_fit.json) and the cores of their
#     small FoF groups contracted (models/superres_particles/contraction_fit.json), with their
#     power spectrum and FoF catalogue;
#  2. the high-resolution truth of the same seed (128^3 particles, 384^3 mesh, 40 steps) and the
#     emulator's validation against it (validation/superres_particles.py: T(k), r(k), mass
#     function, slices);
#  3. plots: the z = 0 power spectrum against linear theory, a projected density slice and the
#     in-situ baryon correction model (S(k) against published hydro runs,
#     gas/temperature/pressure slices, Compton-y map);
#  4. the hybrid PM: the production configuration params/hybrid_pm.toml (64^3 particles, 64^3
#     mesh, 10 steps) for a held-out seed, uncorrected and with the committed force corrections
#     (models/hybrid_pm/: PGD and the neural correction), against its 4x-mesh reference
#     (validation/hybrid_pm.py: P(k) ratios, r(k), table and plot). CAUSTIC_HYBRID=0 skips it.
#  5. the halo surrogates: the cheap production run of validation/halos.sh (128^3 particles,
#     256^3 mesh, 10 steps) with the committed per-group records (models/halo_groups/) in-situ at
#     z = 1 and 0: catalogues, expected halo-mass fields, mass functions against the run's own
#     FoF (validation/plot_halo_main.py). CAUSTIC_HALOS=0 skips it.
# Environment: CAUSTIC_NP (ranks, default 2), CAUSTIC_PARAMS (parameter file),
# CAUSTIC_EMULATOR=0 (skip the emulator), CAUSTIC_HYBRID=0 (skip the hybrid PM),
# CAUSTIC_HALOS=0 (skip the halo surrogates).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh release
np=${CAUSTIC_NP:-2}
params=${CAUSTIC_PARAMS:-params/default.toml}
emulate=${CAUSTIC_EMULATOR:-1}
extra=()
if [ "$emulate" = 1 ]; then
  extra=(--set "emulators.sr.model=\"$PWD/models/superres_particles/model.pt\""
         --set 'emulators.sr.space="lagrangian"'
         --set 'emulators.sr.inputs=["displacement_x","displacement_y","displacement_z","momentum_x","momentum_y","momentum_z"]'
         --set "emulators.sr.a=[1.0]")
  # The PGD sharpening and the contraction of the small groups' cores fitted for it.
  mapfile -t fitted < <(/usr/bin/python3 validation/superres_hook_sets.py \
    models/superres_particles/pgd_fit.json models/superres_particles/contraction_fit.json)
  [ ${#fitted[@]} = 12 ] || { echo "run-main.sh: cannot read the super-resolution fits" >&2; exit 1; }
  extra+=("${fitted[@]}")
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
  # The high-resolution truth of the run's seed, as the emulator's training pairs were made.
  seed=$(/usr/bin/python3 -c "import sys, tomllib; print(tomllib.load(open(sys.argv[1], 'rb'))['simulation']['seed'])" "$params")
  hr=output/superres/main_hr_s$seed
  if [ ! -f "$hr/snapshot_a1.0000.hdf5" ]; then
    bash jobs/mpirun.sh "$np" build/src/caustic run params/superres_pairs.toml --overwrite \
      --set simulation.seed=$seed --set simulation.particles=128 --set simulation.mesh=384 \
      --set simulation.steps=40 --set simulation.lattice_offset=0.5 \
      --set "output.directory=\"$hr\"" --set output.snapshots=true --set output.density=false
  fi
  bash jobs/mpirun.sh "$np" build/src/caustic fof "$hr/snapshot_a1.0000.hdf5" -o "$out/hr_halos.hdf5" \
    --member-ids --overwrite
  /usr/bin/python3 validation/superres_particles.py --seeds "$seed" --lr "$out/snapshot_a1.0000.hdf5" \
    --hr "$hr/snapshot_a1.0000.hdf5" --sr-run "$out" --out "$out/superres"
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
if [ "${CAUSTIC_HALOS:-1}" = 1 ]; then
  # The halo surrogates (models/halo_groups/, trained by validation/halos.sh) in-situ in their
  # production configuration: 128^3 particles, 256^3 mesh, 10 steps from a = 0.1, 128 Mpc/h.
  ho=output/halos_main
  hooks=()
  for z in 1 0; do
    a=$([ $z = 1 ] && echo 0.5 || echo 1.0)
    for kind in field catalogue; do
      hooks+=(--set "emulators.halo_${kind}_z$z.model=\"$PWD/models/halo_groups/${kind}_z$z.json\""
        --set "emulators.halo_${kind}_z$z.a=[$a]")
    done
  done
  bash jobs/mpirun.sh "$np" build/src/caustic run params/validation_halos.toml --overwrite \
    --set simulation.seed=42 --set simulation.mesh=256 --set simulation.steps=10 \
    --set simulation.a_start=0.1 --set output.power_spectrum=false \
    --set "output.directory=\"$ho\"" "${hooks[@]}"
  /usr/bin/python3 validation/plot_halo_main.py "$ho"
  echo "halo surrogate outputs in $ho (halo_surrogate.png, halo_surrogate.md)"
fi
echo "outputs in $out"
