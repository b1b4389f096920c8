#pragma once
// Initial conditions: white noise -> linear density -> LPT displacements -> particles.
#include "pm/cosmology/cosmology.hpp"
#include "pm/cosmology/linear_power.hpp"
#include "pm/ic/lpt.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/particles/particles.hpp"
#include "pm/ic/white_noise.hpp"

namespace caustic {

struct ICOptions {
  NoiseOptions noise;
  int lpt_order = 2;
  double a_start = 0.02;
  double lattice_offset = 0.0; // [Mpc/h] on every axis; half a PM cell in runs (see lptParticles)
};

// Particles of the lattice `lattice` (one per cell; N = particles per side) at a_start,
// each rank holding its Lagrangian x-slab. Collective.
// T: the precision of the meshes; R: of the particles.
template <class T, class R = double>
BasicParticles<R> makeInitialConditions(std::shared_ptr<const SlabDecomposition> lattice,
                                        const Cosmology& cosmo, const LinearPower& power,
                                        const ICOptions& opt);

} // namespace caustic
