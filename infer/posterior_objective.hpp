#pragma once
// The field posterior as a ROL objective of x = (omega, u), theta = theta0 + s u (the free
// parameters scaled by s; held at theta0 when the vector carries no parameters), and the
// generic L-BFGS minimiser every optimisation of infer/ runs.
#include "infer/field_vector.hpp"
#include "infer/preconditioner.hpp"
#include "pm/grad/field_posterior.hpp"

#include <ROL_Objective.hpp>
#include <ROL_Secant.hpp>

#include <functional>
#include <vector>

namespace caustic {

class PosteriorObjective : public ROL::Objective<double> {
public:
  // fit: x carries the parameters (theta0.size() of them) scaled by `scales`. With a
  // preconditioner, x's noise part is z and omega = P z.
  //
  // `centring` (weights w in [0, 1] per integer |m|^2, 0 .. 3 (N/2)^2; needs fit) centres the
  // noise partially on the parameters (Papaspiliopoulos, Roberts & Skold 2007): omega =
  // A(theta) P z with A = (S(theta0) / S(theta))^(w / 2) per |m|^2, S the linear power at the
  // mode, and the value includes -log det A (the change of variables), so x's density is still
  // the posterior's. A mode with w = 1 keeps its linear density as theta moves (the data's
  // modes), one with w = 0 its white noise (the prior's). Without it a sampler that moves sigma8
  // must shrink the noise of every data-dominated mode at the same time: a ridge along which
  // HMC random-walks.
  PosteriorObjective(FieldPosterior& post, std::vector<double> theta0, std::vector<double> scales,
                     bool fit, std::shared_ptr<const FourierPreconditioner> precond = nullptr,
                     std::vector<double> centring = {});

  double value(const ROL::Vector<double>& x, double& tol) override;
  void gradient(ROL::Vector<double>& g, const ROL::Vector<double>& x, double& tol) override;

  // hv <- the Gauss-Newton Hessian at x applied to v (FieldPosterior::gaussNewtonProduct in the
  // scaled variables: H_u = diag(s) H_theta diag(s)); counts one gradient per product. Not
  // with centring (std::logic_error). Collective.
  void gaussNewtonVector(const FieldVector& x, const FieldVector& v, FieldVector& hv,
                         long* gradients = nullptr);

  // omega of x (P z with a preconditioner, A P z with centring). Collective.
  void noiseAt(const FieldVector& x, Field<double>& omega) const;
  // The z of omega (P^{-1} omega with a preconditioner; (A P)^{-1} omega at x's parameters
  // with centring). Collective.
  void fromNoise(const Field<double>& omega, FieldVector& x) const;

  // theta at x (unclamped).
  std::vector<double> thetaAt(const FieldVector& x) const;
  // The posterior's terms and theta (clamped into the domain) at the last evaluated point.
  const FieldPosterior::Terms& terms() const { return _terms; }
  const std::vector<double>& theta() const { return _clamped; }
  const std::vector<double>& scales() const { return _scales; }
  long values() const { return _values; }
  long gradients() const { return _gradients; }
  // A vector shaped like this objective's x (zero).
  FieldVector makeVector() const;

private:
  void evaluate(const FieldVector& x);
  // omega of x at the clamped parameters; returns -log det A (0 without centring).
  double noiseAt(const FieldVector& x, const std::vector<double>& clamped,
                 Field<double>& omega) const;
  // theta clamped into the domain.
  std::vector<double> clampedTheta(const std::vector<double>& theta) const;
  // Centring at theta: the map P A per |m|^2, -log det A and, when asked for, d log A / d theta_j
  // per |m|^2 and d(-log det A) / d theta_j.
  struct Centring {
    std::vector<double> map, jacobian_gradient;
    std::vector<std::vector<double>> dlog;
    double jacobian = 0.0;
  };
  Centring centringAt(const std::vector<double>& theta, bool derivatives) const;
  // log S at each |m|^2 of the lattice (0 at DC).
  std::vector<double> logPower(const CosmologyParams& c) const;
  // f <- f multiplied per |m|^2 by `table` in Fourier space. Collective.
  void multiplyShells(Field<double>& f, const std::vector<double>& table) const;

  FieldPosterior& _post;
  std::vector<double> _theta0, _scales;
  bool _fit;
  std::shared_ptr<const FourierPreconditioner> _precond;
  // Centring: w, modes of the full lattice k space and log S(theta0) per |m|^2; P per |m|^2.
  std::vector<double> _centring, _modes, _log_s0, _p;
  std::unique_ptr<FFT<double>> _fft;
  FieldVector _x, _g; // the cached point and its gradient
  std::unique_ptr<Field<double>> _omega;
  std::vector<double> _theta, _clamped;
  FieldPosterior::Terms _terms;
  double _value = 0.0;
  bool _has_value = false, _has_gradient = false;
  long _values = 0, _gradients = 0;
  long _post_evaluation = -1; // the posterior's evaluation count after our last value()
};

struct LbfgsSettings {
  int max_iterations = 50;
  int memory = 10;                  // pairs kept
  double gradient_tolerance = 1e-5; // stop when |g| < tol |g_0|
  double step_tolerance = 1e-12;    // ... or when |step| < tol
  int line_search_evaluations = 20; // function evaluations per line search at most
};

// The L-BFGS memory (ROL's limited-memory BFGS secant state) and where a run stands: what a
// checkpoint keeps so that a resumed run continues bit for bit.
struct LbfgsMemory {
  std::vector<FieldVector> s, y;      // the pairs, oldest first: steps and gradient changes
  std::vector<double> sy;             // s . y per pair
  int iteration = 0;                  // accepted steps so far
  double initial_gradient_norm = 0.0; // |g| at the run's start (the relative tolerance's)
};

struct LbfgsState {
  int iteration = 0; // accepted steps; 0 at the start
  double value = 0.0, gradient_norm = 0.0, step_norm = 0.0;
  // A copy of the memory as it stands at this iterate (for checkpoints).
  std::function<LbfgsMemory()> memory;
};

// Why a minimisation ended.
enum class LbfgsStop {
  gradient_tolerance, // |g| < tol |g_0|: converged
  step_tolerance,     // the step fell below step_tolerance
  iteration_limit,    // max_iterations reached: not converged
  callback,           // `check` stopped it
  other               // ROL ended the run itself (no acceptable step)
};
const char* lbfgsStopName(LbfgsStop s);

// Minimises obj from x (which receives the result) with ROL's type-U line-search algorithm
// (quasi-Newton direction from a limited-memory BFGS secant, cubic-interpolation backtracking
// with the sufficient-decrease condition). `check` sees every accepted iterate (x then holds it)
// and returns false to stop there. Returns why it ended. Throws std::runtime_error on a
// non-finite value or gradient. Collective.
// `resume`: continue a run whose iterate is x and whose memory this is (from
// LbfgsState::memory); the continuation is the same, bit for bit, as the uninterrupted run.
LbfgsStop minimizeLbfgs(ROL::Objective<double>& obj, FieldVector& x, const LbfgsSettings& s,
                   const std::function<bool(const LbfgsState&)>& check,
                   const LbfgsMemory* resume = nullptr);

} // namespace caustic
