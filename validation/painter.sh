#!/usr/bin/env bash
# Baryon painter validation (not a CI test): the U-Net painter conditioned on the BCM parameters
# (log10_mc, theta_ej), trained on the engine's own baryonification, measured on held-out seeds
# AND held-out BCM parameters against the BCM truth, side by side with the LDL painter.
#   1. six 128^3-particle, 64 Mpc/h dark-matter-only runs (40 steps, 256^3 mesh, FoF at z = 0;
#      params/validation_painter.toml): training seeds 301-303, validation seed 304 (the training
#      loss curve), held-out seeds 401-402;
#   2. `caustic baryonify` of every training/validation seed at 5 points of a Latin-hypercube
#      design over log10_mc in [12.8, 14.2] and theta_ej in [3.0, 5.5] (the other five BCM
#      parameters at their defaults), and of the held-out seeds at 3 parameter points that are
#      in no training design (the truth);
#   3. `caustic train` (train_painter.toml written here): a U-Net from the dark-matter density
#      contrast to ln(rho_matter) (a residual of ln(1 + delta_dm)), ln gas density, ln
#      temperature, ln electron pressure on the 128^3 field mesh (0.5 Mpc/h cells), with a
#      mass-weighted loss (training.weight = "density");
#   4. the held-out runs again with the painter in-situ ([emulators.painter] kind = "torch",
#      mesh = 128, [baryons] holding the held-out parameters), and LDL painters (gas density,
#      electron pressure; no conditioning) fitted on training seeds baryonified at one of the
#      held-out parameter points, in-situ at that point;
#   5. validation/plot_painter.py: S(k), gas r(k), P_e power ratio, stacked profiles in three
#      mass bins, slices; a table in output/validation_painter/painter_validation.txt.
# Usage: bash validation/painter.sh [NP] [STEPS]   (NP ranks, STEPS training steps, default 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:-2}
steps=${2:-3000}
out=output/validation_painter
py=/usr/bin/python3
bash scripts/build.sh release >/dev/null
caustic=build/src/caustic
mkdir -p $out

# 1. Dark-matter-only runs.
for s in 301 302 303 304 401 402; do
  if [ ! -f "$out/seed_$s/halos_a1p0000.0.hdf5" ]; then
    bash jobs/mpirun.sh "$np" $caustic run params/validation_painter.toml --overwrite \
      --set simulation.seed=$s --set "output.directory=\"$out/seed_$s\""
  fi
done

# 2. The BCM truth over the design (one line per point: seed log10_mc theta_ej role).
$py - "$out/design.txt" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(2026)
lines = []
for seed, role in [(301, "train"), (302, "train"), (303, "train"), (304, "validation")]:
    n = 5  # a Latin hypercube per seed: one point per fifth of each range
    u = (np.array([rng.permutation(n) for _ in range(2)]).T + rng.random((n, 2))) / n
    for mc, th in zip(12.8 + 1.4 * u[:, 0], 3.0 + 2.5 * u[:, 1]):
        lines.append(f"{seed} {mc:.3f} {th:.3f} {role}")
for seed in (401, 402):
    for mc, th in [(13.05, 4.6), (13.45, 3.6), (13.9, 5.0)]:
        lines.append(f"{seed} {mc:.3f} {th:.3f} heldout")
open(sys.argv[1], "w").write("# seed log10_mc theta_ej role\n" + "\n".join(lines) + "\n")
PY
while read -r seed mc th role; do
  [ "$seed" = "#" ] && continue
  d=$out/bcm_${seed}_${mc}_${th}
  if [ ! -f "$d/baryon_fields.hdf5" ]; then
    bash jobs/mpirun.sh "$np" $caustic baryonify "$out/seed_$seed/snapshot_a1.0000.hdf5" \
      "$out/seed_$seed/halos_a1p0000.0.hdf5" -o "$d" --overwrite \
      --set baryons.log10_mc=$mc --set baryons.theta_ej=$th < /dev/null > "$d.log" 2>&1 \
      || { cat "$d.log"; exit 1; }
  fi
done < $out/design.txt
[ "${PAINTER_STAGE:-}" = "data" ] && exit 0

