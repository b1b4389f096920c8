#include "pm/baryons/bcm.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace caustic {

namespace {

constexpr double kPi = 3.14159265358979323846;
// Newton's constant [(Mpc/h) (km/s)^2 / (Msun/h)]: G M / r in (km/s)^2 for M in Msun/h and r in
// Mpc/h (the h cancel).
constexpr double kG = 4.300917e-9;

std::string num(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

// NFW enclosed-mass shape m(x) = ln(1 + x) - x / (1 + x), with a series for small x.
double nfwShape(double x) {
  if (x < 1e-4)
    return x * x * (0.5 - x * (2.0 / 3.0 - 0.75 * x));
  return std::log1p(x) - x / (1.0 + x);
}

// Cumulative integral of f over ln r on the grid (Simpson's rule per interval, with the value at
// the interval's midpoint), starting from `start` at the first point.
template <class F>
std::vector<double> cumulative(F f, double r200, double start) {
  const int n = BcmHaloProfile::kGrid;
  const double h = BcmHaloProfile::dln();
  std::vector<double> out(n);
  out[0] = start;
  double f0 = f(r200 * std::exp(BcmHaloProfile::kLnLo));
  for (int j = 1; j < n; ++j) {
    const double l1 = BcmHaloProfile::kLnLo + j * h;
    const double fm = f(r200 * std::exp(l1 - 0.5 * h)), f1 = f(r200 * std::exp(l1));
    out[j] = out[j - 1] + h / 6.0 * (f0 + 4.0 * fm + f1);
    f0 = f1;
  }
  return out;
}

} // namespace

std::string BcmParameters::check() const {
  auto bad = [](const char* name, double v, const char* allowed) {
    return std::string(name) + " = " + num(v) + ": " + allowed;
  };
  if (!(log10_mc >= 9 && log10_mc <= 18))
    return bad("log10_mc", log10_mc, "allowed 9 to 18 (log10 of M_c in Msun/h)");
  if (!(mu > 0 && mu <= 10))
    return bad("mu", mu, "allowed above 0, at most 10");
  if (!(theta_co > 0 && theta_co < 10))
    return bad("theta_co", theta_co, "allowed above 0, below 10 (r_co / r200c)");
  if (!(theta_ej > theta_co && theta_ej <= 100))
    return bad("theta_ej", theta_ej, "allowed above theta_co, at most 100 (r_ej / r200c)");
  if (!(gamma > 0 && gamma <= 20))
    return bad("gamma", gamma, "allowed above 0, at most 20");
  if (!(delta > 3 && delta <= 50))
    return bad("delta", delta, "allowed above 3 (a finite gas mass), at most 50");
  if (!(eta >= 0 && eta <= 2))
    return bad("eta", eta, "allowed 0 to 2");
  if (!(delta_eta >= 0 && delta_eta <= 2))
    return bad("delta_eta", delta_eta, "allowed 0 to 2 (the central galaxy is part of the stars)");
  if (!(eps_trunc > 0.5 && eps_trunc <= 100))
    return bad("eps_trunc", eps_trunc, "allowed above 0.5, at most 100 (r_t / r200c)");
  if (!(a_relax >= 0 && a_relax < 1))
    return bad("a_relax", a_relax, "allowed 0 to below 1");
  if (!(n_relax > 0 && n_relax <= 10))
    return bad("n_relax", n_relax, "allowed above 0, at most 10");
  if (!(star_amplitude >= 0 && star_amplitude < 1))
    return bad("star_amplitude", star_amplitude, "allowed 0 to below 1");
  if (!(star_pivot > 0 && std::isfinite(star_pivot)))
    return bad("star_pivot", star_pivot, "allowed above 0 (Msun/h)");
  if (!(r_h_factor > 0 && r_h_factor < 1))
    return bad("r_h_factor", r_h_factor, "allowed above 0, below 1 (R_h / r200c)");
  if (!(r_max_factor >= 1 && r_max_factor <= 500))
    return bad("r_max_factor", r_max_factor, "allowed 1 to 500 (r_max / r200c)");
  if (!(f_nt >= 0 && f_nt < 1))
    return bad("f_nt", f_nt, "allowed 0 to below 1");
  return "";
}

double BcmBackground::rhoMean() const { return omega_m * kRhoCrit0; }

double r200c(double m200c, const BcmBackground& bg) {
  const double rho = 200.0 * kRhoCrit0 * bg.e_of_a * bg.e_of_a * bg.a * bg.a * bg.a;
  return std::cbrt(3.0 * m200c / (4.0 * kPi * rho));
}

double concentrationDuffy(double m200c, double a) {
  return 5.71 * std::pow(m200c / 2e12, -0.084) * std::pow(a, 0.47);
}

double m200cFromFof(double m_fof, const BcmBackground& bg) {
  if (!(m_fof > 0))
    throw std::invalid_argument("m200cFromFof: mass " + num(m_fof) + " is not positive");
  const double rho_m = bg.rhoMean(); // comoving
  // M200m of an NFW halo of M200c = m: the radius where the mean enclosed density is 200 rho_m.
  auto m200m = [&](double m) {
    const double c = concentrationDuffy(m, bg.a), r2 = r200c(m, bg), rs = r2 / c;
    const double norm = m / nfwShape(c);
    auto excess = [&](double x) { // mean density within x rs over 200 rho_m, minus 1
      const double r = x * rs;
      return norm * nfwShape(x) / (4.0 / 3.0 * kPi * r * r * r) / (200.0 * rho_m) - 1.0;
    };
    double lo = 1e-3 * c, hi = 1e3 * c;
    for (int it = 0; it < 200 && hi - lo > 1e-13 * hi; ++it) {
      const double mid = 0.5 * (lo + hi);
      (excess(mid) > 0 ? lo : hi) = mid;
    }
    return norm * nfwShape(0.5 * (lo + hi));
  };
  double m = m_fof;
  for (int it = 0; it < 100; ++it) {
    const double next = m * m_fof / m200m(m);
    if (std::abs(next - m) <= 1e-12 * m)
      return next;
    m = next;
  }
  return m;
}

double BcmHaloProfile::radius(int j) const { return _r200c * std::exp(kLnLo + j * dln()); }

double BcmHaloProfile::densityNfw(double r) const {
  const double x = r / _rs, y = r / _rt;
  return _rho0 / (x * (1 + x) * (1 + x)) / ((1 + y * y) * (1 + y * y));
}

double BcmHaloProfile::densityGas(double r) const {
  const double u = r / _rco, v = r / _rej;
  return _rho_gas0 / (std::pow(1 + u, _beta) *
                      std::pow(1 + std::pow(v, _p.gamma), (_p.delta - _beta) / _p.gamma));
}

double BcmHaloProfile::densityCga(double r) const {
  return _f_cga * _m_tot / (4.0 * std::pow(kPi, 1.5) * _rh * r * r) *
         std::exp(-(r / (2 * _rh)) * (r / (2 * _rh)));
}

double BcmHaloProfile::massBackground(double r) const {
  return 4.0 / 3.0 * kPi * r * r * r * _bg.rhoMean();
}

double BcmHaloProfile::massCga(double r) const { return _f_cga * _m_tot * std::erf(r / (2 * _rh)); }

double BcmHaloProfile::interpLogLog(const std::vector<double>& lnm, double r) const {
  const double t = (std::log(r / _r200c) - kLnLo) / dln();
  if (t >= kGrid - 1)
    return std::exp(lnm[kGrid - 1]);
  const int j = std::max(0, std::min(kGrid - 2, static_cast<int>(std::floor(t))));
  const double w = t - j; // below the grid: the first interval's power law
  return std::exp(lnm[j] + w * (lnm[j + 1] - lnm[j]));
}

double BcmHaloProfile::massNfw(double r) const { return interpLogLog(_ln_m_nfw, r); }
double BcmHaloProfile::massGas(double r) const { return interpLogLog(_ln_m_gas, r); }
double BcmHaloProfile::massClm(double r) const { return interpLogLog(_ln_m_clm, r); }

double BcmHaloProfile::displacement(double r) const {
  if (!(r < _r_max))
    return 0.0;
  const double t = (std::log(r / _r200c) - kLnLo) / dln();
  if (t <= 0)
    return _disp[0] * r / radius(0);
  const int j = std::min(kGrid - 2, static_cast<int>(std::floor(t)));
  const double w = t - j;
  return _disp[j] + w * (_disp[j + 1] - _disp[j]);
}

double BcmHaloProfile::pressure(double r) const {
  const double t = (std::log(r / _r200c) - kLnLo) / dln();
  if (t <= 0)
    return _p_th[0];
  if (t >= kGrid - 1)
    return 0.0;
  const int j = std::min(kGrid - 2, static_cast<int>(std::floor(t)));
  const double w = t - j;
  if (_p_th[j + 1] <= 0)
    return (1 - w) * _p_th[j];
  return std::exp((1 - w) * std::log(_p_th[j]) + w * std::log(_p_th[j + 1]));
}

BcmHaloProfile::BcmHaloProfile(const BcmParameters& p, const BcmBackground& bg, double m200c,
                               double c200c)
    : _p(p), _bg(bg), _m200c(m200c), _c(c200c) {
  const std::string err = p.check();
  if (!err.empty())
    throw std::invalid_argument("baryonification: " + err);
  if (!(m200c > 0 && std::isfinite(m200c)) || !(c200c > 0 && std::isfinite(c200c)))
    throw std::invalid_argument("baryonification: halo of M200c = " + num(m200c) +
                                " Msun/h, c = " + num(c200c) + ": both must be positive");
  _r200c = caustic::r200c(m200c, bg);
  _rs = _r200c / c200c;
  _rt = p.eps_trunc * _r200c;
  _rco = p.theta_co * _r200c;
  _rej = p.theta_ej * _r200c;
  _rh = p.r_h_factor * _r200c;
  _r_max = p.r_max_factor * _r200c;
  const int n = kGrid;
  const double h = dln();
  const double r0 = radius(0), r_hi = radius(n - 1);

  // Truncated NFW, normalised to M(< r200c) = M200c.
  _rho0 = 1.0;
  auto nfw_integrand = [&](double r) { return 4 * kPi * r * r * r * densityNfw(r); };
  // Below r0 << r_s, r_t: the untruncated NFW's mass.
  const double inner_nfw = 4 * kPi * _rs * _rs * _rs * nfwShape(r0 / _rs);
  std::vector<double> m_nfw = cumulative(nfw_integrand, _r200c, inner_nfw);
  {
    // M(< r200c): the grid point below ln(r / r200c) = 0 plus Simpson's rule from there (r200c is
    // a grid point when (kGrid - 1) ln 1e4 / ln 1e7 is an integer, as for 519 points).
    const int j = static_cast<int>(std::floor(-kLnLo / h + 1e-9));
    const double l0 = kLnLo + j * h, span = -l0;
    double m_at = m_nfw[j];
    if (span > 1e-12) {
      const int sub = 8;
      const double hs = span / sub;
      double acc = 0;
      for (int k = 0; k < sub; ++k) {
        const double a = l0 + k * hs;
        acc += hs / 6.0 * (nfw_integrand(_r200c * std::exp(a)) + 4.0 * nfw_integrand(_r200c * std::exp(a + 0.5 * hs)) +
                           nfw_integrand(_r200c * std::exp(a + hs)));
      }
      m_at += acc;
    }
    _rho0 = m200c / m_at;
    for (double& m : m_nfw)
      m *= _rho0;
  }
  // Beyond r_hi >> r_t the density is rho0 r_s^3 r_t^4 / r^7: the tail holds pi rho0 r_s^3 r_t^4
  // / r_hi^4.
  _m_tot = m_nfw[n - 1] + kPi * _rho0 * _rs * _rs * _rs * _rt * _rt * _rt * _rt /
                              (r_hi * r_hi * r_hi * r_hi);

  // Fractions (S19 eq. 2.18-2.19), kept physical for haloes far below M_s.
  const double fb = bg.omega_b / bg.omega_m;
  _f_star = std::min(fb, p.star_amplitude * std::pow(p.star_pivot / m200c, p.eta));
  _f_cga = std::min(_f_star, p.star_amplitude * std::pow(p.star_pivot / m200c, p.eta + p.delta_eta));
  _f_gas = fb - _f_star;
  _f_clm = 1.0 - _f_gas - _f_cga;
  const double xm = std::pow(m200c / std::pow(10.0, p.log10_mc), p.mu);
  _beta = 3.0 * xm / (1.0 + xm);

  // Gas, normalised to f_gas M_tot including the tail beyond r_hi (rho ~ r^-delta there).
  std::vector<double> m_gas(n, 0.0);
  if (_f_gas > 0) {
    _rho_gas0 = 1.0;
    auto gas_integrand = [&](double r) { return 4 * kPi * r * r * r * densityGas(r); };
    m_gas = cumulative(gas_integrand, _r200c, 4.0 / 3.0 * kPi * r0 * r0 * r0 * densityGas(r0));
    const double total = m_gas[n - 1] + 4 * kPi * densityGas(r_hi) * r_hi * r_hi * r_hi / (p.delta - 3);
    _rho_gas0 = _f_gas * _m_tot / total;
    for (double& m : m_gas)
      m *= _rho_gas0;
  } else {
    _rho_gas0 = 0.0;
  }
  _ln_m_nfw.resize(n);
  _ln_m_gas.resize(n);
  for (int j = 0; j < n; ++j) {
    _ln_m_nfw[j] = std::log(m_nfw[j]);
    _ln_m_gas[j] = _f_gas > 0 ? std::log(m_gas[j]) : -745.0;
  }
  auto gasMass = [&](double r) { return _f_gas > 0 ? interpLogLog(_ln_m_gas, r) : 0.0; };

  // Adiabatic relaxation: xi for every grid shell, by bisection (g increases with xi;
  // M_f >= f_clm M_i bounds xi).
  std::vector<double> ln_rf(n), ln_mclm(n);
  for (int j = 0; j < n; ++j) {
    const double ri = radius(j), mi = m_nfw[j];
    auto g = [&](double xi) {
      const double rf = xi * ri;
      const double mf = _f_clm * mi + massCga(rf) + gasMass(rf);
      const double q = mi / mf;
      return xi - 1.0 - p.a_relax * ((p.n_relax == 2.0 ? q * q : std::pow(q, p.n_relax)) - 1.0);
    };
    // Illinois (regula falsi) within the bracket [1 - a, 1 + a (f_clm^-n - 1)].
    double lo = 1.0 - p.a_relax, hi = 1.0 + p.a_relax * (std::pow(_f_clm, -p.n_relax) - 1.0);
    double glo = g(lo), ghi = g(hi), xi = 1.0;
    int side = 0;
    for (int it = 0; it < 200; ++it) {
      xi = (lo * ghi - hi * glo) / (ghi - glo);
      if (!(xi > lo && xi < hi))
        xi = 0.5 * (lo + hi);
      const double gx = g(xi);
      if (gx == 0 || hi - lo < 1e-12 * hi)
        break;
      if (gx > 0) {
        hi = xi;
        ghi = gx;
        if (side == 1)
          glo *= 0.5;
        side = 1;
      } else {
        lo = xi;
        glo = gx;
        if (side == -1)
          ghi *= 0.5;
        side = -1;
      }
      if (std::abs(gx) < 1e-13)
        break;
    }
    ln_rf[j] = std::log(xi * ri);
    ln_mclm[j] = std::log(_f_clm * mi);
    if (j > 0 && !(ln_rf[j] > ln_rf[j - 1]))
      throw std::runtime_error("baryonification: the relaxed dark matter's shells cross at r = " +
                               num(ri) + " Mpc/h (M200c = " + num(m200c) +
                               " Msun/h); the relaxation parameters give no monotone profile");
  }
  // The relaxed mass on the grid: interpolated in ln M - ln r_f, power laws beyond the ends.
  _ln_m_clm.resize(n);
  {
    int k = 0;
    for (int j = 0; j < n; ++j) {
      const double l = kLnLo + j * h + std::log(_r200c);
      while (k < n - 2 && ln_rf[k + 1] < l)
        ++k;
      const double w = (l - ln_rf[k]) / (ln_rf[k + 1] - ln_rf[k]);
      _ln_m_clm[j] = ln_mclm[k] + (w > 1 && k == n - 2 ? 0.0 : w) * (ln_mclm[k + 1] - ln_mclm[k]) +
                     (w > 1 && k == n - 2 ? ln_mclm[n - 1] - ln_mclm[k] : 0.0);
    }
  }

  // The displacement: M_dmo(r_i) = M_bcm(r_f), with M_bcm tabulated on the grid and interpolated
  // in ln M - ln r.
  std::vector<double> ln_bcm(n), m_bcm(n);
  for (int j = 0; j < n; ++j) {
    const double r = radius(j);
    m_bcm[j] = std::exp(_ln_m_clm[j]) + (_f_gas > 0 ? m_gas[j] : 0.0) + massCga(r) +
               massBackground(r);
    ln_bcm[j] = std::log(m_bcm[j]);
    if (j > 0 && !(ln_bcm[j] > ln_bcm[j - 1]))
      throw std::runtime_error("baryonification: the BCM mass profile is not increasing at r = " +
                               num(r) + " Mpc/h (M200c = " + num(m200c) + " Msun/h)");
  }
  _disp.resize(n);
  for (int j = 0; j < n; ++j) {
    const double r = radius(j);
    const double target = std::log(m_nfw[j] + massBackground(r));
    const int k = std::max(
        0, std::min(n - 2, static_cast<int>(std::upper_bound(ln_bcm.begin(), ln_bcm.end(), target) -
                                            ln_bcm.begin()) - 1));
    const double w = (target - ln_bcm[k]) / (ln_bcm[k + 1] - ln_bcm[k]);
    const double ln_rf_j = kLnLo + (k + w) * h + std::log(_r200c);
    _disp[j] = std::exp(ln_rf_j) - r;
  }

  // Densities on the grid (without the background): the relaxed matter's from its mass table.
  _rho_bcm.resize(n);
  _rho_gas.resize(n);
  for (int j = 0; j < n; ++j) {
    const double r = radius(j);
    const int a = std::max(0, j - 1), b = std::min(n - 1, j + 1);
    const double mclm = std::exp(_ln_m_clm[j]);
    const double dlnm = (_ln_m_clm[b] - _ln_m_clm[a]) / ((b - a) * h);
    const double rho_clm = mclm * dlnm / (4 * kPi * r * r * r);
    _rho_gas[j] = _f_gas > 0 ? densityGas(r) : 0.0;
    _rho_bcm[j] = rho_clm + _rho_gas[j] + densityCga(r);
  }
  // Hydrostatic equilibrium in the BCM mass (without the background), integrated inwards from
  // P(r_hi) = 0 in ln r (trapezoid): P_phys(r) = a^-4 int_r G M(<r') rho_gas(r') / r' dln r'.
  _p_th.assign(n, 0.0);
  if (_f_gas > 0) {
    const double fac = (1.0 - p.f_nt) / (bg.a * bg.a * bg.a * bg.a);
    auto integrand = [&](int j) {
      const double r = radius(j);
      return kG * (m_bcm[j] - massBackground(r)) * _rho_gas[j] / r;
    };
    double acc = 0.0, f1 = integrand(n - 1);
    for (int j = n - 2; j >= 0; --j) {
      const double f0 = integrand(j);
      acc += 0.5 * h * (f0 + f1);
      f1 = f0;
      _p_th[j] = fac * acc;
    }
  }
}

} // namespace caustic
