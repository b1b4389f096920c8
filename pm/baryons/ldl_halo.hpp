#pragma once
// The halo layer of an LDL painter: a factor that tells haloes of different mass apart.
//
// An LDL painter (ldl.hpp) paints a function of the local dark-matter density. The baryon
// correction model it learns from (bcm.hpp) does not: a 10^13 Msun/h halo has ejected most of its
// gas, a 10^14.5 one keeps it, at the same density. The halo layer multiplies the painted field F
// by a smooth factor of the FoF catalogue of the same particles:
//
//   F_out(x) = F(x) exp(E(x)),
//   E(x) = sum_h sum_ij theta_ij hatM_i(log10 M_h) hatR_j(|x - x_h| / R_h)
//
// over the haloes h (periodic distance from the FoF centre x_h to the mesh point x = i L / N;
// R_h = (3 M_h / (4 pi 200 rho_m))^(1/3), the M200m radius of the FoF mass, the convention of the
// validation's stacked profiles). hatM_i are the piecewise-linear hat functions of the mass nodes
// (clamped: a halo below the first node or above the last has the end node's weights); hatR_j
// the hats of the radius nodes r_0 = 0 < r_1 < ... < r_J, without the last, so that E vanishes
// at r_J and beyond. Parameters theta (mass node major), (M nodes) x (J radius nodes); theta = 0
// is the identity. Where haloes overlap, their terms add in E.
//
// The layer wraps any LdlModel (a painter or a product): the parameters are the inner model's,
// then theta. Its gradient: the inner model's of the cotangent Fbar exp(E), and
// d<Fbar, F_out>/d theta_ij = sum_x Fbar F_out hatM_i hatR_j (summed over the haloes).
// Distribution: the catalogue is the same on every rank (as FoF's); each rank sums the terms of
// the haloes that reach its x-planes, so the result does not depend on the ranks.
#include "pm/baryons/ldl.hpp"

#include <memory>
#include <string>
#include <vector>

namespace caustic {

// A FoF catalogue as the halo layer reads it (the same on every rank).
struct LdlHaloSet {
  std::vector<double> pos;        // 3 per halo [Mpc/h], in [0, L) or near it (wrapped)
  std::vector<double> log10_mass; // log10 M [Msun/h]
  std::vector<double> radius;     // R200m of that mass [Mpc/h]
  std::size_t size() const { return log10_mass.size(); }
};

// The set of haloes of masses `mass` [Msun/h] at positions `pos` (3 per halo) of a run with
// matter density Omega_m. Throws std::invalid_argument on a non-positive or non-finite mass.
LdlHaloSet ldlHaloSet(const std::vector<double>& pos, const std::vector<double>& mass,
                      double omega_m);

struct LdlHaloLayout {
  std::vector<double> mass_nodes;   // log10 M [Msun/h], increasing, two or more
  std::vector<double> radius_nodes; // r / R, 0 first, increasing, two or more
  std::size_t parameterCount() const {
    return mass_nodes.size() * (radius_nodes.empty() ? 0 : radius_nodes.size() - 1);
  }
  // Throws std::invalid_argument naming what is wrong (`what`: where the layout comes from).
  void check(const std::string& what) const;
  // The defaults of `caustic ldl-fit --halo-layer`: log10 M = 11.5, 12, ..., 14.5 and
  // r / R = 0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3.
  static LdlHaloLayout defaults();
};

// The stacked profiles the validation measures (validation/plot_painter.py): the mean of a field
// over the mesh points in the shells kShellEdges (r / R200m) of each halo, averaged over the haloes
// of each mass bin kMassBins (log10 M_FoF) that have points in the shell. For the fit's profile
// term (ldl_fit.hpp). Collective constructor and stack().
class LdlProfiles {
public:
  static constexpr int kBins = 3, kShells = 5;
  static constexpr double kMassBins[kBins + 1] = {12.5, 13.0, 13.5, 15.5};
  static constexpr double kShellEdges[kShells + 1] = {0.2, 0.35, 0.6, 1.0, 1.5, 2.0};

