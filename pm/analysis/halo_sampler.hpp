#pragma once
// Halo catalogues sampled from a halo surrogate's per-voxel fields.
//
// Voxel (i, j, k) of the mesh is the CIC cell of mesh point (i, j, k): the region within half a
// cell of x = (i, j, k) H. It holds a halo with probability `presence` (selection "sample"), or
// the round(sum of presence) voxels of highest presence hold one (selection "top": the most
// probable halos, with no sampling noise of their own; the threshold is found by bisection over
// the global counts, so it does not depend on the decomposition either); a present halo is placed
// uniformly in that region, its ln M drawn from a normal of mean ln `mass` and width
// `log_mass_scatter`, truncated below at ln `min_mass` (redrawn up to 64 times, else min_mass),
// its member count is max(1, round(M / particle_mass)) and its mass that count times the
// particle mass (the FoF catalogue's convention), its momentum the voxel's value of the optional
// `momentum` fields. Every draw comes from Philox4x32-10 keyed by `seed` at the counter (i, j, k,
// stream + 256 output), so the catalogue is a function of the fields, the seed and `output`
// only, not of the decomposition. The label of a halo is its voxel's index (i N + j) N + k.
#include "pm/analysis/fof.hpp"
#include "pm/mesh/mesh.hpp"

#include <array>
#include <cstdint>

namespace caustic {

struct HaloSamplerOptions {
  std::uint64_t seed = 1;
  std::uint32_t output = 0;      // another stream per output (e.g. the scale factor x 1e4)
  double log_mass_scatter = 0.0; // >= 0
  double min_mass = 0.0;         // [Msun/h], > 0
  double particle_mass = 0.0;    // [Msun/h], > 0
  bool top = false;              // the most probable voxels instead of Bernoulli draws
};

// Collective over the fields' communicator; the catalogue (sorted by label) on every rank, with
// radius and sigma_v zero. Throws std::invalid_argument for bad options, std::runtime_error
// (on every rank) for a presence outside [0, 1] or a mass that is not finite and positive.
HaloCatalogue sampleHalos(const Field<float>& presence, const Field<float>& mass,
                          const std::array<const Field<float>*, 3>& momentum,
                          const HaloSamplerOptions& opt);

} // namespace caustic
