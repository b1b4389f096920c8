#include "pm/grad/diff_config.hpp"

#include "pm/force/hat_filter.hpp"

#include <stdexcept>
#include <string>

namespace caustic {

PotentialCorrectionFactory hatFilterCorrection(std::vector<double> nodes) {
  return [nodes = std::move(nodes)](const std::vector<double>& theta) {
    return std::make_shared<const HatFilter>(nodes, theta);
  };
}

void requireDiffConfig(const DiffConfig& cfg, const DiffParams& params) {
  if (!cfg.lattice || !cfg.mesh)
    throw std::invalid_argument("DiffConfig: the lattice and the mesh decompositions are required");
  if (cfg.lpt_order != 1 && cfg.lpt_order != 2)
    throw std::invalid_argument("DiffConfig: lpt_order = " + std::to_string(cfg.lpt_order) +
                                " (allowed: 1, 2)");
  if (!(cfg.a_start > 0 && cfg.a_end > cfg.a_start && cfg.steps >= 1))
    throw std::invalid_argument("DiffConfig: need 0 < a_start < a_end and steps >= 1 (a_start = " +
                                std::to_string(cfg.a_start) +
                                ", a_end = " + std::to_string(cfg.a_end) +
                                ", steps = " + std::to_string(cfg.steps) + ")");
  if (!cfg.potential_correction && !params.correction.empty())
    throw std::invalid_argument("DiffParams: " + std::to_string(params.correction.size()) +
                                " correction parameters without a potential correction");
  if (!cfg.particle_correction && !params.particle_correction.empty())
    throw std::invalid_argument("DiffParams: " + std::to_string(params.particle_correction.size()) +
                                " particle-correction parameters without a particle correction");
  const double Om = params.cosmology.Omega_m,
               step = differenceStep(params.cosmology, CosmoParam::Omega_m);
  if (!(Om > 2 * step && Om < 1.0 - 2 * step))
    throw std::invalid_argument("DiffParams: Omega_m = " + std::to_string(Om) +
                                " (allowed: (0, 1))");
  if (!(params.cosmology.sigma8 > 0))
    throw std::invalid_argument("DiffParams: sigma8 = " + std::to_string(params.cosmology.sigma8) +
                                " (allowed: > 0)");
}

} // namespace caustic
