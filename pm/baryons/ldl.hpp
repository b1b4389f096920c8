#pragma once
// Lagrangian Deep Learning (LDL; Dai & Seljak 2021, PNAS 118, e2020324118): a baryon painter of a
// few physical parameters, differentiable, distributed.
//
// From the dark-matter particles x_0 (this rank's, in any order: their "home" order, kept
// throughout), L displacement layers, each with parameters (alpha, gamma, k_l, k_h, n):
//   1 + delta = the particles' CIC density over its mean (on the mesh of `decomp`)
//   f = (1 + delta + 1e-8)^gamma
//   phi = F^-1[ O(k) F[f] ],  O(k) = exp(-k^2 / k_h^2) exp(-k_l^2 / k^2) k^n  (O(0) = 0; k in h/Mpc)
//   x_{l+1} = x_l + alpha (-grad phi)(x_l)   (the 4-point finite-difference gradient of
//                                             Painter::readoutGradient, periodic)
// then the output layer on the density of the displaced particles:
//   F = ReLU(b_1 (1 + delta + 1e-8)^mu - b_0),   parameters (mu, b_1, b_0).
// (The authors' code: model.py of github.com/biweidai/LDL; the sign of alpha absorbs the filter's.)
//
// Distribution: the particles stay on their rank in home order; each layer sends copies to the
// ranks owning their x-planes (a Distributor plan), paints and reads out there and brings the
// displacement back, so the result does not depend on how the particles are spread over ranks
// (to round-off: the mesh sums are in another order).
//
// Reverse mode: gradient(Fbar) returns d<Fbar, F>/d(parameters) for a field cotangent Fbar of the
// last forward, by the adjoint of every step (the layers are recomputed from the stored
// positions; memory: one copy of the positions per layer and five meshes).
#include "pm/force/painter.hpp"
#include "pm/mesh/mesh.hpp"

#include <memory>
#include <vector>

namespace caustic {

class LdlPainter {
public:
  static constexpr int kLayerParams = 5;  // alpha, gamma, k_l, k_h, n
  static constexpr int kOutputParams = 3; // mu, b_1, b_0

  LdlPainter(std::shared_ptr<const SlabDecomposition> decomp, int layers);
  ~LdlPainter();

  int layers() const { return _layers; }
  int parameterCount() const { return kLayerParams * _layers + kOutputParams; }

  // F for the particles x (this rank's first n) and the parameters (layer by layer, then the
  // output layer). Keeps the state for gradient(). Collective.
  void forward(const Kokkos::View<double* [3]>& x, std::size_t n, const std::vector<double>& params,
               Field<double>& out);
  // The displaced particles of the last forward (home order).
  const Kokkos::View<double* [3]>& displaced() const { return _xs.back(); }
  // d <Fbar, F> / d params at the last forward's parameters (the same on every rank). Collective.
  std::vector<double> gradient(const Field<double>& fbar);

  // The filter O(k) and its derivatives in k_l, k_h, n.
  static double filter(double k, double k_l, double k_h, double n);

private:
  // The density 1 + delta of positions x (home order) into rho; plans the distributor (kept in
  // _dist) and leaves the particles' copies in _slab_x. Collective.
  void density(const Kokkos::View<double* [3]>& x, std::size_t n, Field<double>& rho);

  std::shared_ptr<const SlabDecomposition> _decomp;
  int _layers;
  Painter<double> _painter;
  FFT<double> _fft;
  double _total = 0.0; // particles over all ranks
  std::size_t _n = 0;
  std::vector<double> _params;
  std::vector<Kokkos::View<double* [3]>> _xs; // positions entering each layer, and the final ones
  struct Exchange;
  std::unique_ptr<Exchange> _ex;
};

} // namespace caustic
