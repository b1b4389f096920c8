#!/usr/bin/env bash
# Baryonification validation (not a CI test): a 256^3-particle, 128 Mpc/h dark-matter-only run
# (particle Nyquist 6.3 h/Mpc, 512^3 mesh, 40 steps, WMAP9 as BAHAMAS) with FoF at z = 0.5 and 0,
# then `caustic baryonify` with (a) the default parameters (BCemu's 7-parameter example set),
# (b) BCemu's 3-parameter fit to BAHAMAS, (c) the defaults at z = 0.5; S(k) against the
# published BAHAMAS, TNG100 and EAGLE suppression (table and plot), slices of the matter, gas,
# temperature and electron-pressure meshes and the Compton-y map.
# Usage: bash validation/baryons.sh [NP]   (default 2 ranks; about 3 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:-2}
out=output/validation_baryons
bash scripts/build.sh release >/dev/null
bash jobs/mpirun.sh "$np" build/src/caustic run params/validation_baryons.toml --overwrite
snap=$out/snapshot_a1.0000.hdf5
halos=$out/halos_a1p0000.0.hdf5
bash jobs/mpirun.sh "$np" build/src/caustic baryonify "$snap" "$halos" -o $out/bcm_default --overwrite
# BCemu README: BCM_3param "fit to the BAHAMAS simulation result" (delta, eta, mu, gamma fixed).
bash jobs/mpirun.sh "$np" build/src/caustic baryonify "$snap" "$halos" -o $out/bcm_bahamas_fit --overwrite \
  --set baryons.log10_mc=13.25 --set baryons.theta_ej=4.711 --set baryons.delta_eta=0.097 \
  --set baryons.delta=7.0 --set baryons.eta=0.2 --set baryons.mu=1.0 --set baryons.gamma=2.5
bash jobs/mpirun.sh "$np" build/src/caustic baryonify $out/snapshot_a0.6667.hdf5 $out/halos_a0p6667.0.hdf5 \
  -o $out/bcm_default_z0.5 --overwrite
/usr/bin/python3 validation/plot_baryons.py \
  --case "default (BCemu 7-parameter example)=$out/bcm_default" \
  --case "BCemu 3-parameter BAHAMAS fit=$out/bcm_bahamas_fit" \
  --fields $out/bcm_default --halos "$halos" -o $out | tee $out/baryons_validation.txt
echo "z = 0.5 (defaults): $out/bcm_default_z0.5/suppression.txt"
