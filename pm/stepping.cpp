#include "pm/stepping.hpp"

#include "pm/migrate.hpp"
#include "pm/profiling.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace caustic {

std::vector<double> timeSteps(double a_start, double a_end, int steps, Spacing spacing,
                              const std::vector<double>& outputs) {
  if (!(a_start > 0 && a_end > a_start && steps >= 1))
    throw std::invalid_argument("timeSteps: need 0 < a_start < a_end and steps >= 1");
  std::vector<double> a(steps + 1);
  for (int i = 0; i <= steps; ++i) {
    const double t = double(i) / steps;
    a[i] = spacing == Spacing::Linear ? a_start + t * (a_end - a_start)
                                      : a_start * std::exp(t * std::log(a_end / a_start));
  }
  a.front() = a_start;
  a.back() = a_end;
  for (double o : outputs) {
    if (o < a_start || o > a_end)
      throw std::invalid_argument("timeSteps: output a = " + std::to_string(o) + " outside the run");
    a.push_back(o);
  }
  std::sort(a.begin(), a.end());
  // Merge boundaries closer than 1e-10 in a (an output on a regular boundary).
  std::vector<double> out;
  for (double x : a)
    if (out.empty() || x - out.back() > 1e-10 * x)
      out.push_back(x);
    else if (std::find(outputs.begin(), outputs.end(), x) != outputs.end())
      out.back() = x; // keep the exact output value
  return out;
}

double midpoint(double ai, double af, Spacing spacing) {
  return spacing == Spacing::Linear ? 0.5 * (ai + af) : std::sqrt(ai * af);
}

void drift(Particles& parts, double factor, double box) {
  auto x = parts.x;
  auto p = parts.p;
  Kokkos::parallel_for(
      "caustic::drift", Kokkos::RangePolicy<>(0, parts.size()), KOKKOS_LAMBDA(const std::size_t i) {
        for (int c = 0; c < 3; ++c) x(i, c) = periodicWrap(x(i, c) + factor * p(i, c), box);
      });
  Kokkos::fence();
}

void kick(Particles& parts, const Kokkos::View<double* [3]>& acc, double factor) {
  auto p = parts.p;
  Kokkos::parallel_for(
      "caustic::kick", Kokkos::RangePolicy<>(0, parts.size()), KOKKOS_LAMBDA(const std::size_t i) {
        for (int c = 0; c < 3; ++c) p(i, c) += factor * acc(i, c);
      });
  Kokkos::fence();
}

template <class T>
NBody<T>::NBody(std::shared_ptr<const SlabDecomposition> mesh, const Cosmology& cosmo, const GravityOptions& opt,
                double total_particles, unsigned fft_flags)
    : _mesh(mesh), _cosmo(cosmo), _factors(cosmo), _gravity(mesh, cosmo.params().Omega_m, opt, fft_flags),
      _total(total_particles) {}

template <class T> void NBody<T>::computeForce(Particles& parts, double a) {
  {
    ScopedPhase t(times(), "migrate");
    _migrated += migrate(parts, *_mesh);
  }
  if (_acc.extent(0) != parts.size())
    _acc = Kokkos::View<double* [3]>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "caustic::NBody::acc"),
                                     parts.size());
  _gravity.force(parts.x, _total, parts.x, _acc, a);
}

template <class T> void NBody<T>::start(Particles& parts, double a) {
  ScopedRegion region("caustic::NBody::start");
  computeForce(parts, a);
  _a = a;
}

template <class T> void NBody<T>::step(Particles& parts, double af, Spacing spacing) {
  ScopedRegion region("caustic::NBody::step");
  const double ai = _a, ah = midpoint(ai, af, spacing);
  const double box = _mesh->box();
  {
    ScopedPhase t(times(), "kick_drift");
    kick(parts, _acc, _factors.kick(ai, ah, ai));
    drift(parts, _factors.drift(ai, af, ah), box);
  }
  computeForce(parts, af);
  {
    ScopedPhase t(times(), "kick_drift");
    kick(parts, _acc, _factors.kick(ah, af, af));
  }
  _a = af;
}

template class NBody<float>;
template class NBody<double>;

} // namespace caustic
