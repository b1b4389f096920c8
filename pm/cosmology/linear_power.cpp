#include "pm/cosmology/linear_power.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace caustic {

namespace {

std::string fmt(double v) {
  std::ostringstream s;
  s.precision(6);
  s << v;
  return s.str();
}

// EH98 eq. 19-20: the CDM-like transfer shape T0(k, alpha_c, beta_c), k in Mpc^-1.
double tZero(double q, double alpha, double beta) {
  const double l = std::log(M_E + 1.8 * beta * q);
  const double c = 14.2 / alpha + 386.0 / (1.0 + 69.9 * std::pow(q, 1.08));
  return l / (l + c * q * q);
}

} // namespace

EisensteinHu::EisensteinHu(const CosmologyParams& p) {
  _h = p.h;
  const double omhh = p.Omega_m * p.h * p.h;
  const double obhh = p.Omega_b * p.h * p.h;
  _fb = p.Omega_b / p.Omega_m;
  _fc = 1.0 - _fb;
  const double theta = p.T_cmb / 2.7;
  const double th2 = theta * theta, th4 = th2 * th2;
  const double zeq = 2.50e4 * omhh / th4; // eq. 2
  _keq = 7.46e-2 * omhh / th2;            // eq. 3, Mpc^-1
  const double b1 = 0.313 * std::pow(omhh, -0.419) * (1.0 + 0.607 * std::pow(omhh, 0.674));
  const double b2 = 0.238 * std::pow(omhh, 0.223);
  const double zd = 1291.0 * std::pow(omhh, 0.251) / (1.0 + 0.659 * std::pow(omhh, 0.828)) *
                    (1.0 + b1 * std::pow(obhh, b2)); // eq. 4
  const double rd = 31.5 * obhh / th4 * (1e3 / zd);  // eq. 5
  const double req = 31.5 * obhh / th4 * (1e3 / zeq);
  _s = 2.0 / (3.0 * _keq) * std::sqrt(6.0 / req) *
       std::log((std::sqrt(1.0 + rd) + std::sqrt(rd + req)) / (1.0 + std::sqrt(req))); // eq. 6
  _ksilk = 1.6 * std::pow(obhh, 0.52) * std::pow(omhh, 0.73) *
           (1.0 + std::pow(10.4 * omhh, -0.95)); // eq. 7
  const double a1 = std::pow(46.9 * omhh, 0.670) * (1.0 + std::pow(32.1 * omhh, -0.532));
  const double a2 = std::pow(12.0 * omhh, 0.424) * (1.0 + std::pow(45.0 * omhh, -0.582));
  _alpha_c = std::pow(a1, -_fb) * std::pow(a2, -_fb * _fb * _fb); // eq. 11
  const double bb1 = 0.944 / (1.0 + std::pow(458.0 * omhh, -0.708));
  const double bb2 = std::pow(0.395 * omhh, -0.0266);
  _beta_c = 1.0 / (1.0 + bb1 * (std::pow(_fc, bb2) - 1.0)); // eq. 12
  const double y = (1.0 + zeq) / (1.0 + zd);
  const double sy = std::sqrt(1.0 + y);
  const double gy = y * (-6.0 * sy + (2.0 + 3.0 * y) * std::log((sy + 1.0) / (sy - 1.0))); // eq. 15
  _alpha_b = 2.07 * _keq * _s * std::pow(1.0 + rd, -0.75) * gy;                            // eq. 14
  _beta_node = 8.41 * std::pow(omhh, 0.435);                                               // eq. 23
  _beta_b = 0.5 + _fb + (3.0 - 2.0 * _fb) * std::sqrt(std::pow(17.2 * omhh, 2) + 1.0);     // eq. 24
}

double EisensteinHu::transfer(double k_hmpc) const {
  const double k = k_hmpc * _h; // Mpc^-1
  if (k <= 0.0)
    return 1.0;
  const double q = k / (13.41 * _keq); // eq. 10
  const double ks = k * _s;
  const double f = 1.0 / (1.0 + std::pow(ks / 5.4, 4));                                   // eq. 18
  const double tc = f * tZero(q, 1.0, _beta_c) + (1.0 - f) * tZero(q, _alpha_c, _beta_c); // eq. 17
  const double stilde = _s / std::cbrt(1.0 + std::pow(_beta_node / ks, 3));               // eq. 22
  const double x = k * stilde;
  const double j0 = x < 1e-6 ? 1.0 - x * x / 6.0 : std::sin(x) / x;
  const double tb =
      (tZero(q, 1.0, 1.0) / (1.0 + std::pow(ks / 5.2, 2)) +
       _alpha_b / (1.0 + std::pow(_beta_b / ks, 3)) * std::exp(-std::pow(k / _ksilk, 1.4))) *
      j0;                     // eq. 21
  return _fb * tb + _fc * tc; // eq. 16
}

double tophatWindow(double x) {
  if (x < 1e-3)
    return 1.0 - x * x / 10.0;
  return 3.0 * (std::sin(x) - x * std::cos(x)) / (x * x * x);
}

LinearPower LinearPower::eisensteinHu(const CosmologyParams& p) {
  LinearPower lp;
  lp._eh.emplace_back(p);
  lp._ns = p.n_s;
  lp._source = "Eisenstein & Hu (1998)";
  lp._amplitude = 1.0;
  const double s = lp.sigma(8.0);
  lp._amplitude = (p.sigma8 / s) * (p.sigma8 / s);
  return lp;
}

