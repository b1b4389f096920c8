#!/usr/bin/env bash
# Halo-surrogate validation (not a CI test): the per-group surrogate (the cheap run's FoF groups,
# a small network per group for presence and mass) and U-Nets from the cheap run's density and
# its own FoF groups (the fof_count channel) to halo presence and mass per voxel, trained on the
# engine's own high-force-resolution FoF halos, measured on held-out seeds at z = 1 and z = 0
# against that truth, side by side with FoF on the cheap run itself.
#   1. per seed, the truth (params/validation_halos.toml: 128^3 particles, 128 Mpc/h, 768^3 mesh,
#      40 steps from a = 0.02, FoF b = 0.2 at a = 0.5 and 1) and the cheap production run of the
#      same white noise (256^3 mesh, 10 steps from a = 0.1, FoF, the density on the surrogate's
#      64^3 mesh: 2 Mpc/h voxels);
#      training seeds 501-506, validation seed 507 (the trainings' validation loss), selection
#      seeds 507-512 (which record to recommend per redshift and product: step 5), held-out seeds
#      601-615 (15 boxes: at k ~ 0.4 h/Mpc the shot-noise-subtracted halo power is below 1/n, and
#      one box's halo P(k) scatters by up to 28% per bin even for FoF on the cheap run);
#   2. the truth's halos above the mass where n = 1e-3 (h/Mpc)^3 (the median over the training
#      seeds of the 2097th largest group: 40 particles at z = 1, 59 at z = 0 (768^3 truth); written to
#      thresholds.txt) as halo-number and halo-mass fields on the 64^3 mesh (halo_fields.py),
#      and the cheap run's own groups (>= 20 particles, its [halos] min_particles) as the
#      fof_count input the hook paints in-situ;
#   3. `caustic train` with training.loss = "halo", one model per redshift (train_a*.toml),
#      inputs density and fof_count; and with [model] kind = "halo_groups" (groups_a*.toml: the
#      cheap snapshots' groups matched to the truth's by member IDs), also without the position
#      correction, with model.mass_target = "assigned", and with "assigned" and
#      model.field_weight = 1 (the expected masses' squared error in the loss);
#   4. the held-out cheap runs again with both surrogates in-situ ([emulators.halos_z1],
#      [emulators.halos_z0], mesh = 64), without P(k) outputs, for the cost; once with
#      selection = "sample" (Bernoulli draws) and once with "top" (the most probable voxels);
#      and with the per-group surrogates (selection "threshold", "top" and "sample"); the same on
#      the selection seeds (in heldout*_SEED directories too);
#   5. validation/plot_halos.py, first on the selection seeds: it chooses, per redshift, the
#      per-group record whose expected field has the lowest error power paired with FoF's and the
#      one whose catalogue has the lowest of the halo P(k) and mass-function worst bins
#      (halo_choice.json, halo_selection_validation.txt); then on the held-out seeds: r(k) and
#      error power of the halo-mass field, mass functions, halo P(k), cost, and the chosen
#      records against FoF with the issue's targets; halo_validation.txt and halo_*.png in
#      output/validation_halos.
# Usage: bash validation/halos.sh [NP] [STEPS] [WIDTH]
#   NP ranks, STEPS training steps (default 1500), WIDTH the U-Net's width (default 16); runs
#   and models already in output/validation_halos are reused (remove model_a* to retrain)
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:-2}
steps=${2:-1500}
width=${3:-16}
out=output/validation_halos
py=/usr/bin/python3
hmesh=64 # the surrogate's mesh
train="501 502 503 504 505 506"
select="507 508 509 510 511 512" # 507: also the trainings' validation pair
heldout="601 602 603 604 605 606 607 608 609 610 611 612 613 614 615"
bash scripts/build.sh release >/dev/null
caustic=build/src/caustic
mkdir -p $out
run() { bash jobs/mpirun.sh "$np" $caustic run "$@" --overwrite < /dev/null; }
# The cheap production run (on params/validation_halos.toml; the truth is that file as it is).
cheap=(--set simulation.mesh=256 --set simulation.steps=10 --set simulation.a_start=0.1)
# ... again with the surrogates in-situ: without P(k) outputs (the cost of what users run).
insitu=("${cheap[@]}" --set output.power_spectrum=false)

# Outputs of an earlier truth on another mesh (before session 36: 512^3) would be reused along with
# the models trained on them: stop instead.
tmesh=$(sed -n 's/^mesh *= *\([0-9]*\).*/\1/p' params/validation_halos.toml)
if [ -f $out/truth_501/halos_a1p0000.0.hdf5 ] &&
  ! $py -c "import h5py,sys; sys.exit(int(h5py.File('$out/truth_501/halos_a1p0000.0.hdf5')['Parameters'].attrs['simulation.mesh'] != $tmesh))"; then
  echo "$0: $out holds a truth run on another mesh than params/validation_halos.toml's $tmesh^3;" \
    "move it away (its models were trained on that truth) and rerun" >&2
  exit 2
