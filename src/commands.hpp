#pragma once
#include "io/params.hpp"
#include "run_context.hpp"

namespace caustic {

// `caustic ic`: initial conditions, their snapshot and power spectrum.
void runInitialConditions(RunContext& ctx, const Params& params);
// `caustic run`: initial conditions, PM time stepping, outputs. Returns the exit code
// (0, or 128 + signal when stopped by SIGINT/SIGTERM at a step boundary).
int runSimulationCommand(RunContext& ctx, const Params& params);

} // namespace caustic
