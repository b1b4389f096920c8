#pragma once
// Particle migration: after it, every rank holds exactly the particles whose x lies in its
// real-space slab of `decomp`. Plans first (destination ranks), skips the exchange when no
// particle crosses a boundary, then moves only the leaving particles (a Distributor plan with
// Local::Stay): their places are filled by particles from the end of the arrays, and arrivals
// are appended in rank order (the Lagrangian, spatially coherent order of the rest is kept).
// x, p, id and every attribute travel together in one MPI_Alltoallv. Spare capacity absorbs
// arrivals; the arrays grow by 10% more than needed only when it runs out.
#include "pm/mesh/mesh.hpp"
#include "pm/particles/distributor.hpp"
#include "pm/particles/particles.hpp"

#include <cstdint>
#include <vector>

namespace caustic {

class Migrator {
public:
  explicit Migrator(std::shared_ptr<const SlabDecomposition> decomp);
  // Returns the number of particles that left this rank. A `companion` (same size, e.g. the
  // adjoints of x and p) has its x and p moved along with the particles (as extra columns),
  // and takes their IDs. Collective.
  // (R: double or float, as for every member template below.)
  template <class R>
  std::size_t operator()(BasicParticles<R>& parts, BasicParticles<R>* companion = nullptr);
  // With `decomp` the particle lattice: sends every particle to the rank owning its Lagrangian
  // plane (from its id) and puts it in lattice order, local index ((i - x0) N + j) N + k.
  // Throws std::runtime_error unless the particles cover the lattice once. Collective.
  template <class R>
  std::size_t toLattice(BasicParticles<R>& parts, BasicParticles<R>* companion = nullptr);
  // x <- x + factor p (periodic, box [Mpc/h]), planning the migration of the new positions in
  // the same pass: the next operator() on these particles uses that plan instead of scanning
  // them again, so nothing may change x in between (NBody drifts, then migrates at once).
  template <class R> void drift(BasicParticles<R>& parts, double factor, double box);

private:
  // The per-particle destination array, grown to `capacity` when needed.
  const Kokkos::View<int*>& destinations(std::size_t capacity);
  // Moves the particles whose destination (planned into _dest) is another rank.
  template <class R>
  std::size_t exchange(BasicParticles<R>& parts, BasicParticles<R>* companion, long leaving);
  std::shared_ptr<const SlabDecomposition> _decomp;
  Kokkos::View<int*> _owner; // owner rank of each x-plane
  Kokkos::View<int*> _dest;  // per particle, reused
  // The plan made by drift(): for the particles at _planned_x (count _planned_n), or none.
  const void* _planned_x = nullptr;
  std::size_t _planned_n = 0;
  long _planned_leaving = 0;
  // The plan and its buffers, and the list of columns, reused from call to call.
  Distributor _plan;
  Distributor::Columns _columns;
};

// Convenience: a one-off Migrator.
template <class R> std::size_t migrate(BasicParticles<R>& parts, const SlabDecomposition& decomp);

} // namespace caustic