fi

# 1. Truth and cheap runs.
for s in $train $select $heldout; do
  [ -f $out/truth_$s/halos_a1p0000.0.hdf5 ] ||
    run params/validation_halos.toml --set simulation.seed=$s --set halos.member_ids=true \
      --set "output.directory=\"$out/truth_$s\"" > $out/truth_$s.log
  [ -f $out/cheap_$s/halos_a1p0000.0.hdf5 ] &&
    $py -c "import h5py,sys; sys.exit(int(h5py.File('$out/cheap_$s/density_a1.0000.hdf5')['Header'].attrs['MeshSize'] != $hmesh))" ||
    run params/validation_halos.toml --set simulation.seed=$s "${cheap[@]}" --set output.density=true \
      --set output.density_mesh=$hmesh --set output.snapshots=true --set halos.member_ids=true \
      --set halos.min_particles=10 --set "output.directory=\"$out/cheap_$s\"" > $out/cheap_$s.log
done

# 2. Thresholds (n = 1e-3 on the training truth) and the truth's halo fields.
$py - $out > $out/thresholds.txt <<'PY'
import sys, h5py, numpy as np
out = sys.argv[1]
print("# a min_particles (median over training seeds of the group length at n = 1e-3 (h/Mpc)^3)")
for a in ("0.5000", "1.0000"):
    ks = []
    for s in range(501, 507):
        with h5py.File(f"{out}/truth_{s}/halos_a{a.replace('.', 'p')}.0.hdf5", "r") as f:
            L = np.sort(f["Group/GroupLen"][:])[::-1]
            V = f["Header"].attrs["BoxSize"] ** 3
        ks.append(L[int(round(1e-3 * V)) - 1])
    print(a, int(np.median(ks)))
PY
while read -r a nmin; do
  [ "$a" = "#" ] && continue
  for s in $train $select $heldout; do
    $py validation/halo_fields.py $out/truth_$s/halos_a${a/./p}.0.hdf5 \
      $out/truth_$s/halo_fields_a$a.hdf5 --mesh $hmesh --min-particles "$nmin" > /dev/null
  done
done < $out/thresholds.txt
cheap_min=20 # params/validation_halos.toml [halos] min_particles: what the hook's FoF keeps
for a in 0.5000 1.0000; do
  for s in $train $select $heldout; do
    $py validation/halo_fields.py $out/cheap_$s/halos_a${a/./p}.0.hdf5 \
      $out/cheap_$s/fof_fields_a$a.hdf5 --mesh $hmesh --min-particles $cheap_min > /dev/null
  done
done

# 3. Training, one model per redshift.
for a in 1.0000 0.5000; do
  {
    echo "# Halo surrogate at a = $a (written by validation/halos.sh)"
    echo "[data]"
    echo "train = ["
    for s in $train; do
      echo "  {inputs = [\"cheap_$s/density_a$a.hdf5:Fields/density\", \"cheap_$s/fof_fields_a$a.hdf5:Fields/fof_count\"], targets = [\"truth_$s/halo_fields_a$a.hdf5:Fields/halo_number\", \"truth_$s/halo_fields_a$a.hdf5:Fields/halo_mass\"]},"
    done
    echo "]"
    echo "validation = [{inputs = [\"cheap_507/density_a$a.hdf5:Fields/density\", \"cheap_507/fof_fields_a$a.hdf5:Fields/fof_count\"], targets = [\"truth_507/halo_fields_a$a.hdf5:Fields/halo_number\", \"truth_507/halo_fields_a$a.hdf5:Fields/halo_mass\"]}]"
    cat <<TOML
[model]
kind = "halo_surrogate"
depth = 2
width = $width
inputs = ["density", "fof_count"]
transforms = {density = "log1p", fof_count = "log1p"}
linking_length = 0.2
[training]
loss = "halo"
steps = $steps
batch = 4
crop = 32
learning_rate = 1e-3
warmup = 50
validate_every = 100
checkpoint_every = 500
[output]
directory = "$out/model_a$a"
TOML
  } > $out/train_a$a.toml
  if [ ! -f $out/model_a$a/model.pt ]; then
    rm -rf $out/model_a$a
    bash jobs/mpirun.sh "$np" $caustic train $out/train_a$a.toml < /dev/null > $out/train_a$a.log
  fi
done

