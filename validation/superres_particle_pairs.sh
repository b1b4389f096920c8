#!/usr/bin/env bash
# Paired runs for the particle super-resolution emulator (issue 16): for every seed, a
# low-resolution (LR) run with the main job's settings (64^3 particles, 128^3 mesh, 128 Mpc/h,
# 20 steps) and its high-resolution (HR) truth from the same white noise (128^3 particles, a
# 384^3 mesh, 40 steps). The HR lattice is given the LR run's lattice offset (half an LR PM cell,
# 0.5 Mpc/h), so HR lattice site 2i is LR site i and both realisations are translated alike; on
# the 384^3 mesh that offset is 1.5 cells, off the mesh points. Snapshots and power spectra at
# a = 1. Seeds 201-216 train, 301-304 are held out. Runs that exist are skipped.
# Usage: validation/superres_particle_pairs.sh [NP] [SEEDS...]   (default: 1 rank, all seeds)
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:-1}
shift || true
seeds=("$@")
if [ ${#seeds[@]} -eq 0 ]; then
  seeds=($(seq 201 216) $(seq 301 304))
fi
caustic=build/src/caustic
base=output/superres/pairs
for seed in "${seeds[@]}"; do
  for res in lr hr; do
    out=$base/s${seed}_${res}
    [ -f "$out/snapshot_a1.0000.hdf5" ] && continue
    extra=()
    if [ "$res" = hr ]; then
      extra=(--set simulation.particles=128 --set simulation.mesh=384 --set simulation.steps=40
             --set simulation.lattice_offset=0.5)
    fi
    bash jobs/mpirun.sh "$np" "$caustic" run params/superres_pairs.toml --overwrite \
      --set simulation.seed=$seed "${extra[@]}" --set "output.directory=\"$out\"" \
      --set output.snapshots=true --set output.density=false --set output.power_spectrum=true \
      < /dev/null > /dev/null
    echo "paired run: seed $seed, $res -> $out"
  done
done
