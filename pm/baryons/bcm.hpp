#pragma once
// The baryon correction model (baryonification) of Schneider & Teyssier 2015 and Schneider et al.
// 2019 (JCAP 03, 020; "S19" below): every halo of a dark-matter-only (DMO) run is given the
// profile it would have with baryons (a central galaxy, gas bound in the halo, gas ejected by
// feedback, and dark matter plus satellite stars that relaxed adiabatically in response), and the
// particles around it are moved radially so that the enclosed mass follows that profile:
// M_dmo(r) = M_bcm(r + d(r)).
//
// Conventions (the code's units): radii comoving [Mpc/h], masses [Msun/h], densities comoving
// [(Msun/h) / (Mpc/h)^3]. The overdensity radius r200c is the physical 200 rho_crit(z) radius
// expressed comoving: M200c = (4 pi / 3) 200 rho_crit,0 E(a)^2 a^3 r200c^3.
//
// Profiles of one halo of mass M = M200c and concentration c (r_s = r200c / c):
//   DMO:  rho_nfw(r) = rho_0 / [x (1 + x)^2] / (1 + (r / r_t)^2)^2, x = r / r_s, r_t = eps r200c
//         (truncated NFW, S19 eq. 2.3), total mass M_tot = M_nfw(r -> infinity).
//   BCM:  rho_bcm = rho_clm + rho_gas + rho_cga, the fractions of M_tot being
//         f_star = A (M_s / M)^eta,  f_cga = A (M_s / M)^(eta + delta_eta)   (S19 eq. 2.18-2.19)
//         f_gas = Omega_b / Omega_m - f_star,   f_clm = 1 - f_gas - f_cga
//         (dark matter plus satellite stars, f_star - f_cga).
//   gas:  rho_gas(r) proportional to 1 / [(1 + u)^beta (1 + v^gamma)^((delta - beta) / gamma)],
//         u = r / (theta_co r200c), v = r / (theta_ej r200c),
//         beta(M) = 3 (M / M_c)^mu / (1 + (M / M_c)^mu)                       (S19 eq. 2.10-2.12)
//   cga:  rho_cga(r) = f_cga M_tot / (4 pi^(3/2) R_h r^2) exp(-(r / 2 R_h)^2), R_h = 0.015 r200c,
//         so M_cga(< r) = f_cga M_tot erf(r / 2 R_h)                            (S19 eq. 2.14)
//   clm:  adiabatic relaxation: a shell at r_i moves to r_f = xi r_i with
//         xi - 1 = a_relax ((M_i / M_f)^n_relax - 1), M_i = M_nfw(r_i),
//         M_f = f_clm M_i + M_cga(r_f) + M_gas(r_f); M_clm(< r_f) = f_clm M_i  (S19 eq. 2.15-2.16)
// Both profiles also hold the mean matter density around the halo, rho_m = Omega_m rho_crit,0
// (comoving), the constant part of S19's two-halo term: it is the same on both sides, keeps the
// enclosed mass strictly increasing (so the matching is well posed where the halo's own profiles
// flatten) and leaves the displacement of an isolated halo unchanged where the halo dominates.
// The correlated part of the two-halo term (b xi_lin) is left out: it is the same in both profiles
// and the neighbouring matter it stands for is in the simulation itself.
//
// The displacement d(r) = r_f - r_i is tabulated on a grid in ln r from 1e-4 r200c to 1e3 r200c
// (masses by Simpson's rule per interval, normalised on the same grid so that the BCM components
// add up to M_tot to round-off) and applied out to r_max = r_max_factor r200c. Overlapping halos'
// displacements add (each from the particle's position before any displacement).
//
// Hydrostatic gas (for temperature and pressure): the bound and ejected gas of the profile is
// taken to be in hydrostatic equilibrium in the total BCM mass, dP_tot/dr = -G M_bcm(<r)
// rho_gas(r) / r^2 (physical units), P_tot(r_hi) = 0; the thermal part is P_th = (1 - f_nt) P_tot
// with a constant non-thermal fraction f_nt.
#include <cstdint>
#include <string>
#include <vector>

