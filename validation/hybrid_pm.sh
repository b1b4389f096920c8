#!/usr/bin/env bash
# Hybrid PM validation (issue 15; not a CI test): PGD and the learned force corrections against
# the engine's own 4x-mesh, 80-step truth, on held-out seeds, side by side with the uncorrected
# PM, plus the robustness checks (Omega_m +- 0.05, twice the resolution) and the correction's cost.
#   1. references: 4 training seeds, 2 held-out seeds (validation/hybrid_pm_references.sh)
#   2. caustic train: PGD (params/train_hybrid_pgd.toml), neural (params/train_hybrid_neural.toml)
#   3. held-out production runs (params/hybrid_pm.toml): uncorrected, PGD, neural
#   4. robustness: seed 201 with Omega_m = 0.2589 and 0.3589, and in a 64 Mpc/h box (cell 1 Mpc/h
#      instead of 2), each against its own reference, the correction applied with force = true
#   5. validation/hybrid_pm.py: P/P_ref - 1, r(k), rms position error: tables and plots;
#      validation/plot_force_correction.py: the trained K(k, a) and PGD filters
# Usage: bash validation/hybrid_pm.sh [--skip-training]   (NP=2 ranks by default)
# CONFIG=2x: the same for the production run on twice the particle grid (params/hybrid_pm_2x.toml,
# 128^3 mesh; references on a 512^3 mesh; params/train_hybrid_2x_*.toml; output/hybrid_pm_2x/).
# Outputs under output/hybrid_pm/: refs/, pgd/ and neural/ (model.json, loss.csv, loss.svg),
# runs/, and validation/*.md|csv|png; the summary table is validation/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
np=${NP:-2}
export CONFIG=${CONFIG:-} # read by hybrid_pm_references.sh too
case "$CONFIG" in
  "") mesh=64 ;;
  2x) mesh=128 ;;
  *) echo "$0: CONFIG=$CONFIG: expected 2x or nothing" >&2; exit 2 ;;
esac
suffix=${CONFIG:+_$CONFIG}
skip_training=0
[ "${1:-}" = "--skip-training" ] && skip_training=1
caustic=build/src/caustic
[ -x "$caustic" ] || bash scripts/build.sh release >/dev/null
out=output/hybrid_pm$suffix
mkdir -p "$out/runs" "$out/validation"
py=/usr/bin/python3
held=(201 202)

bash validation/hybrid_pm_references.sh "$out/refs" 101 102 103 104 "${held[@]}"
if [ $skip_training = 0 ]; then
  for kind in pgd neural; do
    rm -rf "$out/$kind" # a new training (the trainer refuses to overwrite one)
    bash jobs/mpirun.sh "$np" "$caustic" train "params/train_hybrid${suffix}_$kind.toml"
  done
fi

run() { # run LABEL SEED [--set ...]: a production run into $out/runs/LABEL_SEED
  local label=$1 seed=$2
  shift 2
  bash jobs/mpirun.sh "$np" "$caustic" run "params/hybrid_pm$suffix.toml" --overwrite \
    --set simulation.seed="$seed" --set output.directory="$out/runs/${label}_$seed" "$@" \
    > "$out/runs/${label}_$seed.log" 2>&1 || { cat "$out/runs/${label}_$seed.log"; exit 1; }
}
pgd=(--set gravity.correction.model=../"$out"/pgd/model.json)
neural=(--set gravity.correction.model=../"$out"/neural/model.json)
for s in "${held[@]}"; do
  run plain "$s"
  run pgd "$s" "${pgd[@]}"
  run neural "$s" "${neural[@]}"
  $py validation/hybrid_pm.py --reference "$out/refs/seed_$s" --run "PM=$out/runs/plain_$s" \
    --run "PGD=$out/runs/pgd_$s" --run "neural=$out/runs/neural_$s" \
    -o "$out/validation/heldout_$s" > /dev/null
done

# Robustness: the same corrections outside their training domain (forced), each case against
# its own reference made from the same seed.
s=${held[0]}
declare -A cases=(
  [om_minus]="--set cosmology.Omega_m=0.2589"
  [om_plus]="--set cosmology.Omega_m=0.3589"
  # half the cell of the run in a 64 Mpc/h box (32 / mesh), its default lattice offset
  [res2x]="--set simulation.box=64.0 --set simulation.lattice_offset=$(awk -v m=$mesh 'BEGIN { print 32 / m }')"
)
for c in om_minus om_plus res2x; do
  # shellcheck disable=SC2086
  bash validation/hybrid_pm_references.sh "$out/refs_$c" "$s" ${cases[$c]}
  extra=${cases[$c]}
  # shellcheck disable=SC2086
  run "plain_$c" "$s" $extra
  # shellcheck disable=SC2086
  run "pgd_$c" "$s" $extra "${pgd[@]}" --set gravity.correction.force=true
  # shellcheck disable=SC2086
  run "neural_$c" "$s" $extra "${neural[@]}" --set gravity.correction.force=true
  $py validation/hybrid_pm.py --reference "$out/refs_$c/seed_$s" --run "PM=$out/runs/plain_${c}_$s" \
    --run "PGD=$out/runs/pgd_${c}_$s" --run "neural=$out/runs/neural_${c}_$s" \
    -o "$out/validation/robust_${c}_$s" > /dev/null
done

for kind in pgd neural; do
  $py validation/plot_force_correction.py "$out/$kind/model.json" -o "$out/validation/correction_$kind.png"
done

{
  echo "# Hybrid PM validation (z = 0; 64^3 particles, ${mesh}^3 mesh, 128 Mpc/h, 10 steps)"
  for f in "$out"/validation/heldout_*.md "$out"/validation/robust_*.md; do
    echo
    echo "## $(basename "$f" .md)"
    cat "$f"
  done
  echo
  echo "## Cost of the correction (run_summary.json, held-out seed ${held[0]})"
  $py - "$out/runs" "${held[0]}" <<'PY'
import json, sys
d, s = sys.argv[1], sys.argv[2]
for label in ("plain", "pgd", "neural"):
    t = json.load(open(f"{d}/{label}_{s}/run_summary.json"))["timings_seconds_max_over_ranks"]
    steps = sum(v for k, v in t.items() if k.startswith("step:") and not k.startswith("step:observer"))
    corr = t.get("step:potential_correction", 0.0) + t.get("pgd_outputs", 0.0)
    print(f"- {label}: PM stepping {steps:.3f} s, correction {corr:.3f} s "
          f"({100 * corr / steps:.1f}% of the stepping)")
PY
} > "$out/validation/summary.md"
cat "$out/validation/summary.md"
