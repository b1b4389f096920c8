#pragma once
#include "io/params.hpp"
#include "run_context.hpp"

namespace caustic {

// `caustic ic`: initial conditions, their snapshot and power spectrum.
void runInitialConditions(RunContext& ctx, const Params& params);

} // namespace caustic
