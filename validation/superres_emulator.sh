#!/usr/bin/env bash
# The super-resolution emulator of the main job, from scratch: paired runs (64^3 and 128^3
# particles from the same white noise, seeds 101-104, z = 0), `caustic train` on them
# (params/train_superres.toml), and the high-resolution truth of the main run's seed (42) for
# the validation plot. Writes output/emulators/. Usage: validation/superres_emulator.sh [NP]
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:-2}
caustic=build/src/caustic
for seed in 101 102 103 104 42; do
  for parts in 64 128; do
    [ "$seed" = 42 ] && [ "$parts" = 64 ] && continue # the main run itself
    out=output/emulators/pairs/s${seed}_p${parts}
    [ -f "$out/density_a1.0000.hdf5" ] && continue
    bash jobs/mpirun.sh "$np" "$caustic" run params/superres_pairs.toml --overwrite \
      --set simulation.seed=$seed --set simulation.particles=$parts \
      --set "output.directory=\"$out\"" > /dev/null
    echo "paired run: seed $seed, ${parts}^3 particles -> $out"
  done
done
rm -rf output/emulators/superres
bash jobs/mpirun.sh "$np" "$caustic" train params/train_superres.toml
