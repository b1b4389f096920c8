#!/usr/bin/env bash
# Portable MPI launcher: jobs/mpirun.sh NP COMMAND [ARGS...]
# Uses srun inside a SLURM allocation, otherwise mpirun/mpiexec. With Open MPI it adds
# --oversubscribe (more ranks than cores, e.g. 3 ranks on a 2-core machine) and, when run as
# root (containers, CI), --allow-run-as-root.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 NP COMMAND [ARGS...]" >&2
  exit 2
fi
np=$1
shift
if ! [[ "$np" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: NP = '$np': expected a positive integer (number of MPI ranks)" >&2
  exit 2
fi
# glibc (>= 2.35): transparent huge pages for large malloc'd blocks, above all FFTW-MPI's
# transpose buffers, which are allocated and freed in every transform (the project's own meshes
# and particle arrays ask for them in the code). 8% off a 2-rank step of 128^3 particles on a
# 256^3 mesh on the development machine. Kept if the caller set the tunable already.
case ":${GLIBC_TUNABLES:-}:" in
  *:glibc.malloc.hugetlb=*) ;;
  *) export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1" ;;
esac
if [ -n "${SLURM_JOB_ID:-}" ] && command -v srun >/dev/null 2>&1 && [ -z "${CAUSTIC_NO_SRUN:-}" ]; then
  # CAUSTIC_SRUN_ARGS: site options, e.g. "--mpi=pmix" where PMIx is not the default.
  # shellcheck disable=SC2086
  exec srun ${CAUSTIC_SRUN_ARGS:-} -n "$np" "$@"
fi
launcher=$(command -v mpirun || command -v mpiexec || true)
if [ -z "$launcher" ]; then
  echo "$0: no mpirun or mpiexec found (install openmpi-bin: scripts/setup.sh)" >&2
  exit 127
fi
extra=()
if "$launcher" --version 2>&1 | grep -qi "open mpi\|open-mpi\|openrte"; then
  extra+=(--oversubscribe -x GLIBC_TUNABLES)
  if [ "$(id -u)" -eq 0 ]; then extra+=(--allow-run-as-root); fi
fi
exec "$launcher" "${extra[@]}" -n "$np" "$@"
