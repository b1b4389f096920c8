#pragma once
#include "io/params.hpp"
#include "run_context.hpp"

namespace caustic {

// `caustic ic`: initial conditions, their snapshot and power spectrum.
void runInitialConditions(RunContext& ctx, const Params& params);
// `caustic run`: initial conditions, PM time stepping, outputs. Returns the exit code
// (0, or 128 + signal when stopped by SIGINT/SIGTERM at a step boundary).
int runSimulationCommand(RunContext& ctx, const Params& params);

struct FofCommandOptions {
  std::string snapshot;
  double b = 0.2;
  int min_particles = 20;
  bool member_ids = false;
  std::string output; // catalogue path (default: halos_<snapshot name>.hdf5 beside it)
};
// `caustic fof`: friends-of-friends on a snapshot: catalogue and mass function.
void runFofCommand(RunContext& ctx, const FofCommandOptions& opt);

struct TrainCommandOptions {
  std::string config;
  std::vector<std::string> sets;
  bool resume = false;
  int stop_after = -1;
};
// `caustic train`: trains a U-Net emulator on paired HDF5 fields. Returns the exit code.
int runTrainCommand(RunContext& ctx, const TrainCommandOptions& opt);

} // namespace caustic
