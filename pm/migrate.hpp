#pragma once
// Particle migration: after it, every rank holds exactly the particles whose x lies in its
// real-space slab of `decomp`. Plans first (destination counts), skips the exchange when no
// particle crosses a boundary, then moves with MPI_Alltoallv. After an exchange the particles are
// ordered by source rank, each source's particles in their original order.
#include "pm/mesh.hpp"
#include "pm/particles.hpp"

namespace caustic {

// Returns the number of particles that moved off this rank.
std::size_t migrate(Particles& parts, const SlabDecomposition& decomp);

// Owning rank of position x [Mpc/h] (wrapped into [0, L) already).
int ownerOfPosition(double x, const SlabDecomposition& decomp);

} // namespace caustic
