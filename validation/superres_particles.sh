#!/usr/bin/env bash
# Particle super-resolution (issue 16) from scratch to its figures: paired LR/HR runs
# (superres_particle_pairs.sh), training (params/train_superres_particles.toml, unless
# output/superres/model/model.pt exists), then for each held-out seed (301-304) the LR run with
# the emulator in-situ (params/superres_validation.toml) and FoF on the HR truth, a cost
# comparison at NP ranks (the HR truth run of seed 301 against the LR run + emulator), and
# superres_particles.py: output/superres/validation/superres_table.md, superres_power.png,
# superres_slices.png, superres_power.csv, superres_hmf.csv.
# Usage: validation/superres_particles.sh [NP] [MODEL]  (about 35 minutes on 2 cores from scratch;
# with MODEL, that model is validated and nothing is trained)
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:-2}
model=${2:-output/superres/model/model.pt}
caustic=build/src/caustic
py=/usr/bin/python3
bash validation/superres_particle_pairs.sh 1
if [ ! -f "$model" ]; then
  bash jobs/mpirun.sh "$np" "$caustic" train params/train_superres_particles.toml < /dev/null
fi
case "$model" in /*) ;; *) model=$PWD/$model ;; esac
val=output/superres/validation
seeds=(301 302 303 304)
for seed in "${seeds[@]}"; do
  out=$val/s$seed
  bash jobs/mpirun.sh "$np" "$caustic" run params/superres_validation.toml --overwrite \
    --set simulation.seed=$seed --set "output.directory=\"$out\"" \
    --set "emulators.sr.model=\"$model\"" < /dev/null > /dev/null
  bash jobs/mpirun.sh "$np" "$caustic" fof output/superres/pairs/s${seed}_hr/snapshot_a1.0000.hdf5 \
    -o "$out/hr_halos.hdf5" --overwrite < /dev/null > /dev/null
  echo "held-out seed $seed: LR run + SR -> $out"
done
# Cost at the same ranks: the HR truth run (seed 301, with the same outputs) against the LR run
# with the emulator.
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
lr, s = summary("s301")
cost = {"ranks": np_, "hr_run": hr, "lr_run_with_sr": lr,
        "sr_hook": s["timings_seconds_max_over_ranks"].get("step:observer:emulator:sr", 0.0)}
json.dump(cost, open(f"{val}/cost.json", "w"), indent=1)
PY
$py validation/superres_particles.py --pairs output/superres/pairs --sr "$val" \
  --seeds "${seeds[@]}" --out "$val" --cost "$val/cost.json"
