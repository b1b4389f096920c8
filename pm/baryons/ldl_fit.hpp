#pragma once
// Fitting an LDL painter (ldl.hpp) to target fields through its adjoint.
//
// Loss of one pair (particles, target field T on the painter's mesh):
//   J = sum_x [W * (F - T)]^2 / sum_x [W * T]^2,   W(k) = 1 + (k / k_F)^-n_w (W(0) = 1)
// (the authors' Fourier weight, with k in units of the fundamental mode so that it does not
// depend on the box; squared rather than their L1 so that the quasi-Newton method sees a smooth
// loss), plus, with power_weight lambda > 0, a term on the power spectrum:
//   lambda / B sum_b (P_F(b) / P_T(b) - 1)^2   over the B shells b = round(|k| / k_F) = 1 .. b_max
// (b_max: power_kmax in h/Mpc, or the mesh Nyquist frequency when 0), and, with profile_weight
// mu > 0 and the pairs' FoF catalogues, a term on the stacked profiles (LdlProfiles, ldl_halo.hpp):
//   mu / S sum_s (Prof_F(s) / Prof_T(s) - 1)^2   over the S (mass bin, shell) entries with haloes
// (what the validation measures the gas and pressure painters by). A field loss alone lets the
// painted power drift by several per cent where the field's phases are not matched (small
// scales); the power term holds P(k), which is what a matter painter is judged by (the
// suppression S(k) = P_bcm / P_dmo). Averaged over the pairs. The optimiser is limited-memory BFGS
// (10 pairs) with a backtracking Armijo line search on the parameters with k_l and k_h as
// logarithms, the same on every rank (gradients are reduced over the ranks).
#include "pm/baryons/ldl.hpp"
#include "pm/baryons/ldl_halo.hpp"

#include <functional>
#include <vector>

namespace caustic {

struct LdlPair {
  Kokkos::View<double* [3]> x; // this rank's particles
  std::size_t n = 0;
  const Field<double>* target = nullptr; // on the painter's decomposition
  // The pair's conditions (e.g. the BCM parameters its target was made with, centred), the same
  // number for every pair; empty: one set of parameters for all pairs.
  std::vector<double> condition;
  // The FoF catalogue of the particles: for a painter with a halo layer and the profile term.
  const LdlHaloSet* halos = nullptr;
};

struct LdlLossOptions {
  double weight_n = 1.0;     // n_w of the Fourier weight
  double power_weight = 0.0; // lambda of the power-spectrum term (0: none)
  double power_kmax = 0.0;   // its largest k [h/Mpc]; 0: the mesh Nyquist frequency
  double profile_weight = 0.0; // mu of the stacked-profile term (0: none; > 0 needs catalogues)
};

struct LdlFitOptions {
  int iterations = 100;
  LdlLossOptions loss;
  double tolerance = 1e-7;    // stop when the relative loss decrease of an iteration is below
  // false: the output layer keeps its initial parameters ((1, 1, 0) paints the displaced
  // particles' density 1 + delta itself: a mass-conserving matter painter).
  bool fit_output = true;
  // Parameters held at their initial values (and their slopes at theirs): hold[i] for parameter
  // i; empty: none (e.g. a painter's own parameters, to fit its halo layer alone).
  std::vector<bool> hold;
  // Called after every iteration with (iteration, loss, parameters); return false to stop.
  std::function<bool(int, double, const std::vector<double>&)> progress;
};

struct LdlFitResult {
  std::vector<double> params;              // the base parameters (at conditions 0)
  std::vector<std::vector<double>> slopes; // one row per condition (ldlParametersAt)
  std::vector<double> loss; // loss[0] at the initial parameters, then after each iteration
  int iterations = 0;
  std::string stop; // why it stopped
};

// The loss of `params` over the pairs and, if `grad` is given, its gradient. Collective.
double ldlLoss(LdlModel& painter, const std::vector<LdlPair>& pairs,
               const std::vector<double>& params, const LdlLossOptions& opt,
               std::vector<double>* grad);

// Parameters that depend on conditions c: in the optimiser's variables v (the parameters with
// k_l and k_h as logarithms, so that both stay positive), v(c) = v(base) + sum_j c_j slopes[j].
// Without slopes: `base` itself. Throws std::invalid_argument if the sizes disagree.
std::vector<double> ldlParametersAt(const std::vector<double>& base,
                                    const std::vector<std::vector<double>>& slopes,
                                    const std::vector<double>& condition, int layers);
// The same for any painter's layout (an LdlProduct's: its factors' parameters in order).
std::vector<double> ldlParametersAt(const std::vector<double>& base,
                                    const std::vector<std::vector<double>>& slopes,
                                    const std::vector<double>& condition, const LdlModel& model);
// The number of conditions of the pairs; throws std::invalid_argument if they differ.
std::size_t ldlConditionCount(const std::vector<LdlPair>& pairs);

// The loss over pairs, each painted with its own parameters ldlParametersAt(base, slopes,
// condition), and, if asked, the gradient in the base parameters and in the slopes. Collective.
double ldlConditionedLoss(LdlModel& painter, const std::vector<LdlPair>& pairs,
                          const std::vector<double>& base,
                          const std::vector<std::vector<double>>& slopes, const LdlLossOptions& opt,
                          std::vector<double>* grad_base,
                          std::vector<std::vector<double>>* grad_slopes);

// Fits the parameters (and, when the pairs carry conditions, their slopes, starting from
// initial_slopes or zero). Without conditions the loss is ldlLoss's.
LdlFitResult fitLdl(LdlModel& painter, const std::vector<LdlPair>& pairs,
                    const std::vector<double>& initial, const LdlFitOptions& opt,
                    const std::vector<std::vector<double>>& initial_slopes = {});

// The authors' starting point (alpha, gamma, k_l, k_h, n) = (0.01, 0.5, 0.2, 5, 0) per layer and
// an output layer (mu, b_1, b_0) = (1, mean target / mean density, 0).
std::vector<double> ldlInitialParameters(int layers, double target_mean);

} // namespace caustic
