#pragma once
// Hamiltonian Monte Carlo over x = (omega, u) (Duane et al. 1987; Neal 2011), the check of the
// Laplace approximation on small grids and the sampler of the full joint posterior:
// H = -log P(x) + 1/2 |p_omega|^2 / m_omega + 1/2 sum_j p_j^2 / m_j, leapfrog trajectories of
// `leapfrog_steps` steps of size eps (jittered by +-20% per trajectory against resonances), a
// Metropolis test on the energy error. Momenta are drawn from Philox keyed on (seed,
// trajectory, global lattice point), so the chain is the same on any number of ranks (to the
// rounding of the reductions).
#include "infer/field_vector.hpp"

#include <ROL_Objective.hpp>

#include <cstdint>
#include <functional>
#include <vector>

namespace caustic {

struct HmcSettings {
  int samples = 100;        // trajectories kept (after burn-in)
  int burn_in = 20;         // trajectories discarded first
  int leapfrog_steps = 10;
  double step_size = 0.1;
  double noise_mass = 1.0;
  std::vector<double> parameter_mass; // per parameter (default 1)
  std::uint64_t seed = 1;
};

struct HmcSample {
  int trajectory = 0;
  bool accepted = false;
  int accepted_total = 0;        // accepted trajectories so far (the chain's, resumed ones included)
  double energy_error = 0.0;     // H(end) - H(start)
  double minus_log_posterior = 0.0;
  std::vector<double> params;    // u after the trajectory
  long gradients = 0;            // gradients evaluated so far by this call
};

struct HmcResult {
  std::vector<HmcSample> samples; // the kept ones (of this call)
  double acceptance = 0.0;        // over all trajectories (the chain's)
  long gradients = 0;
};

// Where a chain continues: x is its state after `trajectory` trajectories, `accepted` of them
// accepted. The momenta and the Metropolis uniforms are keyed on the trajectory, so the
// continuation is the uninterrupted chain's, bit for bit.
struct HmcStart {
  int trajectory = 0;
  int accepted = 0;
};

// Samples from x (which receives the last state). `each` sees every trajectory (burn-in
// included) and returns false to stop. `from`: continue a chain. Collective.
HmcResult hmcSample(ROL::Objective<double>& obj, FieldVector& x, const HmcSettings& s,
                    const std::function<bool(const HmcSample&)>& each = {},
                    const HmcStart& from = {});

} // namespace caustic
