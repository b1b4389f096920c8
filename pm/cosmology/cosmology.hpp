#pragma once
// Flat w0waCDM background and growth functions.
//
// Units: the time variable is the scale factor a; H(a) is given as E(a) = H(a)/H0 (dimensionless).
// Radiation is neglected (as in FastPM and pmwd): valid for a >~ 1e-3, far before any start of a
// PM run. Dark energy follows w(a) = w0 + wa (1 - a) (Chevallier-Polarski-Linder).
//
// Growth: D1 solves D'' + (2 + dlnE/dlna) D' = 3/2 Omega_m(a) D (primes: d/dlna), growing mode,
// normalised to D1(a=1) = 1. D2 solves the same operator with source -3/2 Omega_m(a) D1^2,
// so D2 ~ -3/7 D1^2 in matter domination (the sign convention of 2LPTic and FastPM:
// x = q + D1 psi1 + D2 psi2 with psi2 = grad(phi2), see lpt.hpp).
#include <vector>

namespace caustic {

struct CosmologyParams {
  double Omega_m = 0.3089; // total matter density today (CDM + baryons)
  double Omega_b = 0.0486; // baryon density today
  double h = 0.6774;       // H0 / (100 km/s/Mpc)
  double n_s = 0.9667;     // primordial spectral index
  double sigma8 = 0.8159;  // rms linear density in 8 Mpc/h top-hat spheres at a = 1
  double w0 = -1.0;        // dark-energy equation of state today
  double wa = 0.0;         // its derivative, w(a) = w0 + wa (1 - a)
  double T_cmb = 2.7255;   // CMB temperature today [K] (enters the transfer function)
};

class Cosmology {
public:
  explicit Cosmology(const CosmologyParams& params);

  const CosmologyParams& params() const { return _p; }
  double Omega_de() const { return 1.0 - _p.Omega_m; }

  // E(a) = H(a)/H0.
  double E(double a) const;
  // dlnE/dlna.
  double dlnE_dlna(double a) const;
  // Omega_m(a) = Omega_m a^-3 / E^2.
  double Omega_m_a(double a) const;

  // Growth factors and their logarithmic derivatives f = dlnD/dlna, for a in [aMin(), aMax()].
  double D1(double a) const;
  double D2(double a) const;
  double f1(double a) const;
  double f2(double a) const;

  static constexpr double aMin() { return 1e-4; }
  static constexpr double aMax() { return 4.0; }

private:
  // y = {D1, dD1/dlna, D2, dD2/dlna}; returns dy/dlna.
  void rhs(double lna, const double y[4], double dy[4]) const;
  // Cubic Hermite interpolation of component c of the table at ln a.
  double interp(int c, double lna) const;
  void check(double a, const char* what) const;

  CosmologyParams _p;
  double _lna0 = 0.0, _dlna = 0.0;
  std::vector<double> _y;  // node values, 4 per node
  std::vector<double> _dy; // node derivatives d/dlna, 4 per node
};

} // namespace caustic
