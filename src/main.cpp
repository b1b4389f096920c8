// The `caustic` command: parses the command line, sets up MPI and Kokkos, runs a subcommand.
#include "commands.hpp"
#include "pm/memory.hpp"

#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <mpi.h>

#include <cstdio>
#include <iostream>

namespace {

int runCommand(int argc, char** argv) {
  using namespace caustic;
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  CLI::App app{"Caustic: distributed particle-mesh N-body simulations with in-situ emulators"};
  app.require_subcommand(1);
  std::string file;
  std::vector<std::string> sets;
  auto* ic = app.add_subcommand("ic", "Generate initial conditions: snapshot and power spectrum");
  ic->add_option("params", file, "TOML parameter file")->required();
  ic->add_option("--set", sets, "Override a parameter: section.key=value (repeatable)");
  auto* run = app.add_subcommand("run", "Run a simulation: initial conditions, PM steps, outputs");
  run->add_option("params", file, "TOML parameter file")->required();
  run->add_option("--set", sets, "Override a parameter: section.key=value (repeatable)");
  app.set_version_flag("--version", CAUSTIC_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (rank == 0)
      return app.exit(e);
    return e.get_exit_code();
  }

  Comm comm(MPI_COMM_WORLD);
  RunContext ctx(comm);
  Params params;
  try {
    params = loadParams(file, sets, size);
  } catch (const ParamError& e) {
    // Every rank read the same input and fails the same way.
    if (rank == 0)
      std::fprintf(stderr, "caustic: error: %s\n", e.what());
    return 2;
  }
  if (*ic) {
    runInitialConditions(ctx, params);
    return 0;
  }
  return runSimulationCommand(ctx, params);
}

} // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rc = 0;
  {
    Kokkos::ScopeGuard kokkos(argc, argv);
    caustic::configureAllocator();
    try {
      rc = runCommand(argc, argv);
    } catch (const std::exception& e) {
      // A failure that may concern this rank only: stop all ranks rather than hang.
      std::fprintf(stderr, "caustic: error: %s\n", e.what());
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }
  MPI_Finalize();
  return rc;
}