  LdlProfiles(std::shared_ptr<const SlabDecomposition> decomp, const LdlHaloSet& halos);
  ~LdlProfiles();
  // kBins x kShells stacked means of f (bin major); NaN where no halo has points. The same on
  // every rank.
  std::vector<double> stack(const Field<double>& f) const;
  // cot(x) += sum_bs dJ[bs] d stack[bs] / d f(x) (dJ: kBins x kShells; NaN or 0 entries skipped).
  void addCotangent(const std::vector<double>& dj, Field<double>& cot) const;

private:
  struct Impl;
  std::shared_ptr<const SlabDecomposition> _decomp;
  std::unique_ptr<Impl> _impl;
};

// What the halo layer and the halo displacement share: a painter (its parameters first, theta
// after), the layout and the catalogue of the next forward.
class LdlHaloWrapper : public LdlModel {
public:
  std::size_t parameterCount() const override {
    return _inner->parameterCount() + _layout.parameterCount();
  }
  // The catalogue of the particles of the next forward (kept by pointer; nullptr: none, an error
  // at the forward).
  void setHalos(const LdlHaloSet* halos) override { _halos = halos; }
  bool logParameter(std::size_t i) const override {
    return i < _inner->parameterCount() && _inner->logParameter(i);
  }
  bool outputParameter(std::size_t i) const override {
    return i < _inner->parameterCount() && _inner->outputParameter(i);
  }
  const LdlHaloLayout& layout() const { return _layout; }
  LdlModel& inner() { return *_inner; }

protected:
  LdlHaloWrapper(std::shared_ptr<const SlabDecomposition> decomp, std::unique_ptr<LdlModel> inner,
                 LdlHaloLayout layout, const char* what);
  // Before a forward: the parameters' count, theta finite, a catalogue set (kept as the one of
  // this forward). Returns the painter's parameter count.
  std::size_t startForward(const std::vector<double>& params);
  // Before a gradient: a forward happened.
  void startGradient() const;

  const char* _what; // the class, for messages
  std::shared_ptr<const SlabDecomposition> _decomp;
  std::unique_ptr<LdlModel> _inner;
  LdlHaloLayout _layout;
  const LdlHaloSet* _halos = nullptr;
  const LdlHaloSet* _used = nullptr; // the catalogue of the last forward
};

class LdlHaloModel : public LdlHaloWrapper {
public:
  LdlHaloModel(std::shared_ptr<const SlabDecomposition> decomp, std::unique_ptr<LdlModel> inner,
               LdlHaloLayout layout);
  ~LdlHaloModel() override;

  void forward(const Kokkos::View<double* [3]>& x, std::size_t n, const std::vector<double>& params,
               Field<double>& out) override;
  std::vector<double> gradient(const Field<double>& fbar) override;
  // E(x) of the last forward (the exponent of the factor).
  const Field<double>& exponent() const { return _e; }

private:
  Field<double> _e, _out; // E and F_out of the last forward
};

// The halo displacement of a matter painter (`ldl-fit --halo-displacement`): before the painter's
// layers every particle moves radially around the FoF haloes that reach it,
//   x -> x + sum_h R_h D_h(r / R_h) (x - x_h) / r,
//   D_h(s) = sum_ij theta_ij hatM_i(log10 M_h) hatR_j(s)
// (r the periodic distance from the halo's centre, the hats and nodes of the halo layer; D
// vanishes beyond the last radius node), as the BCM displaces the dark-matter-only particles
// around each halo by enclosed-mass matching. Particles only move: mass is conserved. The
// parameters are the painter's, then theta; theta = 0 is the painter itself. Gradient: the
// painter's, and for theta sum_p xbar_p . dx_p/dtheta with xbar the painter's input cotangent
// (LdlPainter::inputCotangent). Each rank moves its own particles (a cell list over the
// replicated catalogue, one kernel over the particles): independent of the ranks.
class LdlHaloDisplacement : public LdlHaloWrapper {
public:
  LdlHaloDisplacement(std::shared_ptr<const SlabDecomposition> decomp,
                      std::unique_ptr<LdlPainter> inner, LdlHaloLayout layout);
  ~LdlHaloDisplacement() override;

  void forward(const Kokkos::View<double* [3]>& x, std::size_t n, const std::vector<double>& params,
               Field<double>& out) override;
  std::vector<double> gradient(const Field<double>& fbar) override;
  // The displaced positions of the last forward (home order, wrapped into the box).
  const Kokkos::View<double* [3]>& displaced() const { return _moved; }

  private : LdlPainter* _painter; // the inner model, as the painter it is (its input cotangent)
  std::size_t _n = 0;
  Kokkos::View<double*[3]> _x, _moved; // the input positions and the displaced ones
};

} // namespace caustic
