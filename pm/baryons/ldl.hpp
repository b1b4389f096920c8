#pragma once
// Lagrangian Deep Learning (LDL; Dai & Seljak 2021, PNAS 118, e2020324118): a baryon painter of a
// few physical parameters, differentiable, distributed.
//
// From the dark-matter particles x_0 (this rank's, in any order: their "home" order, kept
// throughout), L displacement layers, each with parameters (alpha, gamma, k_l, k_h, n):
//   1 + delta = the particles' CIC density over its mean (on the mesh of `decomp`)
//   f = (1 + delta + 1e-8)^gamma
//   phi = F^-1[ O(k) F[f] ],  O(k) = exp(-k^2 / k_h^2) exp(-k_l^2 / k^2) k^n
//                             (O(0) = 0; k in h/Mpc)
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
//
// LdlProduct paints F = s * F_1 * F_2 * ... from LDL painters on one mesh (each with its own
// layers and parameters): the electron pressure as n_e times T, as Dai & Seljak paint the tSZ
// signal, whose two factors are far better correlated with the truth than one painter of the
// pressure itself. The fit (ldl_fit.hpp) takes either through LdlModel.
#include "pm/force/painter.hpp"
#include "pm/mesh/mesh.hpp"

#include <memory>
#include <vector>

namespace caustic {

struct LdlHaloSet; // ldl_halo.hpp

// What the fit needs of a painter: its parameters, a forward pass and d<Fbar, F>/d(parameters).
class LdlModel {
public:
  virtual ~LdlModel() = default;
  virtual std::size_t parameterCount() const = 0;
  // F for the particles x (this rank's first n) and the parameters. Collective.
  virtual void forward(const Kokkos::View<double* [3]>& x, std::size_t n,
                       const std::vector<double>& params, Field<double>& out) = 0;
  // d <Fbar, F> / d params at the last forward (the same on every rank). Collective.
  virtual std::vector<double> gradient(const Field<double>& fbar) = 0;
  // Parameter i is a filter scale (k_l or k_h of a layer): positive, fitted as a logarithm.
  virtual bool logParameter(std::size_t i) const = 0;
  // Parameter i belongs to an output layer (mu, b_1, b_0).
  virtual bool outputParameter(std::size_t i) const = 0;
  // The FoF catalogue of the particles of the next forward, for a model with a halo layer
  // (ldl_halo.hpp); others ignore it.
  virtual void setHalos(const LdlHaloSet*) {}
};

// The layout of one painter's parameters: 5 per layer, then the 3 of the output layer.
bool ldlLogParameter(std::size_t i, int layers);
bool ldlOutputParameter(std::size_t i, int layers);

class LdlPainter : public LdlModel {
public:
  static constexpr int kLayerParams = 5;  // alpha, gamma, k_l, k_h, n
  static constexpr int kOutputParams = 3; // mu, b_1, b_0

  // share: a painter on the same decomposition whose particle exchange and buffers this one
  // uses too (painters that run one after the other, as LdlProduct's factors: one set of
  // particle-sized buffers instead of one per factor).
  LdlPainter(std::shared_ptr<const SlabDecomposition> decomp, int layers,
             const LdlPainter* share = nullptr);
  ~LdlPainter();

  int layers() const { return _layers; }
  std::size_t parameterCount() const override {
    return static_cast<std::size_t>(kLayerParams * _layers + kOutputParams);
  }

  // F for the particles x (this rank's first n) and the parameters (layer by layer, then the
  // output layer). Keeps the state for gradient(). Collective.
  void forward(const Kokkos::View<double* [3]>& x, std::size_t n, const std::vector<double>& params,
               Field<double>& out) override;
  // The displaced particles of the last forward (home order).
  const Kokkos::View<double* [3]>& displaced() const { return _xs.back(); }
  // d <Fbar, F> / d params at the last forward's parameters (the same on every rank). Collective.
  std::vector<double> gradient(const Field<double>& fbar) override;
  // d <Fbar, F> / d x (this rank's particles, home order) of the last gradient(): the cotangent
  // of the input positions, for a layer before the painter (ldl_halo.hpp).
  const Kokkos::View<double* [3]>& inputCotangent() const {
    return _xbar;
  } bool logParameter(std::size_t i) const override {
    return ldlLogParameter(i, _layers);
  }
  bool outputParameter(std::size_t i) const override { return ldlOutputParameter(i, _layers); }

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
  Kokkos::View<double* [3]> _xbar;            // the input positions' cotangent of gradient()
  struct Exchange;
  std::shared_ptr<Exchange> _ex;
};

// F = scale * F_1 * ... * F_m: painters of `layers[f]` layers each on one mesh; the parameters are
// the factors' in order. Keeps the factors' fields of the last forward for gradient():
// d<Fbar, F>/d(theta_f) = factor f's gradient of the cotangent scale * Fbar * prod_{g != f} F_g.
class LdlProduct : public LdlModel {
public:
  LdlProduct(std::shared_ptr<const SlabDecomposition> decomp, const std::vector<int>& layers,
             double scale);
  ~LdlProduct() override;

  std::size_t parameterCount() const override;
  void forward(const Kokkos::View<double* [3]>& x, std::size_t n, const std::vector<double>& params,
               Field<double>& out) override;
  std::vector<double> gradient(const Field<double>& fbar) override;
  bool logParameter(std::size_t i) const override;
  bool outputParameter(std::size_t i) const override;

  double scale() const { return _scale; }
  void setScale(double s) { _scale = s; }
  // Factor f's field of the last forward.
  const Field<double>& factor(std::size_t f) const { return *_fields.at(f); }

private:
  // (factor, index within it) of parameter i.
  std::pair<std::size_t, std::size_t> locate(std::size_t i) const;

  std::shared_ptr<const SlabDecomposition> _decomp;
  std::vector<int> _layers;
  double _scale;
  std::vector<std::unique_ptr<LdlPainter>> _painters;
  std::vector<std::unique_ptr<Field<double>>> _fields;
};

} // namespace caustic
