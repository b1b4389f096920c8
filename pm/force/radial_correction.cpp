#include "pm/force/radial_correction.hpp"

#include "pm/force/hat_filter.hpp"

#include "pm/core/device_copy.hpp"
#include "pm/core/profiling.hpp"

#include <Kokkos_ScatterView.hpp>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace caustic {

namespace {

std::size_t tableSize(int n) { return 3 * std::size_t(n / 2) * std::size_t(n / 2) + 1; }

void requireIncreasing(const std::vector<double>& v, const char* what, double lowest_exclusive) {
  if (v.empty())
    throw std::invalid_argument(std::string("HatKCorrection: no ") + what);
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!(v[i] > lowest_exclusive) || (i > 0 && !(v[i] > v[i - 1])))
      throw std::invalid_argument(std::string("HatKCorrection: ") + what + " must be increasing and > " +
                                  std::to_string(lowest_exclusive) + " (entry " +
                                  std::to_string(i) + " is " + std::to_string(v[i]) + ")");
}

} // namespace

std::vector<double> radialTableX(int n) {
  std::vector<double> x(tableSize(n));
  for (std::size_t j = 0; j < x.size(); ++j)
    x[j] = std::sqrt(double(j)) / (n / 2);
  return x;
}

template <class T>
Kokkos::View<double*> RadialCorrection<T>::deviceTable(double a, const SlabDecomposition& d) const {
  if (a == _a && d.n() == _n && d.box() == _box && _table.extent(0) > 0)
    return _table;
  std::vector<double> K(tableSize(d.n()));
  table(a, d.n(), d.box(), K);
  const auto [lo, hi] = bounds();
  for (std::size_t j = 0; j < K.size(); ++j)
    if (!std::isfinite(K[j]) || K[j] < lo || K[j] > hi) {
      char buf[320];
      std::snprintf(buf, sizeof buf,
                    "force correction %s: K = %g at |k|/k_Nyquist = %.4f, a = %.4f is outside its "
                    "bounds [%g, %g] (a non-finite or runaway correction; the run stops)",
                    this->name().c_str(), K[j], std::sqrt(double(j)) / (d.n() / 2), a, lo, hi);
      throw std::runtime_error(buf);
    }
  _table = toDeviceView(K, "caustic::RadialCorrection::table");
  _a = a;
  _n = d.n();
  _box = d.box();
  return _table;
}

template <class T> void RadialCorrection<T>::apply(Field<T>& phi_k, double a) const {
  auto K = deviceTable(a, phi_k.decomp());
  auto c = phi_k.complex();
  phi_k.decomp().forEachMode(
      "caustic::RadialCorrection::apply",
      KOKKOS_LAMBDA(const MeshMode& m) { c(m.index) *= T(K(m.m2())); });
}

template <class T>
void RadialCorrection<T>::vjpParameters(const Field<T>& phibar_k, const Field<T>& phi_k, double a,
                                        std::vector<double>& grad) const {
  ScopedRegion region("caustic::RadialCorrection::vjpParameters");
  const auto& d = phibar_k.decomp();
  Kokkos::View<double*> g("caustic::RadialCorrection::tableGradient", tableSize(d.n()));
  auto sg = Kokkos::Experimental::create_scatter_view(g);
  auto u = phibar_k.complex(), v = phi_k.complex();
  d.forEachMode(
      "caustic::RadialCorrection::modeProducts", KOKKOS_LAMBDA(const MeshMode& m) {
        auto s = sg.access();
        const std::size_t i = m.index;
        s(m.m2()) += m.weight * (double(u(i).real()) * double(v(i).real()) +
                                 double(u(i).imag()) * double(v(i).imag()));
      });
  Kokkos::Experimental::contribute(g, sg);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), g);
  std::vector<double> gK(h.data(), h.data() + h.extent(0));
  tableVJP(a, d.n(), d.box(), gK, grad);
}

template <class T>
HatKCorrection<T>::HatKCorrection(std::vector<double> x_nodes, std::vector<double> a_nodes,
                                  std::vector<double> theta)
    : _x(std::move(x_nodes)), _a(std::move(a_nodes)), _theta(std::move(theta)) {
  requireIncreasing(_x, "x nodes (|k| / k_Nyquist)", 0.0);
  requireIncreasing(_a, "scale-factor nodes", 0.0);
  if (_theta.size() != _x.size() * _a.size())
    throw std::invalid_argument("HatKCorrection: " + std::to_string(_theta.size()) +
                                " parameters for " + std::to_string(_x.size()) + " x " +
                                std::to_string(_a.size()) + " nodes (need their product)");
}

template <class T> int HatKCorrection<T>::kHats(double x, int idx[2], double w[2]) const {
  // Hats with an implicit zero node at x = 0 (where all vanish).
  if (x >= _x.back()) {
    idx[0] = static_cast<int>(_x.size()) - 1;
    w[0] = 1.0;
    return 1;
  }
  if (x <= _x.front()) {
    idx[0] = 0;
    w[0] = x / _x.front();
    return 1;
  }
  return clampedHats(_x.data(), static_cast<int>(_x.size()), x, idx, w);
}

template <class T> int HatKCorrection<T>::aHats(double a, int idx[2], double w[2]) const {
  return clampedHats(_a.data(), static_cast<int>(_a.size()), a, idx, w);
}

template <class T>
void HatKCorrection<T>::table(double a, int n, double, std::vector<double>& K) const {
  const auto x = radialTableX(n);
  int ia[2], ik[2];
  double wa[2], wk[2];
  const int na = aHats(a, ia, wa);
  const std::size_t A = _a.size();
  for (std::size_t j = 0; j < K.size(); ++j) {
    const int nk = kHats(x[j], ik, wk);
    double k = 1.0;
    for (int p = 0; p < nk; ++p)
      for (int q = 0; q < na; ++q)
        k += _theta[std::size_t(ik[p]) * A + std::size_t(ia[q])] * wk[p] * wa[q];
    K[j] = k;
  }
}

template <class T>
void HatKCorrection<T>::tableVJP(double a, int n, double, const std::vector<double>& gK,
                                 std::vector<double>& grad) const {
  if (grad.size() != _theta.size())
    throw std::invalid_argument("HatKCorrection::tableVJP: " + std::to_string(grad.size()) +
                                " gradient entries for " + std::to_string(_theta.size()) +
                                " parameters");
  const auto x = radialTableX(n);
  int ia[2], ik[2];
  double wa[2], wk[2];
  const int na = aHats(a, ia, wa);
  const std::size_t A = _a.size();
  for (std::size_t j = 0; j < gK.size(); ++j) {
    if (gK[j] == 0.0)
      continue;
    const int nk = kHats(x[j], ik, wk);
    for (int p = 0; p < nk; ++p)
      for (int q = 0; q < na; ++q)
        grad[std::size_t(ik[p]) * A + std::size_t(ia[q])] += gK[j] * wk[p] * wa[q];
  }
}

template class RadialCorrection<float>;
template class RadialCorrection<double>;
template class HatKCorrection<float>;
template class HatKCorrection<double>;

} // namespace caustic
