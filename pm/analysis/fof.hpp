#pragma once
// Distributed friends-of-friends (Davis et al. 1985) on slab-distributed particles.
//
// Two particles are friends if their periodic distance is below the linking length
// ell = b L / N (b in units of the mean inter-particle separation); groups are the connected
// components. Each rank receives copies (ghosts) of the particles of other ranks within ell of
// its slab (several ranks away if slabs are thin), links its particles and ghosts with a
// union-find over a cell list (points radix-sorted by cells of side <= ell / sqrt(3), whose
// points are all friends; cells within two cells of each other linked by a Kokkos kernel over
// coarse columns of 2 x 2 cell columns with a lock-free union-find, so it runs on any
// backend), then the ranks agree on labels: every group is labelled by the smallest particle ID
// among its members, by exchanging the labels of ghosts with their owners until nothing changes.
// The result does not depend on the number of ranks.
//
// Group properties are reduced on a home rank per group (label modulo ranks), periodic-aware:
// positions are unwrapped around a member before averaging. With a particle lattice
// (FofOptions::lattice_grid), each group also gets its members' mean Lagrangian position, summed
// the same way: what the per-group halo surrogate's position correction needs, without gathering
// member IDs.
#include "pm/mesh/mesh.hpp"
#include "pm/particles/particles.hpp"

#include <cstdint>
#include <vector>

namespace caustic {

struct FofOptions {
  double b = 0.2;          // linking length in units of the mean particle separation
  int min_particles = 20;  // smallest group kept in the catalogue
  bool member_ids = false; // collect the IDs of each group's members
  // With lattice_grid = N > 0: particle ID (i N + j) N + k started at q = (i, j, k) L / N +
  // lattice_offset, and the catalogue carries each group's mean q (lattice_pos).
  int lattice_grid = 0;
  double lattice_offset = 0.0; // [Mpc/h]
};

struct HaloCatalogue {
  // One entry per group, sorted by label (the smallest member ID). All on every rank.
  std::vector<std::uint64_t> label;
  std::vector<std::uint64_t> count;
  std::vector<double> pos;     // centre of mass [Mpc/h], 3 per group, in [0, L)
  std::vector<double> vel;     // mean momentum p [H0 Mpc/h], 3 per group
  std::vector<double> sigma_v; // 1D velocity dispersion, momentum units [H0 Mpc/h]
  std::vector<double> radius;  // rms distance of members from the centre [Mpc/h]
  std::vector<double> lattice_pos; // if lattice_grid: members' mean lattice position q, unwrapped
                                   // around a member, [Mpc/h], 3 per group, in [0, L)
  std::vector<std::uint64_t> member_offset, members; // if member_ids: members of group g are
                                                     // members[member_offset[g] ...], ascending
  double linking_length = 0.0;                       // [Mpc/h]
  std::size_t size() const { return label.size(); }
};

// Labels (smallest member ID of its group) of this rank's particles, in particle order.
// Particles must be on their owning slabs of `decomp`. Collective.
// (Particles of either precision, here and in findHalos.)
template <class R>
std::vector<std::uint64_t> fofLabels(const BasicParticles<R>& parts,
                                     const SlabDecomposition& decomp, double linking_length);

// Groups of at least opt.min_particles members with their properties. Collective.
template <class R>
HaloCatalogue findHalos(const BasicParticles<R>& parts, const SlabDecomposition& decomp,
                        double mean_separation, const FofOptions& opt);

} // namespace caustic
