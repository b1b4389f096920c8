#!/usr/bin/env bash
# Configures and builds Caustic. Usage: scripts/build.sh [release|sanitize]
#   release  -> build/           (Release, all targets, LibTorch emulators on)
#   sanitize -> build-sanitize/  (address + undefined sanitizers, Debug, the test programs run
#               by scripts/run-tests.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
jobs=${CAUSTIC_BUILD_JOBS:-$(nproc)}
case "$kind" in
  release)
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${CAUSTIC_CMAKE_ARGS:-} >/dev/null
    cmake --build build -j "$jobs"
    ;;
  sanitize)
    cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DCAUSTIC_SANITIZE=ON \
      -DCAUSTIC_ENABLE_TORCH=OFF >/dev/null
    cmake --build build-sanitize -j "$jobs" --target caustic_unit_tests caustic_mpi_tests caustic_io_mpi_tests \
      caustic_adjoint_mpi_tests caustic_field_posterior_mpi_tests caustic_infer_mpi_tests
    ;;
  *)
    echo "usage: $0 [release|sanitize]" >&2
    exit 2
    ;;
esac