namespace caustic {

struct BcmParameters {
  // The seven parameters of S19. Defaults: the fiducial values of the BCemu emulator (Giri &
  // Schneider 2021, arXiv:2108.08863; see docs/baryons.md for the source and other sets).
  double log10_mc = 13.32;  // log10 M_c [Msun/h]: halo mass at which beta = 3/2
  double mu = 0.93;         // slope of beta(M)
  double theta_ej = 4.235;  // ejection radius / r200c
  double gamma = 2.25;      // sharpness of the ejected-gas cut-off
  double delta = 6.40;      // outer slope of the gas profile
  double eta = 0.15;        // slope of the total stellar fraction
  double delta_eta = 0.14;  // extra slope of the central galaxy's fraction
  // Fixed by S19.
  double theta_co = 0.1;    // core radius / r200c
  double eps_trunc = 4.0;   // NFW truncation radius / r200c
  double a_relax = 0.3, n_relax = 2.0;
  double star_amplitude = 0.09, star_pivot = 2.5e11; // A, M_s [Msun/h]
  double r_h_factor = 0.015; // central galaxy's R_h / r200c
  // Caustic's choices.
  double r_max_factor = 20.0; // displacement applied out to this many r200c
  double f_nt = 0.0;          // constant non-thermal pressure fraction of the gas
  // The first setting out of its domain as "name = value: allowed ...", or "" if all are valid.
  std::string check() const;
};

// The background the model needs: Omega_m, Omega_b and E(a) = H(a) / H0 at the snapshot's a.
struct BcmBackground {
  double omega_m = 0.3, omega_b = 0.049, a = 1.0, e_of_a = 1.0;
  double rhoMean() const; // Omega_m rho_crit,0 [(Msun/h) / (Mpc/h)^3], comoving
};

// rho_crit,0 = 3 H0^2 / (8 pi G) [(Msun/h) / (Mpc/h)^3]; the value of io/snapshot's unit system.
constexpr double kRhoCrit0 = 2.775366e11;

// Halo size and concentration.
double r200c(double m200c, const BcmBackground& bg); // comoving [Mpc/h]
// Duffy et al. 2008 (NFW, M200c, full sample): c = 5.71 (M / 2e12 Msun/h)^-0.084 (1 + z)^-0.47.
double concentrationDuffy(double m200c, double a);
// M200c of a friends-of-friends group of mass m_fof (b = 0.2), taking m_fof = M200m (the mean
// density contour of b = 0.2 encloses about 200 times the mean density for NFW haloes of usual
// concentrations: More et al. 2011) and converting with the NFW profile of Duffy's c(M200c).
double m200cFromFof(double m_fof, const BcmBackground& bg);

// The tabulated profiles and displacement of one halo. Radii on the grid r_j = r200c exp(ln_lo +
// j dln), j = 0 .. kGrid - 1; enclosed masses [Msun/h] of each component without the background.
class BcmHaloProfile {
public:
  static constexpr int kGrid = 519; // r200c on the grid: 518 ln(1e4) / ln(1e7) = 296
  static constexpr double kLnLo = -9.210340371976184; // ln 1e-4
  static constexpr double kLnHi = 6.907755278982137;  // ln 1e3
  static double dln() { return (kLnHi - kLnLo) / (kGrid - 1); }

  BcmHaloProfile(const BcmParameters& p, const BcmBackground& bg, double m200c, double c200c);

  double m200c() const { return _m200c; }
  double r200c() const { return _r200c; }
  double concentration() const { return _c; }
  double mTot() const { return _m_tot; } // total mass of the truncated NFW
  double fStar() const { return _f_star; }
  double fCga() const { return _f_cga; }
  double fGas() const { return _f_gas; }
  double fClm() const { return _f_clm; }
  double beta() const { return _beta; }
  double radius(int j) const;

  // Enclosed masses at radius r (interpolated in ln M - ln r between grid points; the central
  // galaxy's and the background's are analytic).
  double massNfw(double r) const;
  double massGas(double r) const;
  double massCga(double r) const;
  double massClm(double r) const;
  double massBackground(double r) const;
  double massDmo(double r) const { return massNfw(r) + massBackground(r); }
  double massBcm(double r) const {
    return massClm(r) + massGas(r) + massCga(r) + massBackground(r);
  }
  // Analytic densities [(Msun/h) / (Mpc/h)^3] (comoving) of the NFW and gas components.
  double densityNfw(double r) const;
  double densityGas(double r) const;
  double densityCga(double r) const;
  // The displacement r_f - r_i of a particle at r_i [Mpc/h]: the table, linear in ln r; below the
  // grid d(r) = d(r_0) r / r_0; zero beyond r_max.
  double displacement(double r) const;
  double rMax() const { return _r_max; }
  const std::vector<double>& displacementTable() const { return _disp; }
  // Thermal gas pressure at r (physical, in (Msun/h) (km/s)^2 / (Mpc/h)^3 comoving volume:
  // the code's units; see bcm_fields for conversions), interpolated in ln P - ln r.
  double pressure(double r) const;
  // Tables on the grid: density of all BCM components (without the background) and of the gas.
  const std::vector<double>& densityBcmTable() const { return _rho_bcm; }
  const std::vector<double>& densityGasTable() const { return _rho_gas; }
  const std::vector<double>& pressureTable() const { return _p_th; }

private:
  double interpLogLog(const std::vector<double>& lnm, double r) const;

  BcmParameters _p;
  BcmBackground _bg;
  double _m200c, _c, _r200c, _rs, _rt, _rco, _rej, _rh, _r_max;
  double _rho0 = 1.0, _rho_gas0 = 1.0, _m_tot = 0.0;
  double _f_star, _f_cga, _f_gas, _f_clm, _beta;
  std::vector<double> _ln_m_nfw, _ln_m_gas, _ln_m_clm; // ln of the enclosed masses on the grid
  std::vector<double> _disp, _rho_bcm, _rho_gas, _p_th;
};

} // namespace caustic
