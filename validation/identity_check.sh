#!/usr/bin/env bash
# Byte-identity of a restructuring: runs the same parameter files with a reference build and
# with this build and compares the snapshots (Coordinates, Velocities, ParticleIDs) exactly.
#
#   bash validation/identity_check.sh REFERENCE_CAUSTIC [WORKDIR] [--quick]
#
# REFERENCE_CAUSTIC is the `caustic` binary of the code before the change (e.g. a clone at the
# older commit built with scripts/build.sh); this build is build/src/caustic. Cases:
# params/default.toml and params/validation_pm.toml (skipped with --quick), CIC and TSC, at 1, 2
# and 3 ranks (gravity.window), double-precision snapshots, FFTW_ESTIMATE plans (measured plans may differ
# between runs). Reference outputs are kept in WORKDIR/ref (default /tmp/caustic_identity) and
# reused when present. Exits 1 on any difference.
set -euo pipefail
cd "$(dirname "$0")/.."
ref_bin=$(readlink -f "$1")
work=${2:-/tmp/caustic_identity}
quick=0
for a in "$@"; do [ "$a" = --quick ] && quick=1; done
[ "$work" = --quick ] && work=/tmp/caustic_identity
new_bin=$PWD/build/src/caustic
cases=(default)
[ "$quick" = 1 ] || cases+=(validation_pm)
status=0
for case in "${cases[@]}"; do
  for window in cic tsc; do
    for np in 1 2 3; do
      tag=${case}_${window}_np${np}
      opts=(--set gravity.window=\"$window\" --set fft.plan=\"estimate\"
            --set output.snapshot_precision=\"double\" --set halos.enabled=false)
      if [ ! -f "$work/ref/$tag/snapshot_a1.0000.hdf5" ]; then
        bash jobs/mpirun.sh "$np" "$ref_bin" run "params/$case.toml" --overwrite "${opts[@]}" \
          --set output.directory=\"$work/ref/$tag\" >"$work.ref.$tag.log" 2>&1 || {
          echo "reference run $tag failed: $work.ref.$tag.log"; exit 1; }
      fi
      bash jobs/mpirun.sh "$np" "$new_bin" run "params/$case.toml" --overwrite "${opts[@]}" \
        --set output.directory=\"$work/new/$tag\" >"$work.new.$tag.log" 2>&1 || {
        echo "run $tag failed: $work.new.$tag.log"; exit 1; }
      /usr/bin/python3 validation/compare_snapshots.py "$work/ref/$tag" "$work/new/$tag" || status=1
    done
  done
done
[ "$status" = 0 ] && echo "identity_check: all snapshots byte-identical" || echo "identity_check: DIFFERENCES"
exit "$status"