# 3b. The per-group surrogate, one per redshift: the cheap snapshots' FoF groups (b = 0.2, >= 10
# particles) with their features on the production PM mesh (256^3), matched by member IDs to the
# truth's groups; the catalogue keeps the halos of at least the n = 1e-3 mass.
while read -r a nmin; do
  [ "$a" = "#" ] && continue
  {
    echo "# Per-group halo surrogate at a = $a (written by validation/halos.sh)"
    echo "[data]"
    echo "train = ["
    for s in $train; do
      echo "  {snapshot = \"cheap_$s/snapshot_a$a.hdf5\", truth = \"truth_$s/halos_a${a/./p}.0.hdf5\"},"
    done
    echo "]"
    echo "validation = [{snapshot = \"cheap_507/snapshot_a$a.hdf5\", truth = \"truth_507/halos_a${a/./p}.0.hdf5\"}]"
    cat <<TOML
[model]
kind = "halo_groups"
radii = [1.0, 2.0, 4.0, 8.0]
hidden = [32, 32]
feature_mesh = 256
b = 0.2
fof_min_particles = 10
min_particles = $nmin
[training]
steps = 3000
learning_rate = 3e-3
validate_every = 100
[output]
directory = "$out/groups_a$a"
TOML
  } > $out/groups_a$a.toml
  if [ ! -f $out/groups_a$a/model.json ]; then
    rm -rf $out/groups_a$a
    bash jobs/mpirun.sh "$np" $caustic train $out/groups_a$a.toml < /dev/null > $out/groups_a$a.log
  fi
  # Variants of the same training: groups_NAME_a$a with extra --set options.
  variant() {
    local name=$1
    shift
    [ -f $out/groups_${name}_a$a/model.json ] && return
    rm -rf $out/groups_${name}_a$a
    bash jobs/mpirun.sh "$np" $caustic train $out/groups_a$a.toml "$@" \
      --set "output.directory=\"$out/groups_${name}_a$a\"" < /dev/null > $out/groups_${name}_a$a.log
  }
  # Without the centres' correction (the network is the same: the correction is a least-squares
  # fit after it), for the comparison.
  variant nopos --set model.position_correction=false
  # Targets for the expected halo-mass field: each group's summed mass of the truth halos that
  # pick it (model.mass_target = "assigned"; where the cheap run merged two halos, both).
  variant assigned --set 'model.mass_target="assigned"'
  # The same targets with the expected halo masses' squared error in the loss (model.field_weight).
  variant field --set 'model.mass_target="assigned"' --set model.field_weight=1
done < $out/thresholds.txt

# 4. Held-out cheap runs with the surrogates in-situ (no P(k): the cost of what users run).
cat params/validation_halos.toml - > $out/heldout.toml <<TOML

[emulators.halos_z1]
model = "model_a0.5000/model.pt"
a = [0.5]
mesh = $hmesh
inputs = ["density", "fof_count"]

[emulators.halos_z0]
model = "model_a1.0000/model.pt"
a = [1.0]
mesh = $hmesh
inputs = ["density", "fof_count"]
TOML
for s in $select $heldout; do
  run $out/heldout.toml --set simulation.seed=$s "${insitu[@]}" \
    --set "output.directory=\"$out/heldout_$s\"" > $out/heldout_$s.log
  # The same with the most probable voxels instead of Bernoulli draws.
  run $out/heldout.toml --set simulation.seed=$s "${insitu[@]}" \
    --set emulators.halos_z1.selection=\"top\" --set emulators.halos_z0.selection=\"top\" \
    --set "output.directory=\"$out/heldout_top_$s\"" > $out/heldout_top_$s.log
done

# The per-group surrogates in-situ on the same held-out runs: threshold, top and sampled selection.
cat params/validation_halos.toml - > $out/heldout_groups.toml <<TOML

[emulators.groups_z1]
model = "groups_a0.5000/model.json"
a = [0.5]

[emulators.groups_z0]
model = "groups_a1.0000/model.json"
a = [1.0]
TOML
for s in $select $heldout; do
  for sel in threshold top sample; do
    dir=$out/heldout_groups_$s
    [ $sel = threshold ] || dir=$out/heldout_groups_${sel}_$s
    run $out/heldout_groups.toml --set simulation.seed=$s "${insitu[@]}" \
      --set emulators.groups_z1.selection=\"$sel\" --set emulators.groups_z0.selection=\"$sel\" \
      --set "output.directory=\"$dir\"" > $dir.log
  done
  # The training variants (threshold selection).
  for v in nopos assigned field; do
    run $out/heldout_groups.toml --set simulation.seed=$s "${insitu[@]}" \
      --set emulators.groups_z1.model=\"groups_${v}_a0.5000/model.json\" \
      --set emulators.groups_z0.model=\"groups_${v}_a1.0000/model.json\" \
      --set "output.directory=\"$out/heldout_groups_${v}_$s\"" > $out/heldout_groups_${v}_$s.log
  done
done

# 5. Figures and the table (fields on the voxel surrogate's 64^3 mesh, and the catalogues also on
# a 256^3 mesh, where the 2 Mpc/h voxels no longer blur them).
$py validation/plot_halos.py $out $hmesh $select --calibrate-on "${train// /,}" \
  --groups --measure-mesh 256 --prefix halo_selection --choose $out/halo_choice.json > /dev/null
$py validation/plot_halos.py $out $hmesh $heldout --calibrate-on "${train// /,}" \
  --groups --measure-mesh 256 --recommend $out/halo_choice.json
