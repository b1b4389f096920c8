#pragma once
// Linear matter power spectrum at a = 1.
//
// Units: k in h/Mpc, P(k) in (Mpc/h)^3. Convention: sigma^2(R) = 1/(2 pi^2) int dk k^2 P(k) W^2(kR)
// with the real-space top-hat window W(x) = 3 (sin x - x cos x) / x^3.
// The spectrum at scale factor a is D1(a)^2 P(k) (Cosmology::D1, normalised to D1(1) = 1).
#include "pm/cosmology/cosmology.hpp"

#include <string>
#include <vector>

namespace caustic {

// Eisenstein & Hu (1998, ApJ 496, 605) transfer function with baryon acoustic oscillations.
class EisensteinHu {
public:
  explicit EisensteinHu(const CosmologyParams& p);
  // Transfer function T(k), k in h/Mpc; T -> 1 as k -> 0.
  double transfer(double k_hmpc) const;
  // Sound horizon at the drag epoch [Mpc] (eq. 6).
  double soundHorizon() const { return _s; }

private:
  double _h, _fb, _fc, _keq, _s, _ksilk, _alpha_c, _beta_c, _alpha_b, _beta_b, _beta_node;
};

class LinearPower {
public:
  // Eisenstein-Hu spectrum A k^n_s T^2(k), A fixed by sigma8.
  static LinearPower eisensteinHu(const CosmologyParams& p);
  // Tabulated spectrum from a text file with columns k [h/Mpc], P(k) [(Mpc/h)^3] at a = 1
  // ('#' comments, as CLASS *_pk.dat and CAMB matterpower.dat write them), interpolated
  // log-log. If `normalize`, it is rescaled so that sigma(8 Mpc/h) = p.sigma8.
  // Throws std::runtime_error naming `key` and the file on any defect.
  static LinearPower fromTable(const std::string& path, const CosmologyParams& p, bool normalize,
                               const std::string& key = "power.file");

  // A table's spectrum tilted by (k / pivot)^dn [pivot in h/Mpc] (a change of the primordial
  // index with the table's transfer function), renormalised to sigma(8 Mpc/h) = sigma8 if
  // `normalize`, otherwise with the table's amplitude. Throws std::logic_error for
  // Eisenstein-Hu, which takes n_s itself.
  LinearPower tilted(double dn, double pivot, bool normalize, double sigma8) const;

  // P(k) at a = 1; throws std::domain_error outside a table's k range.
  double operator()(double k) const;
  // rms of the linear density in top-hat spheres of radius R [Mpc/h] at a = 1.
  double sigma(double R) const;
  // Range of k where the spectrum is defined [h/Mpc].
  double kMin() const { return _kmin; }
  double kMax() const { return _kmax; }
  bool tabulated() const { return !_lnk.empty(); }
  // Throws std::runtime_error naming `key` unless [kmin, kmax] lies inside the defined range.
  void requireRange(double kmin, double kmax, const std::string& key) const;

private:
  LinearPower() = default;
  double shape(double k) const; // unnormalised spectrum

  double _amplitude = 1.0;
  double _kmin = 0.0, _kmax = 1e300;
  // Eisenstein-Hu
  std::vector<EisensteinHu> _eh;
  double _ns = 1.0;
  // table (ln k, ln P), ascending in k
  std::vector<double> _lnk, _lnp;
  double _tilt = 0.0, _pivot = 1.0; // (k / pivot)^tilt on a table
  std::string _source;
};

// Top-hat window W(x) = 3 (sin x - x cos x) / x^3, accurate also for small x.
double tophatWindow(double x);

} // namespace caustic
