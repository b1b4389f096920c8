#include "pm/cosmology/cosmology.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

namespace {
// Start deep in matter domination, where the growing modes are D1 = a, D2 = -3/7 a^2.
constexpr double kAInit = 1e-6;
constexpr int kSteps = 12000; // RK4 steps from ln(kAInit) to ln(aMax): h ~ 1.5e-3, error ~1e-12
} // namespace

Cosmology::Cosmology(const CosmologyParams& params) : _p(params) {
  _lna0 = std::log(kAInit);
  _dlna = (std::log(aMax()) - _lna0) / kSteps;
  _y.resize(4 * (kSteps + 1));
  _dy.resize(4 * (kSteps + 1));
  double y[4] = {kAInit, kAInit, -3.0 / 7.0 * kAInit * kAInit, -6.0 / 7.0 * kAInit * kAInit};
  for (int n = 0; n <= kSteps; ++n) {
    const double lna = _lna0 + n * _dlna;
    double k1[4], k2[4], k3[4], k4[4], t[4];
    rhs(lna, y, k1);
    for (int c = 0; c < 4; ++c) {
      _y[4 * n + c] = y[c];
      _dy[4 * n + c] = k1[c];
    }
    if (n == kSteps)
      break;
    const double h = _dlna;
    for (int c = 0; c < 4; ++c)
      t[c] = y[c] + 0.5 * h * k1[c];
    rhs(lna + 0.5 * h, t, k2);
    for (int c = 0; c < 4; ++c)
      t[c] = y[c] + 0.5 * h * k2[c];
    rhs(lna + 0.5 * h, t, k3);
    for (int c = 0; c < 4; ++c)
      t[c] = y[c] + h * k3[c];
    rhs(lna + h, t, k4);
    for (int c = 0; c < 4; ++c)
      y[c] += h / 6.0 * (k1[c] + 2 * k2[c] + 2 * k3[c] + k4[c]);
  }
  // Normalise D1(1) = 1; D2 scales as D1^2.
  const double d1 = interp(0, 0.0);
  const double s1 = 1.0 / d1, s2 = 1.0 / (d1 * d1);
  for (int n = 0; n <= kSteps; ++n) {
    for (int c = 0; c < 2; ++c) {
      _y[4 * n + c] *= s1;
      _dy[4 * n + c] *= s1;
    }
    for (int c = 2; c < 4; ++c) {
      _y[4 * n + c] *= s2;
      _dy[4 * n + c] *= s2;
    }
  }
}

double Cosmology::E(double a) const {
  const double w = _p.w0 + _p.wa;
  const double de = Omega_de() * std::pow(a, -3.0 * (1.0 + w)) * std::exp(-3.0 * _p.wa * (1.0 - a));
  return std::sqrt(_p.Omega_m / (a * a * a) + de);
}

double Cosmology::dlnE_dlna(double a) const {
  const double w = _p.w0 + _p.wa;
  const double m = _p.Omega_m / (a * a * a);
  const double de = Omega_de() * std::pow(a, -3.0 * (1.0 + w)) * std::exp(-3.0 * _p.wa * (1.0 - a));
  const double dE2 = -3.0 * m + de * (-3.0 * (1.0 + w) + 3.0 * _p.wa * a);
  return 0.5 * dE2 / (m + de);
}

double Cosmology::Omega_m_a(double a) const {
  const double e = E(a);
  return _p.Omega_m / (a * a * a * e * e);
}

void Cosmology::rhs(double lna, const double y[4], double dy[4]) const {
  const double a = std::exp(lna);
  const double damp = 2.0 + dlnE_dlna(a);
  const double om = 1.5 * Omega_m_a(a);
  dy[0] = y[1];
  dy[1] = -damp * y[1] + om * y[0];
  dy[2] = y[3];
  dy[3] = -damp * y[3] + om * y[2] - om * y[0] * y[0];
}

double Cosmology::interp(int c, double lna) const {
  double s = (lna - _lna0) / _dlna;
  int n = static_cast<int>(std::floor(s));
  if (n < 0)
    n = 0;
  if (n >= kSteps)
    n = kSteps - 1;
  const double t = s - n;
  const double h = _dlna;
  const double y0 = _y[4 * n + c], y1 = _y[4 * (n + 1) + c];
  const double m0 = _dy[4 * n + c] * h, m1 = _dy[4 * (n + 1) + c] * h;
  const double t2 = t * t, t3 = t2 * t;
  return (2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + t) * m0 + (-2 * t3 + 3 * t2) * y1 +
         (t3 - t2) * m1;
}

void Cosmology::check(double a, const char* what) const {
  if (!(a >= aMin() && a <= aMax()))
    throw std::domain_error(std::string("Cosmology::") + what + ": a = " + std::to_string(a) +
                            " outside the tabulated range [1e-4, 4]");
}

double Cosmology::D1(double a) const {
  check(a, "D1");
  return interp(0, std::log(a));
}
double Cosmology::D2(double a) const {
  check(a, "D2");
  return interp(2, std::log(a));
}
double Cosmology::f1(double a) const {
  check(a, "f1");
  return interp(1, std::log(a)) / interp(0, std::log(a));
}
double Cosmology::f2(double a) const {
  check(a, "f2");
  return interp(3, std::log(a)) / interp(2, std::log(a));
}

} // namespace caustic
