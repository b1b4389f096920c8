#pragma once
// Mock observations of the field-level model: what `caustic infer` fits when the truth is known
// ([inference.mock]), and the simulations of MUSE (infer/muse.hpp).
#include "pm/grad/field_posterior.hpp"

#include <cstdint>
#include <memory>

namespace caustic {

// data <- b delta[omega, p] + sqrt(variance) eps: omega the unit white noise of `seed` on the
// lattice, delta the model's matter density contrast on the mesh, eps the unit white noise of
// `noise_seed` on the mesh (both rank-independent). `omega` and `delta` receive the noise and
// the unbiased field when not null. Collective.
void makeMockData(const DiffConfig& cfg, const DiffParams& p, double bias, double variance,
                  std::uint64_t seed, std::uint64_t noise_seed, Field<double>& data,
                  Field<double>* omega = nullptr, Field<double>* delta = nullptr);

} // namespace caustic
