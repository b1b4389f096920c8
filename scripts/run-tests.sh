#!/usr/bin/env bash
# The whole test suite on a fresh machine: install dependencies, build, run the unit and MPI
# tests in the address/undefined-sanitizer build, then every ctest test of the release build
# (unit, MPI at 1/2/3 ranks, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh release
bash scripts/build.sh sanitize
# Open MPI keeps its own allocations alive until exit: leak checking reports them, not ours.
export ASAN_OPTIONS=detect_leaks=0
export UBSAN_OPTIONS=print_stacktrace=1
./build-sanitize/tests/caustic_unit_tests
for np in 1 3; do
  bash jobs/mpirun.sh "$np" ./build-sanitize/tests/caustic_mpi_tests
  bash jobs/mpirun.sh "$np" ./build-sanitize/tests/caustic_io_mpi_tests
  bash jobs/mpirun.sh "$np" ./build-sanitize/tests/caustic_adjoint_mpi_tests
  bash jobs/mpirun.sh "$np" ./build-sanitize/tests/caustic_field_posterior_mpi_tests
  # ROL, the distributed vector, Laplace, HMC and the L-BFGS checkpoints (the MAP runs on the PM
  # model are in the release ctest run)
  bash jobs/mpirun.sh "$np" ./build-sanitize/tests/caustic_infer_mpi_tests --gtest_filter='Laplace*:Hmc*:Lbfgs*'
done
echo "sanitizer build: unit and MPI tests passed"
(cd build && ctest --output-on-failure --timeout 900)
