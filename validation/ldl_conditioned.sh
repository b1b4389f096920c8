#!/usr/bin/env bash
# The total-matter LDL painter conditioned on the BCM parameters (log10_mc, theta_ej), measured on
# held-out seeds AND held-out BCM parameters (issue 17), from validation/painter.sh's data:
#   1. `PAINTER_STAGE=data bash validation/painter.sh NP`: the dark-matter-only runs (seeds
#      301-304, 401-402) and their baryonification over the design (output/validation_painter/
#      design.txt; skipped where it exists);
#   2. `caustic ldl-fit --condition baryons.log10_mc --condition baryons.theta_ej` on the 15
#      training pairs (seeds 301-303 at five design points each), displacement layers only, with
#      the power term up to k = 5 h/Mpc (as ldl_painter.sh's matter painter), held out on seeds
#      401-402 at the three held-out points (6 pairs); ITERATIONS iterations, from the authors'
#      starting point, or from INIT=ldl.json (e.g. ldl_painter.sh's unconditioned matter painter,
#      fitted at the default BCM parameters on the same box and mesh: its parameters as the base,
#      zero slopes), or continuing the last fit (RESUME=1);
#   3. validation/plot_ldl.py: S_LDL/S_BCM per held-out pair and point, the no-painter row,
#      output/validation_painter/ldl_conditioned.txt and ldl_painter.png.
# Usage: [INIT=ldl.json | RESUME=1] bash validation/ldl_conditioned.sh [NP] [ITERATIONS]
#   (default 2 ranks, 110 iterations; one iteration over the 15 pairs took 4.5 min on one rank)
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:-2}
iterations=${2:-110}
out=output/validation_painter
PAINTER_STAGE=data bash validation/painter.sh "$np"
train=() test=()
while read -r seed mc th role; do
  [ "$seed" = "#" ] && continue
  pair="$out/seed_$seed/snapshot_a1.0000.hdf5=$out/bcm_${seed}_${mc}_${th}/baryon_fields.hdf5"
  case $role in
    train) train+=(--train "$pair") ;;
    heldout) test+=(--test "$pair") ;;
  esac
done < "$out/design.txt"
fit=(ldl-fit --field matter_density --layers 2 --displacement-only --power-weight 10
  --power-kmax 5 --condition baryons.log10_mc --condition baryons.theta_ej
  "${train[@]}" "${test[@]}" --overwrite)
dir=$out/ldl_matter_conditioned
init=()
if [ "${RESUME:-0}" = 1 ] && [ -f "$dir/ldl.json" ]; then
  cp "$dir/ldl.json" "$out/ldl_matter_conditioned_init.json"
  init=(--init "$out/ldl_matter_conditioned_init.json")
elif [ -n "${INIT:-}" ]; then
  init=(--init "$INIT")
fi
bash jobs/mpirun.sh "$np" build/src/caustic "${fit[@]}" "${init[@]}" --iterations "$iterations" \
  -o "$dir"
/usr/bin/python3 validation/plot_ldl.py "$dir" -o "$dir" | tee "$out/ldl_conditioned.txt"
