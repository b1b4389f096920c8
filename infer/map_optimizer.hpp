#pragma once
// The maximum a posteriori (MAP) point of field-level inference: L-BFGS (Trilinos ROL, its
// type-U line-search algorithm with a limited-memory BFGS secant) over the white noise and the
// scaled free parameters, in stages that anneal the smoothing of the residual from large to
// small scales (Seljak et al. 2017).
//
// Parameters are optimised as u = (theta - theta_stage) / s with s = sqrt(c / (d^2 L/d theta^2)),
// c the curvature of the noise block along its gradient, both measured by centred differences
// of the adjoint gradient at the start of the first stage that fits them: a parameter then has
// the curvature of the noise modes the optimiser is working on, and moves at their pace (with
// s = 1 / sqrt(d^2 L/d theta^2) the parameters stalled behind the stiff, data-dominated modes). A trial point outside a parameter's domain is evaluated at the
// nearest point inside plus a quadratic penalty, so the line search backs off smoothly; the
// MAP itself lies inside, where the penalty vanishes.
#include "infer/field_vector.hpp"
#include "infer/posterior_objective.hpp"
#include "infer/preconditioner.hpp"
#include "pm/grad/field_posterior.hpp"

#include <functional>
#include <string>
#include <vector>

namespace caustic {

struct MapStage {
  double smoothing = 0.0;    // R [Mpc/h] of the residual's Gaussian smoothing
  int max_iterations = 50;   // L-BFGS iterations at most
  bool fit_parameters = true; // the free parameters move in this stage (else held)
};

struct MapSettings {
  std::vector<MapStage> stages;
  int memory = 10;                  // L-BFGS pairs kept
  double gradient_tolerance = 1e-5; // a stage ends when |g| < tol |g_start|
  double step_tolerance = 1e-12;    // ... or when |step| < tol |x|
  int line_search_evaluations = 20; // function evaluations per line search at most
  // Optimise z with omega = P z, P from the Gauss-Newton curvature per shell measured at the
  // start of each stage (infer/preconditioner.hpp), with this many probes (0: no
  // preconditioning).
  int preconditioner_probes = 2;
};

// Where a MAP run stands after an accepted iterate: what a checkpoint keeps so that the resumed
// run continues bit for bit (on the same number of ranks).
struct MapCheckpoint {
  int stage = 0;
  int total = 0;
  long evaluations = 0, gradients = 0;
  std::vector<double> theta_stage;              // theta0 of the stage's objective
  std::vector<double> scales;                   // the parameters' scales (empty: not measured)
  double noise_curvature = 0.0;
  std::vector<double> preconditioner_curvature; // c per |m|^2 (empty: no preconditioner)
  std::unique_ptr<FieldVector> x;               // the iterate (z, u)
  LbfgsMemory memory;
};

// One accepted iterate (iteration 0: the start of a stage).
struct MapIteration {
  int stage = 0;
  int iteration = 0; // within the stage
  int total = 0;     // over all stages (accepted steps)
  double smoothing = 0.0;
  FieldPosterior::Terms terms;
  double gradient_norm = 0.0; // in the optimiser's variables
  std::vector<double> theta;
  long evaluations = 0; // posterior values so far (all stages)
  long gradients = 0;   // posterior gradients so far
  double seconds = 0.0; // since run() started
  // The state at this iterate, for a checkpoint.
  std::function<MapCheckpoint()> checkpoint;
};

class MapOptimizer {
public:
  MapOptimizer(FieldPosterior& post, MapSettings settings);

  // Called at every accepted iterate; returning false ends the run there (omega and theta then
  // hold that iterate).
  using Progress = std::function<bool(const MapIteration&)>;
  // Minimises from (omega, theta), which receive the result. Returns false if `progress`
  // stopped it. Collective.
  // `resume`: continue from a checkpoint (omega and theta are then set from it).
  bool run(Field<double>& omega, std::vector<double>& theta, const Progress& progress,
           const MapCheckpoint* resume = nullptr);

  // Why the last stage run ended (after a complete run: the MAP's; iteration_limit: it stopped
  // at the cap, not converged).
  LbfgsStop lastStop() const { return _last_stop; }
  // The scales s of the free parameters (empty before they are measured), and c.
  const std::vector<double>& parameterScales() const { return _scales; }
  double noiseCurvature() const { return _noise_curvature; }
  // Measures s at (omega, theta); with `preconditioned` the noise block's curvature is taken
  // as 1 (what the preconditioner makes it). Collective.
  std::vector<double> measureScales(const Field<double>& omega, const std::vector<double>& theta,
                                    bool preconditioned = false);
  // The preconditioner of the last stage (null without preconditioning).
  std::shared_ptr<const FourierPreconditioner> preconditioner() const { return _precond; }
  // A preconditioner measured at (omega, theta) with the posterior's current smoothing.
  // Collective.
  std::shared_ptr<FourierPreconditioner> measurePreconditioner(const Field<double>& omega,
                                                               const std::vector<double>& theta,
                                                               std::uint64_t seed);

private:
  FieldPosterior& _post;
  MapSettings _settings;
  std::vector<double> _scales;
  double _noise_curvature = 0.0;
  LbfgsStop _last_stop = LbfgsStop::other;
  std::shared_ptr<const FourierPreconditioner> _precond;
};

// Throws std::invalid_argument naming the setting unless `s` is usable.
void requireMapSettings(const MapSettings& s);

} // namespace caustic
