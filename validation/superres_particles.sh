#!/usr/bin/env bash
# Particle super-resolution (issue 16) from scratch to its figures: paired LR/HR runs
# (superres_particle_pairs.sh), training (params/train_superres_particles.toml, unless
# output/superres/model/model.pt exists), the PGD sharpening of the super-resolved particles
# fitted on training seeds 201-208 (superres_pgd_fit.py, unless FIT exists), the contraction of
# their small groups fitted on the same seeds (superres_contraction_fit.py, unless CFIT exists),
# then for each held-out seed (301-304) the LR run with the emulator in-situ
# (params/superres_validation.toml) without and with the fitted `pgd`, and with `pgd` and the
# fitted [emulators.sr.contract], and FoF on the HR truth, a cost comparison at NP ranks (the HR
# truth run of seed 301 against the LR run + emulator + PGD + contraction), and
# superres_particles.py: output/superres/validation/superres_table.md, superres_power.png,
# superres_slices.png, superres_power.csv, superres_hmf.csv, superres_halo_spread.csv (the
# truth's FoF is run with --member-ids for it).
# Usage: validation/superres_particles.sh [NP] [MODEL] [FIT] [CFIT]  (about 90 minutes on 2 cores
# from scratch; with MODEL, that model is validated and nothing is trained, and only the pairs of
# seeds 201-208 and 301-304 are made; FIT defaults to output/superres/fit/pgd_fit.json and CFIT
# to output/superres/fit/contraction_fit.json, fitted for MODEL when missing; the committed
# model's fits are models/superres_particles/pgd_fit.json and contraction_fit.json)
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:-2}
model=${2:-output/superres/model/model.pt}
caustic=build/src/caustic
py=/usr/bin/python3
if [ -f "$model" ]; then
  bash validation/superres_particle_pairs.sh 1 $(seq 201 208) $(seq 301 304)
else
  bash validation/superres_particle_pairs.sh 1
  bash jobs/mpirun.sh "$np" "$caustic" train params/train_superres_particles.toml < /dev/null
fi
case "$model" in /*) ;; *) model=$PWD/$model ;; esac
fit=${3:-output/superres/fit/pgd_fit.json}
if [ ! -f "$fit" ]; then
  # The super-resolved particles of training seeds (no PGD, no FoF), then the fit.
  fit_seeds=(201 202 203 204 205 206 207 208)
  for seed in "${fit_seeds[@]}"; do
    bash jobs/mpirun.sh "$np" "$caustic" run params/superres_validation.toml --overwrite \
      --set simulation.seed=$seed --set "output.directory=\"output/superres/fit/s$seed\"" \
      --set "emulators.sr.model=\"$model\"" --set halos.enabled=false < /dev/null > /dev/null
  done
  mkdir -p "$(dirname "$fit")"
  $py validation/superres_pgd_fit.py --seeds "${fit_seeds[@]}" \
    --sr-run "output/superres/fit/s{seed}/sr_a1.0000.hdf5" -o "$fit"
fi
mapfile -t pgd < <($py validation/superres_hook_sets.py "$fit")
[ ${#pgd[@]} = 2 ] || { echo "$0: cannot read $fit" >&2; exit 1; }
echo "PGD sharpening of the super-resolved particles: ${pgd[*]} (from $fit)"
cfit=${4:-output/superres/fit/contraction_fit.json}
if [ ! -f "$cfit" ]; then
  $py validation/superres_contraction_fit.py --model "$model" --pgd "$fit" --np "$np" \
    --seeds 201 202 203 204 205 206 207 208 -o "$cfit"
fi
mapfile -t fitted < <($py validation/superres_hook_sets.py "$fit" "$cfit")
[ ${#fitted[@]} = 12 ] || { echo "$0: cannot read $cfit" >&2; exit 1; }
contract=("${fitted[@]:2}") # after the pgd option
echo "group contraction of the super-resolved particles: ${contract[*]} (from $cfit)"
val=output/superres/validation
seeds=(301 302 303 304)
for seed in "${seeds[@]}"; do
  out=$val/s$seed
  bash jobs/mpirun.sh "$np" "$caustic" run params/superres_validation.toml --overwrite \
    --set simulation.seed=$seed --set "output.directory=\"$out\"" \
    --set "emulators.sr.model=\"$model\"" < /dev/null > /dev/null
  bash jobs/mpirun.sh "$np" "$caustic" run params/superres_validation.toml --overwrite \
    --set simulation.seed=$seed --set "output.directory=\"$val/pgd/s$seed\"" \
    --set "emulators.sr.model=\"$model\"" "${pgd[@]}" < /dev/null > /dev/null
  bash jobs/mpirun.sh "$np" "$caustic" run params/superres_validation.toml --overwrite \
    --set simulation.seed=$seed --set "output.directory=\"$val/contracted/s$seed\"" \
    --set "emulators.sr.model=\"$model\"" "${pgd[@]}" "${contract[@]}" \
    < /dev/null > /dev/null
  bash jobs/mpirun.sh "$np" "$caustic" fof output/superres/pairs/s${seed}_hr/snapshot_a1.0000.hdf5 \
    --member-ids -o "$out/hr_halos.hdf5" --overwrite < /dev/null > /dev/null
  echo "held-out seed $seed: LR run + SR -> $out"
done
# Cost at the same ranks: the HR truth run (seed 301, with the same outputs) against the LR run
# with the emulator, PGD and the contraction.
bash jobs/mpirun.sh "$np" "$caustic" run params/superres_pairs.toml --overwrite \
  --set simulation.seed=301 --set simulation.particles=128 --set simulation.mesh=384 \
  --set simulation.steps=40 --set simulation.lattice_offset=0.5 \
  --set "output.directory=\"$val/hr_timing\"" --set output.snapshots=true \
  --set output.density=false --set output.power_spectrum=true --set halos.enabled=true \
  --set "halos.a=[1.0]" < /dev/null > /dev/null
$py - "$val" "$np" <<'PY'
import json, sys
val, np_ = sys.argv[1], int(sys.argv[2])
def summary(d):
    s = json.load(open(f"{val}/{d}/run_summary.json"))
    return {"wall": s["wall_seconds"], "memory": max(s["peak_memory_bytes_per_rank"])}, s
hr, _ = summary("hr_timing")
lr, s = summary("contracted/s301")
cost = {"ranks": np_, "hr_run": hr, "lr_run_with_sr": lr,
        "sr_hook": s["timings_seconds_max_over_ranks"].get("step:observer:emulator:sr", 0.0)}
json.dump(cost, open(f"{val}/cost.json", "w"), indent=1)
PY
$py validation/superres_particles.py --pairs output/superres/pairs --sr "$val" \
  --seeds "${seeds[@]}" --out "$val" --cost "$val/cost.json" --sharpened "$val/pgd/s{seed}" \
  --contracted "$val/contracted/s{seed}"
