#pragma once
// The differentiable PM forward model (double precision), the same code as a run:
//   white noise omega -> LPT particles at a_start (lpt_model.hpp) -> FastPM steps with fused
//   kicks and optional force corrections (trajectory.hpp) -> particles synchronised at a_end,
// and its reverse-mode gradient with respect to the noise and the named parameters
// (parameters.hpp) by the adjoint method.
#include "pm/grad/diff_config.hpp"
#include "pm/grad/parameters.hpp"
#include "pm/particles/particles.hpp"

#include <memory>

namespace caustic {

class LptModel;
class Trajectory;

// Gradient of a loss: `noise` on the particle lattice, real space; the parameters by name.
struct DiffGradient {
  std::unique_ptr<Field<double>> noise;
  ParameterGradient params;
};

// forward(noise, params) -> state; gradient(cotangent) -> (d noise, d params).
class DiffPM {
public:
  explicit DiffPM(DiffConfig cfg);
  ~DiffPM();
  DiffPM(DiffPM&&) noexcept;
  DiffPM& operator=(DiffPM&&) noexcept;
  // Runs the model; returns the final particles in lattice order. Collective.
  const Particles& forward(const Field<double>& noise, const DiffParams& params);
  const Particles& state() const { return _state; }
  // The initial particles (a_start, lattice order) of the last forward run.
  const Particles& initial() const { return _initial; }
  // Gradient of a loss whose cotangent with respect to the final state is `cot` (x: dL/dx,
  // p: dL/dp, lattice order as state()). Collective.
  DiffGradient gradient(const Particles& cot);

  // After gradient(): largest difference between the reconstructed and the true initial
  // positions [Mpc/h] and momenta, and the rms displacement |x - q| at a_start [Mpc/h].
  struct Reconstruction {
    double max_dx = 0.0, max_dp = 0.0, rms_displacement = 0.0, rms_momentum = 0.0;
  };
  const Reconstruction& reconstruction() const { return _rec; }
  const DiffConfig& config() const { return _cfg; }
  double totalParticles() const;

private:
  void measureReconstruction(const Particles& parts);
  // Builds the parameter point's setup (the LPT model's transfer and growth factors, the
  // trajectory's schedule and gravity's plans and meshes; their parameter derivatives follow
  // lazily on the first gradient) unless it was built for `params`: an optimisation over the
  // noise at fixed parameters (the annealed MAP stages, MUSE's MAPs, HMC over the noise alone)
  // builds it once instead of on every call, where it cost three times the model itself at 16^3
  // particles. Where the parameters move every evaluation (joint MAP, HMC over the parameters)
  // it is built every time, as before.
  void prepare(const DiffParams& params);

  DiffConfig _cfg;
  DiffParams _params;
  std::unique_ptr<LptModel> _lpt;
  std::unique_ptr<Trajectory> _traj;
  std::unique_ptr<Field<double>> _noise;
  Particles _state, _initial;
  Reconstruction _rec;
};

} // namespace caustic
