#pragma once
// The configuration of the differentiable forward model (grad/diff_pm.hpp): everything that is
// not differentiated. The parameter point itself is DiffParams (parameters.hpp).
#include "pm/force/force_correction.hpp"
#include "pm/force/painter.hpp"
#include "pm/grad/power_model.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/stepping/stepping.hpp"

#include <array>
#include <functional>
#include <memory>
#include <vector>

namespace caustic {

// Builds a correction at parameters theta (one per correction parameter).
using PotentialCorrectionFactory =
    std::function<std::shared_ptr<const PotentialCorrection<double>>(const std::vector<double>&)>;
using ParticleCorrectionFactory =
    std::function<std::shared_ptr<const ParticleCorrection>(const std::vector<double>&)>;

// The HatFilter on these nodes [h/Mpc] as a potential correction.
PotentialCorrectionFactory hatFilterCorrection(std::vector<double> nodes);

struct DiffConfig {
  std::shared_ptr<const SlabDecomposition> lattice; // N_p^3 particles and the noise
  std::shared_ptr<const SlabDecomposition> mesh;    // PM mesh
  double a_start = 0.1;
  double a_end = 1.0;
  int steps = 5;
  Spacing spacing = Spacing::Linear;
  int lpt_order = 2;
  Window window = Window::CIC;
  double lattice_offset = 0.0; // [Mpc/h], as ICOptions
  PowerModel power = PowerModel::eisensteinHu();
  // Force corrections (none when empty), built from DiffParams::correction and
  // DiffParams::particle_correction.
  PotentialCorrectionFactory potential_correction;
  ParticleCorrectionFactory particle_correction;
  // The cosmological parameters (indexed by CosmoParam) whose gradients DiffPM computes; the
  // others' entries stay 0. Each costs centred differences of the power spectrum (a sigma8
  // normalisation each) and of the background at every new parameter point. All by default.
  std::array<bool, kCosmoParams> cosmology_gradient = everyCosmoParam();

  static std::array<bool, kCosmoParams> everyCosmoParam() {
    std::array<bool, kCosmoParams> all{};
    all.fill(true);
    return all;
  }
};

// Throws std::invalid_argument naming the setting unless cfg and params describe a model.
void requireDiffConfig(const DiffConfig& cfg, const DiffParams& params);

} // namespace caustic
