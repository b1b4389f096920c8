#include "pm/force/pgd.hpp"

#include "pm/core/profiling.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

namespace {
void requireTheta(const PgdTheta& t, const std::string& where) {
  if (!(t[0] >= 0 && std::isfinite(t[0])))
    throw std::invalid_argument(where + ": alpha = " + std::to_string(t[0]) + " (allowed: >= 0)");
  if (!(t[1] >= 0 && std::isfinite(t[1])))
    throw std::invalid_argument(where + ": k_l = " + std::to_string(t[1]) +
                                " h/Mpc (allowed: >= 0)");
  if (!(t[2] > 0 && std::isfinite(t[2])))
    throw std::invalid_argument(where + ": k_s = " + std::to_string(t[2]) +
                                " h/Mpc (allowed: > 0)");
}
} // namespace

template <class T>
PgdFilter<T>::PgdFilter(double Omega_m, const PgdTheta& theta) : _omega_m(Omega_m), _t(theta) {
  if (!(Omega_m > 0))
    throw std::invalid_argument("PgdFilter: Omega_m = " + std::to_string(Omega_m) +
                                " (allowed: > 0)");
  requireTheta(theta, "PGD");
}

template <class T>
void PgdFilter<T>::table(double, int n, double box, std::vector<double>& K) const {
  const double kny = M_PI * n / box, pref = _t[0] / (1.5 * _omega_m);
  const auto x = radialTableX(n);
  for (std::size_t j = 0; j < K.size(); ++j) {
    const double k = x[j] * kny;
    if (k == 0.0) {
      K[j] = 0.0;
      continue;
    }
    const double l = _t[1] / k, s = k / _t[2];
    K[j] = pref * std::exp(-l * l - s * s * s * s);
  }
}

template <class T>
void PgdFilter<T>::tableVJP(double, int n, double box, const std::vector<double>& gK,
                            std::vector<double>& grad) const {
  if (grad.size() != 3)
    throw std::invalid_argument("PgdFilter::tableVJP: " + std::to_string(grad.size()) +
                                " gradient entries for 3 parameters");
  const double kny = M_PI * n / box, pref = 1.0 / (1.5 * _omega_m);
  const auto x = radialTableX(n);
  for (std::size_t j = 1; j < gK.size(); ++j) {
    if (gK[j] == 0.0)
      continue;
    const double k = x[j] * kny, l = _t[1] / k, s = k / _t[2];
    const double o = pref * std::exp(-l * l - s * s * s * s); // K / alpha
    grad[0] += gK[j] * o;
    grad[1] += gK[j] * _t[0] * o * (-2.0 * _t[1] / (k * k));
    grad[2] += gK[j] * _t[0] * o * (4.0 * s * s * s * s / _t[2]);
  }
}

PgdTheta PgdSchedule::at(double av) const {
  if (av <= a.front())
    return theta.front();
  if (av >= a.back())
    return theta.back();
  std::size_t i = 0;
  while (i + 2 < a.size() && av >= a[i + 1])
    ++i;
  const double t = (av - a[i]) / (a[i + 1] - a[i]);
  PgdTheta r;
  for (int c = 0; c < 3; ++c)
    r[c] = (1 - t) * theta[i][c] + t * theta[i + 1][c];
  return r;
}

void PgdSchedule::validate() const {
  if (a.empty() || a.size() != theta.size())
    throw std::invalid_argument("PGD: " + std::to_string(a.size()) + " scale factors and " +
                                std::to_string(theta.size()) +
                                " parameter sets (need as many, at least one)");
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!(a[i] > 0) || (i > 0 && !(a[i] > a[i - 1])))
      throw std::invalid_argument("PGD: the scale factors must be > 0 and increasing (a[" +
                                  std::to_string(i) + "] = " + std::to_string(a[i]) + ")");
    requireTheta(theta[i], "PGD at a = " + std::to_string(a[i]));
  }
}

template <class T>
PgdDisplacement<T>::PgdDisplacement(std::shared_ptr<Workspace<T>> workspace, double Omega_m,
                                    const GravityOptions& opt)
    : _omega_m(Omega_m), _gravity(std::move(workspace), Omega_m, opt) {}

template <class T>
void PgdDisplacement<T>::displacement(const Kokkos::View<double* [3]>& x, std::size_t n,
                                      double total, double a, const PgdTheta& theta,
                                      const Kokkos::View<double* [3]>& S) {
  ScopedRegion region("caustic::PgdDisplacement");
  _gravity.setPotentialCorrection(std::make_shared<const PgdFilter<T>>(_omega_m, theta));
  _gravity.force(x, n, total, x, n, S, a, 1.0, false);
}

template <class T>
void PgdDisplacement<T>::vjpParameters(const Kokkos::View<double* [3]>& x, std::size_t n,
                                       double total, double a, const PgdTheta& theta,
                                       const Kokkos::View<double* [3]>& z,
                                       std::array<double, 3>& grad) {
  ScopedRegion region("caustic::PgdDisplacement::vjp");
  const PgdFilter<T> filter(_omega_m, theta);
  auto& ws = _gravity.workspace();
  const auto lease_a = ws.lease("pgd_density");
  const auto lease_b = ws.lease("pgd_cotangent");
  Field<T>& A = *lease_a;
  Field<T>& B = *lease_b;
  const int nm = _gravity.decomp().n();
  _gravity.painter().readoutGradientAdjoint(B, x, n, z, 1.0);
  _gravity.painter().paint(A, x, n, double(nm) * nm * nm / total);
  _gravity.fft().forward(A);
  _gravity.fft().forward(B);
  _gravity.applyPotential(A, a, false);
  std::vector<double> g(3, 0.0);
  filter.vjpParameters(B, A, a, g);
  for (int c = 0; c < 3; ++c)
    grad[c] += g[c];
}

template <class T>
void PgdDisplacement<T>::displace(Particles& parts, double total, double a,
                                  const PgdTheta& theta) {
  if (_s.extent(0) < parts.size())
    _s = Kokkos::View<double* [3]>("caustic::PgdDisplacement::S", parts.capacity());
  displacement(parts.x, parts.size(), total, a, theta, _s);
  auto x = parts.x, s = _s;
  const double L = _gravity.decomp().box();
  Kokkos::parallel_for(
      "caustic::PgdDisplacement::displace", Kokkos::RangePolicy<>(0, parts.size()),
      KOKKOS_LAMBDA(std::size_t i) { driftParticle(x, s, i, 1.0, L); });
}

template class PgdFilter<float>;
template class PgdFilter<double>;
template class PgdDisplacement<float>;
template class PgdDisplacement<double>;

} // namespace caustic
