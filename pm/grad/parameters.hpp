#pragma once
// The named parameter vector of the differentiable forward model: the cosmological parameters
// (Omega_m, sigma8, n_s, h, Omega_b) and the parameters of the potential correction, with the
// gradient laid out the same way.
//
// What is differentiable (grad/lpt_model.hpp, grad/trajectory.hpp):
//  - Omega_m: through the background (growth D1, D2, the LPT velocity factors, FastPM's kick
//    and drift factors), the Poisson prefactor 3/2 Omega_m, and the linear power spectrum
//    (Eisenstein-Hu; a table's shape is fixed, so only the first two for a table).
//  - sigma8: the amplitude of the linear power (Eisenstein-Hu, or a table normalised to sigma8).
//  - n_s: the primordial tilt. Eisenstein-Hu: P = A k^n_s T^2; a table: P_table(k) (k/k_p)^(n_s
//    - n_s,table), the tilt of the primordial spectrum with the table's transfer function.
//  - h, Omega_b: the Eisenstein-Hu transfer function only (the background of a flat w0waCDM
//    universe without radiation does not depend on them); zero for a table, whose transfer
//    function is fixed.
// Background and power-spectrum derivatives are centred differences of those scalar functions
// (relative accuracy ~1e-9); every mesh and particle derivative is an exact adjoint.
#include "pm/core/comm.hpp"
#include "pm/cosmology/cosmology.hpp"

#include <array>
#include <string>
#include <utility>
#include <vector>

namespace caustic {

enum class CosmoParam { Omega_m, sigma8, n_s, h, Omega_b };
inline constexpr int kCosmoParams = 5;
inline constexpr std::array<CosmoParam, kCosmoParams> kAllCosmoParams = {
    CosmoParam::Omega_m, CosmoParam::sigma8, CosmoParam::n_s, CosmoParam::h, CosmoParam::Omega_b};

const char* cosmoParamName(CosmoParam p);
double& cosmoParam(CosmologyParams& c, CosmoParam p);
double cosmoParam(const CosmologyParams& c, CosmoParam p);
// Whether the background (E, D1, D2, f1, f2) depends on p: Omega_m only.
bool entersBackground(CosmoParam p);
// Step of the centred differences in p at c: 1e-5 (Omega_m, absolute) or 1e-5 |value|.
double differenceStep(const CosmologyParams& c, CosmoParam p);
// c with p moved by `delta`.
CosmologyParams shifted(CosmologyParams c, CosmoParam p, double delta);

// The parameter point of the forward model.
struct DiffParams {
  CosmologyParams cosmology;
  std::vector<double> correction;          // theta of the potential correction, if any
  std::vector<double> particle_correction; // theta of the particle correction, if any
};

// Every field equal (DiffPM keeps its setup for a parameter point while the point stays the same).
bool operator==(const DiffParams& a, const DiffParams& b);
inline bool operator!=(const DiffParams& a, const DiffParams& b) { return !(a == b); }

// dL/d(parameters), laid out as DiffParams. Per rank while being accumulated; allreduce() sums
// over ranks.
struct ParameterGradient {
  std::array<double, kCosmoParams> cosmology{};
  std::vector<double> correction;
  std::vector<double> particle_correction;

  // Zeros laid out as `p`.
  static ParameterGradient zeros(const DiffParams& p);

  double& operator[](CosmoParam p) { return cosmology[static_cast<std::size_t>(p)]; }
  double operator[](CosmoParam p) const { return cosmology[static_cast<std::size_t>(p)]; }
  // ("Omega_m", value), ..., ("correction[0]", value), ..., ("particle_correction[0]", ...)
  std::vector<std::pair<std::string, double>> named() const;
  void allreduce(const Comm& comm);
};

} // namespace caustic