# 3. Training.
$py - "$out" "$steps" > $out/train_painter.toml <<'PY'
import sys
out, steps = sys.argv[1], int(sys.argv[2])
pairs = {"train": [], "validation": []}
for line in open(f"{out}/design.txt"):
    if line.startswith("#"):
        continue
    seed, mc, th, role = line.split()
    if role == "heldout":
        continue
    f = f"bcm_{seed}_{mc}_{th}/baryon_fields.hdf5"
    pairs[role].append(
        f'{{inputs = ["{f}:Fields/dmo_density_contrast"], targets = ['
        + ", ".join(f'"{f}:Fields/{n}"' for n in
                    ("matter_density", "gas_density", "gas_temperature", "electron_pressure"))
        + f"], conditioning = [{mc}, {th}]}}")
print("# Written by validation/painter.sh: the U-Net baryon painter conditioned on (log10_mc, theta_ej).")
print("[data]")
for role in ("train", "validation"):
    print(f"{role} = [\n  " + ",\n  ".join(pairs[role]) + "\n]")
print("""
[model]
kind = "baryon_painter"
inputs = ["density"]
outputs = ["matter_density", "gas_density", "gas_temperature", "electron_pressure"]
depth = 2
width = 16
conditioning = ["baryons.log10_mc", "baryons.theta_ej"]
floor = 1e-3
floors = {electron_pressure = 1e-14}
transforms = {density = "log1p", matter_density = "log", gas_density = "log", gas_temperature = "log", electron_pressure = "log"}
residual = {matter_density = "density"}

[training]""")
print(f"steps = {steps}")
print("""batch = 4
crop = 32
learning_rate = 2e-3
warmup = 50
validate_every = 100
checkpoint_every = 200
validation_crops = 4
weight = "density"
""")
print("[output]")
print(f'directory = "{out}/unet"')
PY
if [ ! -f $out/unet/model.pt ]; then
  resume=""
  [ -f $out/unet/checkpoint.pt ] && resume="--resume"
  bash jobs/mpirun.sh "$np" $caustic train $out/train_painter.toml $resume
fi
[ "${PAINTER_STAGE:-}" = "train" ] && exit 0

# 4. LDL, which has no conditioning, is fitted at one held-out parameter point (log10_mc 13.45,
#    theta_ej 3.6) on the training seeds baryonified there; then the held-out runs again with
#    both painters in-situ (the LDL at that point only).
ldl_mc=13.450; ldl_th=3.600
for s in 301 302 303; do
  d=$out/ldl_truth_${s}
  if [ ! -f "$d/baryon_fields.hdf5" ]; then
    bash jobs/mpirun.sh "$np" $caustic baryonify "$out/seed_$s/snapshot_a1.0000.hdf5" \
      "$out/seed_$s/halos_a1p0000.0.hdf5" -o "$d" --overwrite \
      --set baryons.log10_mc=$ldl_mc --set baryons.theta_ej=$ldl_th < /dev/null > "$d.log" 2>&1 \
      || { cat "$d.log"; exit 1; }
  fi
done
pair() { echo "$out/seed_$1/snapshot_a1.0000.hdf5=$out/ldl_truth_$1/baryon_fields.hdf5"; }
for field in gas_density electron_pressure; do
  if [ ! -f $out/ldl_$field/ldl.json ]; then
    bash jobs/mpirun.sh "$np" $caustic ldl-fit --field $field --layers 2 --iterations 50 \
      --train "$(pair 301)" --train "$(pair 302)" --test "$(pair 303)" \
      -o $out/ldl_$field --overwrite < /dev/null
  fi
done
while read -r seed mc th role; do
  [ "$role" = "heldout" ] || continue
  d=$out/insitu_${seed}_${mc}_${th}
  ldl=()
  if [ "$mc" = "$ldl_mc" ] && [ "$th" = "$ldl_th" ]; then
    for field in gas_density electron_pressure; do
      ldl+=(--set "emulators.ldl_$field.kind=\"ldl\""
            --set "emulators.ldl_$field.model=\"$PWD/$out/ldl_$field/ldl.json\"")
    done
  fi
  if [ ! -f "$d/painter_a1.0000.hdf5" ]; then
    bash jobs/mpirun.sh "$np" $caustic run params/validation_painter.toml --overwrite \
      --set simulation.seed=$seed --set "output.directory=\"$d\"" --set output.snapshots=false \
      --set halos.enabled=false --set baryons.log10_mc=$mc --set baryons.theta_ej=$th \
      --set "emulators.painter.model=\"$PWD/$out/unet/model.pt\"" --set emulators.painter.mesh=128 \
      "${ldl[@]}" < /dev/null > "$d.log" 2>&1 || { cat "$d.log"; exit 1; }
  fi
done < $out/design.txt

# 5. Tables and plots.
$py validation/plot_painter.py $out | tee $out/painter_validation.txt
