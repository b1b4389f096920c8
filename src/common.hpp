#pragma once
// Pieces shared by the commands.
#include "io/params.hpp"
#include "pm/linear_power.hpp"
#include "run_context.hpp"

#include <string>

namespace caustic {

LinearPower makeLinearPower(const Params& params);
// Creates the output directory on rank 0; every rank learns whether that worked (throws).
void prepareOutput(const RunContext& ctx, const std::string& dir);
std::string format(const char* fmt, double v);

} // namespace caustic
