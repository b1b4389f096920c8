#pragma once
// In-situ particle super-resolution (issue 16): a particle_super_resolution model (metadata.hpp)
// turns a run's N^3 particles into the (f N)^3 particles of the run with f^3 times more
// particles from the same white noise.
//
// The run's particles are sent by ID to the Lagrangian lattice (LagrangianExchange), the model
// is applied distributed on the lattice slabs (applyDistributed: ghost planes, tiles; equal to a
// single-rank application), and each rank makes the high-resolution particles of its lattice
// planes: the one at HR site f (i, j, k) + o gets ID (I f N + J) f N + K, position
// (I, J, K) L / (f N) + offset + its predicted displacement (wrapped into [0, L)) and its
// predicted momentum. They are not migrated: they sit on the rank of their LR lattice plane.
#include "emulators/inference/distributed_inference.hpp"
#include "emulators/runtime/model.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/particles/particles.hpp"

#include <memory>

namespace caustic {

// `lattice`: the run's N^3 particle lattice decomposition; `offset`: the run's lattice offset
// [Mpc/h]. Throws std::invalid_argument when the model is not a particle super-resolution model.
// Collective over the lattice's communicator.
Particles superResolveParticles(const Model& model, const Particles& parts,
                                const std::shared_ptr<const SlabDecomposition>& lattice,
                                double offset, const InferenceOptions& opt);

} // namespace caustic
