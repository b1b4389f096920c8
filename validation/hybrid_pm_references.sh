#!/usr/bin/env bash
# Reference ("truth") runs for the hybrid PM force correction (issue 15): one run of
# params/hybrid_pm_reference.toml (256^3 mesh, 80 steps, snapshots at the production step
# boundaries; with CONFIG=2x params/hybrid_pm_2x_reference.toml, a 512^3 mesh) per seed, into
# WORKDIR/seed_<SEED>. A seed whose run_summary.json exists already is skipped, so the script can
# be re-run after an interruption. Extra --set options apply to every run (Omega_m-shifted
# references, other resolutions, shorter test references).
# Usage: bash validation/hybrid_pm_references.sh WORKDIR SEED... [--set section.key=value ...]
#   NP=4 bash validation/hybrid_pm_references.sh ...   (MPI ranks, default 2)
#   CONFIG=2x bash validation/hybrid_pm_references.sh ...   (the references of the 2x mesh)
# Build first (scripts/build.sh release); this script does not build.
set -euo pipefail
usage() {
  echo "usage: $0 WORKDIR SEED... [--set section.key=value ...]" >&2
  exit 2
}
[ $# -ge 2 ] || usage
root=$(cd "$(dirname "$0")/.." && pwd)
workdir=$1
shift
# WORKDIR relative to the caller's directory, not the repository root.
case "$workdir" in
  /*) ;;
  *) workdir="$PWD/$workdir" ;;
esac
seeds=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --set)
      [ $# -ge 2 ] || { echo "$0: --set needs section.key=value" >&2; exit 2; }
      extra+=(--set "$2")
      shift 2
      ;;
    --set=*)
      extra+=(--set "${1#--set=}")
      shift
      ;;
    *)
      if ! [[ "$1" =~ ^[0-9]+$ ]]; then
        echo "$0: seed '$1': expected a non-negative integer" >&2
        exit 2
      fi
      seeds+=("$1")
      shift
      ;;
  esac
done
[ ${#seeds[@]} -ge 1 ] || usage
cd "$root"
np=${NP:-2}
config=${CONFIG:-}
case "$config" in
  "" | 2x) ;;
  *) echo "$0: CONFIG=$config: expected 2x or nothing" >&2; exit 2 ;;
esac
reference=params/hybrid_pm${config:+_$config}_reference.toml
if [ ! -x build/src/caustic ]; then
  echo "$0: build/src/caustic not found; build first (bash scripts/build.sh release)" >&2
  exit 1
fi
mkdir -p "$workdir"
for seed in "${seeds[@]}"; do
  dir="$workdir/seed_$seed"
  if [ -f "$dir/run_summary.json" ]; then
    echo "seed $seed: $dir/run_summary.json exists, skipped"
    continue
  fi
  echo "seed $seed: reference run into $dir (${np} ranks${extra[*]:+, ${extra[*]}})"
  start=$(date +%s.%N)
  bash jobs/mpirun.sh "$np" build/src/caustic run "$reference" \
    --set "simulation.seed=$seed" --set "output.directory=$dir" --overwrite ${extra[@]+"${extra[@]}"}
  end=$(date +%s.%N)
  awk -v s="$seed" -v a="$start" -v b="$end" 'BEGIN { printf "seed %s: reference took %.1f s wall time\n", s, b - a }'
done
