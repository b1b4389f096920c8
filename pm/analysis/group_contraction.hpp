#pragma once
// Contraction of the cores of small FoF groups: a halo-scale profile correction for particle
// sets whose halos are too diffuse (issue 16: the super-resolved particles spread the members of
// the truth's small halos about twice as wide as the truth, so FoF at b = 0.2 keeps only their
// cores and the mass function falls short).
//
// Around the centre c of every group of at most `max_members` members, each particle within the
// radius R of c (periodic nearest image, r = |x - c|) moves radially to
//   r -> r (lambda + (1 - lambda) (r / R)^2),
// which leaves the centre and the sphere r = R in place and pulls the inside in by up to the
// factor lambda (at small r). A particle within R of several such centres takes the move of the
// largest L1 norm; of equal ones, the group that comes first in the catalogue (smallest label).
// Velocities are not changed. This is the heuristic of validation/superres_halo_contraction.py
// (which fitted and scored it): its three numbers are fitted on training seeds, like PGD's.
#include "pm/analysis/fof.hpp"
#include "pm/particles/particles.hpp"

#include <cstddef>
#include <cstdint>

namespace caustic {

struct GroupContraction {
  double lambda = 0.6;             // the factor at the centre, in (0, 1]
  double radius = 1.0;             // R [Mpc/h], in (0, L / 4]
  std::uint64_t max_members = 200; // groups with more members are left alone
};

// Moves this rank's particles of `parts` by the contraction about the groups of `groups` (the
// same catalogue on every rank, as findHalos returns it) in the periodic box of side `box`
// [Mpc/h]. Local: not collective; the moved particles may have left their slabs (migrate them).
// Returns the number of groups contracted about. Throws std::invalid_argument for options
// outside the ranges above.
template <class R>
std::size_t contractGroups(BasicParticles<R>& parts, const HaloCatalogue& groups, double box,
                           const GroupContraction& opt);

} // namespace caustic
