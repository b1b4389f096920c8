#pragma once
// The small differentiable models of the gradient and inference tests.
#include "pm/grad/diff_config.hpp"
#include "pm/grad/lpt_model.hpp"

#include <cstdint>
#include <memory>

namespace caustic::test {

// n_lattice^3 particles, an n_mesh^3 mesh in a box of `box` Mpc/h on `comm`; `steps` PM steps
// from a = 0.1 to 1 after 2LPT; CIC; the lattice half a mesh cell off the mesh points.
inline DiffConfig smallDiffConfig(MPI_Comm comm, int n_lattice, int n_mesh, double box, int steps) {
  DiffConfig cfg;
  cfg.lattice = std::make_shared<SlabDecomposition>(comm, n_lattice, box);
  cfg.mesh = std::make_shared<SlabDecomposition>(comm, n_mesh, box);
  cfg.a_start = 0.1;
  cfg.a_end = 1.0;
  cfg.steps = steps;
  cfg.lpt_order = 2;
  cfg.window = Window::CIC;
  cfg.lattice_offset = 0.5 * cfg.mesh->cell();
  return cfg;
}

// The white noise of a run with this seed (real space, on the lattice).
inline std::shared_ptr<Field<double>> runNoise(std::shared_ptr<const SlabDecomposition> lattice,
                                               std::uint64_t seed) {
  auto w = std::make_shared<Field<double>>(lattice, "test::noise");
  FFT<double> fft(lattice);
  NoiseOptions opt;
  opt.seed = seed;
  whiteNoiseRealSpace(*w, fft, opt);
  return w;
}

} // namespace caustic::test
