#pragma once
// The loss a force correction is trained on (Lanzieri, Lanusse & Starck 2023): the PM run from
// a sample's initial particles, compared with a high-resolution reference at several of its
// step boundaries, differentiated with respect to the correction's parameters by the adjoint
// (trajectory.hpp). With S snapshots, N particles and B power-spectrum bins,
//   L = 1/S sum_s [ 1/N sum_i |x_i(a_s) - x_i^ref(a_s)|^2  +  lambda / B sum_b (P_b/P_b^ref - 1)^2 ]
// positions in Mpc/h (periodic, nearest image), P from the CIC/TSC-painted density on the PM mesh
// in shells of width k_F up to k_max (the reference painted the same way, so the window cancels in
// the ratio). The reverse pass injects each snapshot's cotangent when it reaches that snapshot's
// boundary, so nothing of the trajectory is stored.
#include "pm/force/pgd.hpp"
#include "pm/grad/diff_config.hpp"
#include "pm/grad/parameters.hpp"
#include "pm/mesh/workspace.hpp"
#include "pm/particles/particles.hpp"

#include <memory>
#include <vector>

namespace caustic {

// The power spectrum of particles painted on a mesh, in shells |m| in [j + 1/2, j + 3/2)
// (j = 0..bins-1, m the integer wavenumber), and its VJP with respect to the positions.
class ShellPower {
public:
  ShellPower(std::shared_ptr<const SlabDecomposition> mesh, Window window, double total_particles,
             int bins);
  int bins() const { return _bins; }
  // Shell centres [h/Mpc].
  std::vector<double> k() const;
  // P_b [(Mpc/h)^3] of particles on their mesh ranks. Collective.
  std::vector<double> operator()(const Particles& parts) const;
  // xbar += sum_b gP[b] dP_b/dx for the particles of operator(). Collective.
  void vjp(const Particles& parts, const std::vector<double>& gP,
           const Kokkos::View<double* [3]>& xbar) const;

private:
  // delta(k) of the particles into f, and the local mode count per shell.
  void transform(const Particles& parts, Field<double>& f) const;
  std::shared_ptr<const SlabDecomposition> _mesh;
  Painter<double> _painter;
  std::unique_ptr<FFT<double>> _fft;
  double _total;
  int _bins;
  std::vector<double> _count; // full-space modes per shell
};

// One training sample: its initial particles (a_start, lattice order, double) and the reference
// positions at step boundaries of the model's schedule.
struct TrajectorySample {
  Particles initial;
  struct Target {
    int boundary = 0;            // step boundary s (1..steps) of the schedule
    double a = 0.0;              // its scale factor (filled by TrajectoryLoss::prepare)
    Particles particles;         // the reference at that boundary, lattice order
    std::vector<double> power;   // its ShellPower (filled by TrajectoryLoss::prepare)
  };
  std::vector<Target> targets;
};

struct TrajectoryLossOptions {
  double power_weight = 0.0; // lambda
  double k_max = 0.0;        // [h/Mpc]; 0: the mesh Nyquist frequency
};

class TrajectoryLoss {
public:
  TrajectoryLoss(DiffConfig cfg, TrajectoryLossOptions opt);
  // Fills the targets' reference spectra and checks the boundaries. Collective.
  void prepare(TrajectorySample& sample) const;
  // The loss of one sample at `params`; with `grad`, its gradient is added (summed over ranks).
  // Collective.
  struct Value {
    double total = 0.0, position = 0.0, power = 0.0; // total = position + lambda * power
  };
  Value operator()(const TrajectorySample& sample, const DiffParams& params,
                   ParameterGradient* grad) const;
  // The model run from the sample (corrected with `params`), its states at the targets'
  // boundaries in lattice order. Collective.
  std::vector<Particles> states(const TrajectorySample& sample, const DiffParams& params) const;
  // PGD (pm/force/pgd.hpp) applied to fixed PM states (states(), one per target, lattice order)
  // with parameters theta[t] at target t, scored like the trajectory; with `grad`,
  // dL/dtheta[t] is added (summed over ranks). Collective.
  Value pgdLoss(const TrajectorySample& sample, const std::vector<Particles>& states,
                const std::vector<PgdTheta>& theta, double Omega_m,
                std::vector<std::array<double, 3>>* grad) const;
  const DiffConfig& config() const { return _cfg; }
  const ShellPower& power() const { return *_power; }

private:
  double total() const;
  // 1/B sum_b (P_b/ref_b - 1)^2 of particles on their mesh ranks; with gP, its cotangent in P
  // scaled by lambda / S (a term of a loss over S snapshots). Collective.
  double powerTerm(const Particles& parts, const std::vector<double>& ref, double S,
                   std::vector<double>* gP) const;
  DiffConfig _cfg;
  TrajectoryLossOptions _opt;
  std::unique_ptr<ShellPower> _power;
  mutable std::unique_ptr<PgdDisplacement<double>> _pgd;
  mutable double _pgd_omega_m = -1.0;
};

} // namespace caustic
