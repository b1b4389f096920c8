#pragma once
// Pieces shared by the commands.
#include "io/format.hpp"
#include "io/params.hpp"
#include "pm/cosmology/cosmology.hpp"
#include "pm/cosmology/linear_power.hpp"
#include "pm/particles/particles.hpp"
#include "run_context.hpp"

#include <string>

namespace caustic {

LinearPower makeLinearPower(const Params& params);
// Creates the output directory on rank 0; every rank learns whether that worked (throws).
void prepareOutput(const RunContext& ctx, const std::string& dir);
// The run's initial conditions (timed as "initial_conditions"): the particle lattice half a PM
// cell off the mesh points, at a_start. Collective.
template <class T>
Particles makeRunInitialConditions(RunContext& ctx, const Params& params, const Cosmology& cosmo,
                                   const LinearPower& power);

} // namespace caustic
