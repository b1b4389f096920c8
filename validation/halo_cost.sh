#!/usr/bin/env bash
# Cost benchmark of the per-group halo surrogate (issue 18), on an otherwise idle machine: for
# each seed, REPEATS times each, the truth run (params/validation_halos.toml: the 768^3 mesh,
# 40 steps, FoF at z = 1 and 0) and the cheap production run (256^3 mesh, 10 steps) with both
# per-group surrogates in-situ and no FoF of its own ([halos] off); neither writes P(k). Prints
# the wall seconds of every run (run_summary.json), the surrogates' share, and the speed-up of
# the medians. Needs validation/halos.sh's models and held-out configuration (output/validation_halos).
# Usage: bash validation/halo_cost.sh [NP] [REPEATS] [SEEDS...]   (defaults: 2, 3, 601 602 603)
set -euo pipefail
cd "$(dirname "$0")/.."
np=${1:-2}
repeats=${2:-3}
shift $(($# < 2 ? $# : 2))
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(601 602 603)
if ! [[ "$repeats" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: REPEATS = '$repeats': expected a positive integer" >&2
  exit 2
fi
val=output/validation_halos
# The held-out runs' configuration of validation/halos.sh (params/validation_halos.toml with both
# per-group hooks; model paths relative to it), so the benchmark times what the validation ran.
groups=$val/heldout_groups.toml
for f in $groups $val/groups_a0.5000/model.json $val/groups_a1.0000/model.json; do
  if [ ! -f $f ]; then
    echo "$0: $f is missing: run validation/halos.sh first" >&2
    exit 2
  fi
done
bash scripts/build.sh release >/dev/null
caustic=build/src/caustic
work=$(mktemp -d "${TMPDIR:-/tmp}/caustic_halo_cost.XXXXXX")
trap 'rm -rf "$work"' EXIT
run() { bash jobs/mpirun.sh "$np" $caustic run "$@" --set output.power_spectrum=false --overwrite < /dev/null > "$work/log" 2>&1; }
wall() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['wall_seconds'])" "$1"; }
hooks() {
  /usr/bin/python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['timings_seconds_max_over_ranks']; print(sum(v for k, v in t.items() if k.startswith('step:observer:emulator')))" "$1"
}
echo "# halo surrogate cost, $np ranks, $repeats runs each (wall seconds from run_summary.json)"
echo "| seed | truth run + FoF (runs) | cheap run + group surrogates (runs) | of which surrogates | speed-up of the medians |"
echo "|---|---|---|---|---|"
for s in "${seeds[@]}"; do
  tr=() cr=() hr=()
  for ((i = 0; i < repeats; ++i)); do
    run params/validation_halos.toml --set simulation.seed="$s" --set "output.directory=\"$work/truth\""
    tr+=("$(wall "$work/truth/run_summary.json")")
    run $groups --set simulation.seed="$s" --set simulation.mesh=256 \
      --set simulation.steps=10 --set simulation.a_start=0.1 --set halos.enabled=false \
      --set "output.directory=\"$work/cheap\""
    cr+=("$(wall "$work/cheap/run_summary.json")")
    hr+=("$(hooks "$work/cheap/run_summary.json")")
  done
  /usr/bin/python3 - "$s" "${tr[*]}" "${cr[*]}" "${hr[*]}" <<'PY'
import sys
import numpy as np
s, t, c, h = sys.argv[1], *(np.array(x.split(), float) for x in sys.argv[2:])
f = lambda v: " ".join(f"{x:.1f}" for x in v)
print(f"| {s} | {np.median(t):.1f} ({f(t)}) | {np.median(c):.2f} ({f(c)}) | {np.median(h):.2f} | "
      f"{np.median(t) / np.median(c):.1f}x |")
PY
done
