#pragma once
// Per-group features of FoF groups: what the per-group halo surrogate (issue 18) sees of each
// group of a cheap run and of its surroundings.
//
// For group g (centre of mass c_g, as findHalos gives it) the features are, in this order:
//   ln_members      ln N_g (member particles)
//   ln_radius       ln max(r_rms, 1e-6 Mpc/h), r_rms the members' rms distance from c_g
//   ln_sigma_v      ln max(sigma_v, 1e-9), the members' 1D velocity dispersion [H0 Mpc/h]
//   ln_density_R<R> ln max(1 + delta_R(c_g), 1e-3) for every smoothing radius R [Mpc/h]:
//                   delta_R is the particles' CIC density contrast on `mesh`, convolved with
//                   the Gaussian exp(-k^2 R^2 / 2) in Fourier space, and CIC-interpolated at c_g
//                   (single-precision mesh: relative rounding ~1e-6).
// The density part is a function of the particles and the mesh only, so features do not depend
// on the number of ranks beyond the rounding of sums.
#include "pm/analysis/fof.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/particles/particles.hpp"

#include <memory>
#include <string>
#include <vector>

namespace caustic {

// The names of the features for these radii ("ln_density_R2" for R = 2; "%g" of R).
std::vector<std::string> groupFeatureNames(const std::vector<double>& radii);

// The vectors of the surrogate's position correction, per group (names in this order):
//   momentum      the members' mean momentum p [H0 Mpc/h] (HaloCatalogue::vel)
//   displacement  c_g - <q>, nearest periodic image [Mpc/h]; <q> the members' mean Lagrangian
//                 lattice position (HaloCatalogue::lattice_pos: FoF with FofOptions::lattice_grid)
// (The smoothed density's gradient at c_g was tried as a third vector on the halo validation
// data and reduced the held-out offsets by nothing measurable; it cost three FFTs.)
std::vector<std::string> groupVectorNames();
constexpr int kGroupVectors = 2;

// Features of every group of `groups` (the same catalogue on every rank), row-major
// [group][feature], the same on every rank. `parts` must be on their owning slabs of `mesh`;
// `total_particles` is the global particle count (the mean density). With `vectors`, also the
// position-correction vectors, [group][vector][axis], kGroupVectors * 3 per group (groups must
// carry lattice_pos). Collective over the mesh's communicator. Throws std::invalid_argument for
// a radius that is not positive and finite, or vectors asked of groups without lattice_pos.
std::vector<double> groupFeatures(const HaloCatalogue& groups, const Particles& parts,
                                  const std::shared_ptr<const SlabDecomposition>& mesh,
                                  double total_particles, const std::vector<double>& radii,
                                  std::vector<double>* vectors = nullptr);

} // namespace caustic
