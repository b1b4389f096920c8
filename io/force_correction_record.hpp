#pragma once
// The file a trained force correction travels in (`caustic train` writes it; a run's
// [gravity.correction] reads it): a JSON record with the correction's kind, its parameters, the
// architecture to rebuild it, the validity domain it was trained for, and how it was trained.
//
// {
//   "kind": "force_correction", "version": "1.0",
//   "correction": "neural_spline" | "hat_ka" | "pgd",
//   "architecture": {"type": "neural_spline", "knots": 8, "latent": 32, "bound": 3.0}
//                 | {"type": "hat_ka", "x_nodes": [...], "a_nodes": [...]},     (pgd: none)
//   "theta": [...],                                    (neural_spline, hat_ka)
//   "pgd": {"a": [...], "alpha": [...], "k_l": [...], "k_s": [...]},   (pgd)
//   "base": {a neural_spline or hat_ka record}   (pgd only, optional: the potential correction
//           applied at every force evaluation of the runs this PGD was fitted to; a run of the
//           record applies both)
//   "domain": {"cell_size": 2.0, "particles_per_cell": 1.0, "steps": 10, "a_start": 0.1,
//              "a_end": 1.0, "boundaries": [0.1, 0.19, ...], "window": "cic",
//              "kernel": "finite_difference",
//              "Omega_m": [0.30, 0.32], "sigma8": [0.80, 0.83]},
//   "training": {...}                                   (provenance: command, seeds, losses)
// }
#include "io/params.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace caustic {

struct ForceCorrectionRecord {
  std::string correction; // neural_spline | hat_ka | pgd
  nlohmann::json architecture;
  std::vector<double> theta;
  std::vector<double> pgd_a;
  std::vector<std::array<double, 3>> pgd_theta; // (alpha, k_l, k_s) at each pgd_a
  // PGD fitted on top of a potential correction: that correction (neural_spline or hat_ka),
  // applied at every force evaluation; PGD then displaces the outputs. nullptr otherwise.
  std::shared_ptr<const ForceCorrectionRecord> base;
  // Validity domain.
  double cell_size = 0.0;          // PM mesh cell [Mpc/h]
  double particles_per_cell = 0.0; // (N_p / N_mesh)^3
  int steps = 0;
  double a_start = 0.0, a_end = 0.0;
  std::vector<double> boundaries; // the step boundaries of the run (outputs move them)
  std::string window = "cic", kernel = "finite_difference";
  bool deconvolve = false;
  int lpt_order = 2;
  std::array<double, 2> omega_m{0.0, 1.0}, sigma8{0.0, 10.0};
  nlohmann::json training = nlohmann::json::object();

  nlohmann::json toJson() const;
  // Throws ParamError naming `where` and the field on a malformed record.
  static ForceCorrectionRecord fromJson(const nlohmann::json& j, const std::string& where);
  static ForceCorrectionRecord read(const std::string& path);
  void write(const std::string& path) const; // atomic

  // The domain of a run with these parameters.
  void setDomain(const Params& p);
  // "" when a run with these parameters is inside the domain, else every difference, one per
  // line ("cell size 1.0 Mpc/h, trained for 2.0 (2% tolerance)").
  std::string domainMismatch(const Params& p) const;
};

} // namespace caustic