LinearPower LinearPower::fromTable(const std::string& path, const CosmologyParams& p,
                                   bool normalize, const std::string& key) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error(key + " = \"" + path + "\": cannot open the power-spectrum file");
  LinearPower lp;
  lp._source = path;
  std::string line;
  int lineno = 0;
  double lastk = 0.0;
  while (std::getline(in, line)) {
    ++lineno;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#')
      continue;
    std::istringstream ls(line);
    double k, pk;
    if (!(ls >> k >> pk))
      throw std::runtime_error(
          key + " = \"" + path + "\": line " + std::to_string(lineno) +
          " is malformed; expected two numbers k [h/Mpc] and P(k) [(Mpc/h)^3]");
    if (!(k > 0.0) || !(pk > 0.0) || !std::isfinite(k) || !std::isfinite(pk))
      throw std::runtime_error(key + " = \"" + path + "\": line " + std::to_string(lineno) +
                               " has k = " + fmt(k) + ", P = " + fmt(pk) +
                               "; both must be positive and finite");
    if (!lp._lnk.empty() && !(k > lastk))
      throw std::runtime_error(key + " = \"" + path + "\": line " + std::to_string(lineno) +
                               ": k = " + fmt(k) + " is not strictly increasing");
    lastk = k;
    lp._lnk.push_back(std::log(k));
    lp._lnp.push_back(std::log(pk));
  }
  if (lp._lnk.size() < 4)
    throw std::runtime_error(key + " = \"" + path + "\": found " + std::to_string(lp._lnk.size()) +
                             " rows; a power-spectrum table needs at least 4");
  lp._kmin = std::exp(lp._lnk.front());
  lp._kmax = std::exp(lp._lnk.back());
  if (normalize) {
    const double s = lp.sigma(8.0);
    lp._amplitude = (p.sigma8 / s) * (p.sigma8 / s);
  }
  return lp;
}

double LinearPower::shape(double k) const {
  if (!_eh.empty()) {
    const double t = _eh.front().transfer(k);
    return std::pow(k, _ns) * t * t;
  }
  const double lk = std::log(k);
  auto it = std::upper_bound(_lnk.begin(), _lnk.end(), lk);
  std::size_t i = static_cast<std::size_t>(it - _lnk.begin());
  if (i == 0)
    i = 1;
  if (i >= _lnk.size())
    i = _lnk.size() - 1;
  const double t = (lk - _lnk[i - 1]) / (_lnk[i] - _lnk[i - 1]);
  const double v = std::exp(_lnp[i - 1] + t * (_lnp[i] - _lnp[i - 1]));
  return _tilt == 0.0 ? v : v * std::pow(k / _pivot, _tilt);
}

LinearPower LinearPower::tilted(double dn, double pivot, bool normalize, double sigma8) const {
  if (!tabulated())
    throw std::logic_error("LinearPower::tilted: only a tabulated spectrum is tilted");
  if (!(pivot > 0.0))
    throw std::invalid_argument("LinearPower::tilted: pivot = " + fmt(pivot) + " (allowed: > 0)");
  LinearPower lp = *this;
  lp._tilt = dn; // of the table itself, whatever tilt this copy had
  lp._pivot = pivot;
  if (normalize) {
    lp._amplitude = 1.0;
    const double s = lp.sigma(8.0);
    lp._amplitude = (sigma8 / s) * (sigma8 / s);
  }
  return lp;
}

double LinearPower::operator()(double k) const {
  if (k <= 0.0)
    return 0.0;
  if (tabulated() && (k < _kmin * (1 - 1e-12) || k > _kmax * (1 + 1e-12)))
    throw std::domain_error("power spectrum table " + _source + ": k = " + fmt(k) +
                            " h/Mpc outside its range [" + fmt(_kmin) + ", " + fmt(_kmax) + "]");
  return _amplitude * shape(k);
}

void LinearPower::requireRange(double kmin, double kmax, const std::string& key) const {
  if (!tabulated())
    return;
  if (kmin < _kmin * (1 - 1e-12) || kmax > _kmax * (1 + 1e-12))
    throw std::runtime_error(key + " = \"" + _source + "\": the table covers k in [" + fmt(_kmin) +
                             ", " + fmt(_kmax) + "] h/Mpc but the simulation needs [" + fmt(kmin) +
                             ", " + fmt(kmax) + "] h/Mpc");
}

double LinearPower::sigma(double R) const {
  // Simpson's rule in ln k over the defined range (EH: 1e-5 .. 1e3 h/Mpc).
  const double lo = std::log(std::max(_kmin, 1e-5)), hi = std::log(std::min(_kmax, 1e3));
  const int n = 16384; // even
  const double h = (hi - lo) / n;
  double sum = 0.0;
  for (int i = 0; i <= n; ++i) {
    const double k = std::exp(lo + i * h);
    const double w = tophatWindow(k * R);
    const double f = k * k * k * _amplitude * shape(k) * w * w;
    const double c = (i == 0 || i == n) ? 1.0 : (i % 2 ? 4.0 : 2.0);
    sum += c * f;
  }
  return std::sqrt(sum * h / 3.0 / (2.0 * M_PI * M_PI));
}

} // namespace caustic
