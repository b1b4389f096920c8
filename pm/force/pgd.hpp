#pragma once
// Potential gradient descent (PGD; Dai, Feng & Seljak 2018, arXiv:1804.00671): a displacement
// applied to the particles of a PM run at its outputs that moves them towards the peaks of the
// small-scale potential, restoring the power a coarse mesh and few steps lose inside halos:
//   S = -alpha grad O_l O_s nabla^-2 delta,  O_l = exp(-(k_l / k)^2), O_s = exp(-(k / k_s)^4),
// in Fourier space S(k) = alpha i k O_l O_s delta(k) / k^2 (k with the gradient and Laplacian of
// the run's kernels), read out at the particles. It points the way gravity pulls (towards
// overdensities); the parameters (alpha, k_l [h/Mpc], k_s [h/Mpc]) depend on the resolution and
// the scale factor and are fitted (emulators/force, `caustic train` with kind = "pgd").
//
// It is computed as PM gravity with the potential correction K = alpha / (3/2 Omega_m) O_l O_s,
// so it uses the run's painter, FFTs and gradient readout and its VJP is the force's.
#include "pm/force/gravity.hpp"
#include "pm/force/radial_correction.hpp"

#include <array>
#include <memory>
#include <vector>

namespace caustic {

// theta = (alpha, k_l, k_s).
using PgdTheta = std::array<double, 3>;

template <class T> class PgdFilter : public RadialCorrection<T> {
public:
  // Throws std::invalid_argument unless alpha >= 0, k_l >= 0, k_s > 0, 0 < Omega_m.
  PgdFilter(double Omega_m, const PgdTheta& theta);
  std::string name() const override { return "pgd"; }
  std::vector<double> parameters() const override { return {_t[0], _t[1], _t[2]}; }
  void table(double a, int n, double box, std::vector<double>& K) const override;
  void tableVJP(double a, int n, double box, const std::vector<double>& gK,
                std::vector<double>& grad) const override;
  std::pair<double, double> bounds() const override { return {0.0, 1e30}; }

private:
  double _omega_m;
  PgdTheta _t;
};

// PGD parameters at scale factors a_0 < a_1 < ..., linearly interpolated in a (clamped outside).
struct PgdSchedule {
  std::vector<double> a;
  std::vector<PgdTheta> theta;
  PgdTheta at(double a) const;
  // Throws std::invalid_argument naming the entry unless the table is usable.
  void validate() const;
};

template <class T> class PgdDisplacement {
public:
  // Shares `workspace` (its meshes and FFT plans) with the run; `opt` as the run's gravity.
  PgdDisplacement(std::shared_ptr<Workspace<T>> workspace, double Omega_m,
                  const GravityOptions& opt);
  // S <- the displacement at the first n positions (on their owning ranks) for the density of
  // the same n particles, `total` over all ranks. Collective.
  void displacement(const Kokkos::View<double* [3]>& x, std::size_t n, double total, double a,
                    const PgdTheta& theta, const Kokkos::View<double* [3]>& S);
  // grad += sum_i z_i . dS_i/dtheta (this rank's particles; the caller reduces over ranks).
  // Positions are held fixed. Collective.
  void vjpParameters(const Kokkos::View<double* [3]>& x, std::size_t n, double total, double a,
                     const PgdTheta& theta, const Kokkos::View<double* [3]>& z,
                     std::array<double, 3>& grad);
  // parts.x += S(parts.x), wrapped into the box (not migrated). Collective.
  void displace(Particles& parts, double total, double a, const PgdTheta& theta);

private:
  double _omega_m;
  Gravity<T> _gravity;
  Kokkos::View<double* [3]> _s;
};

extern template class PgdFilter<float>;
extern template class PgdFilter<double>;
extern template class PgdDisplacement<float>;
extern template class PgdDisplacement<double>;

} // namespace caustic
