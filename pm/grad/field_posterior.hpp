#pragma once
// The negative log posterior of field-level inference (`caustic infer`) and its gradient:
//
//   L(omega, theta) = 1/2 sum_cells mask (S_R r)^2 / sigma^2 + 1/2 sum_q omega^2 + P(theta),
//   r = b delta[omega, theta] - d,
//
// with delta the CIC/TSC-painted density contrast of the differentiable model's final particles
// (diff_pm.hpp) on the mesh, d the observed field, sigma^2 the noise variance per cell, mask
// 0/1 (or weights), b the linear bias and S_R the Gaussian smoothing exp(-k^2 R^2 / 2) of the
// residual (R = 0: none). The noise omega (unit white noise on the particle lattice) has a unit
// Gaussian prior. The free parameters theta are any of Omega_m, sigma8 and bias, with a flat
// prior inside their domain or a Gaussian prior (P = 1/2 sum ((theta - mean) / width)^2).
//
// With the centred prior (setCentredPrior), P(theta) also holds 1/2 log det S(theta) =
// sum_k log T(k; theta) over the lattice's modes (T = 0 on the DC mode and the Nyquist planes,
// which are left out): the joint posterior of (delta_L, theta) instead of (omega, theta). Both
// have the same marginal posterior of theta, but their joint maxima differ: in omega the joint
// MAP of an amplitude is degenerate (shrinking omega and raising sigma8 lowers |omega|^2 at a
// fixed field; measured: Omega_m and sigma8 run to the edge of their domains), while in delta_L
// the determinant pins it (Seljak et al. 2017's formulation; its MAP is still biased low where
// the noise dominates).
//
// Smoothing the residual anneals the likelihood from large to small scales (Seljak et al. 2017):
// at large R only the large-scale modes are fitted, where the posterior is close to Gaussian.
// Every term is an exact adjoint (tests/test_field_posterior_mpi.cpp checks them against
// finite differences).
#include "pm/grad/diff_pm.hpp"

#include <memory>
#include <string>
#include <vector>

namespace caustic {

// A free parameter of the posterior.
struct PosteriorParameter {
  std::string name;          // "Omega_m", "sigma8" or "bias"
  double lower = 0.0;        // the domain (open interval): outside it the posterior is zero
  double upper = 0.0;
  double prior_mean = 0.0;   // Gaussian prior if prior_width > 0, flat otherwise
  double prior_width = 0.0;
};

// The domain of a parameter name: Omega_m (0.05, 0.95), sigma8 (0.1, 3), bias (0.05, 20).
// Throws std::invalid_argument for other names.
PosteriorParameter posteriorParameter(const std::string& name);

// The observed field and its noise, on the model's mesh.
struct FieldObservation {
  std::shared_ptr<const Field<double>> data;     // d: density contrast of the tracer
  std::shared_ptr<const Field<double>> variance; // sigma^2 per cell (> 0)
  std::shared_ptr<const Field<double>> mask;     // 0/1 or weights; null: every cell
};

class FieldPosterior {
public:
  // `base`: the parameter point whose free members theta replaces; `bias`: b when bias is not
  // free.
  FieldPosterior(DiffConfig cfg, DiffParams base, FieldObservation obs,
                 std::vector<PosteriorParameter> free, double bias = 1.0);

  // The Gaussian smoothing scale R [Mpc/h] of the residual (0: none).
  void setSmoothing(double R) { _smoothing = R; }
  // Adds 1/2 log det S(theta) to P(theta) (see above).
  void setCentredPrior(bool on) { _centred = on; }
  bool centredPrior() const { return _centred; }
  // 1/2 log det S(theta) up to a constant, and its derivatives in theta.
  double logDetTerm(const std::vector<double>& theta, std::vector<double>* grad = nullptr) const;
  double smoothing() const { return _smoothing; }
  const std::vector<PosteriorParameter>& freeParameters() const { return _free; }

  struct Terms {
    double likelihood = 0.0;      // 1/2 chi^2 (smoothed)
    double noise_prior = 0.0;     // 1/2 |omega|^2
    double parameter_prior = 0.0; // P(theta)
    double total() const { return likelihood + noise_prior + parameter_prior; }
  };
  // Whether theta lies inside every free parameter's domain.
  bool inDomain(const std::vector<double>& theta) const;
  // L at (omega, theta); theta in the order of freeParameters(). Throws std::invalid_argument
  // outside the domain. Collective.
  Terms value(const Field<double>& omega, const std::vector<double>& theta);
  // dL/domega and dL/dtheta at the point of the last value() call. Collective.
  void gradient(Field<double>& gomega, std::vector<double>& gtheta);

  // The Gauss-Newton Hessian of L at the point of the last value() call applied to (vo, vt):
  // J^T W J for the likelihood (J the Jacobian of b delta in (omega, theta), applied by a
  // centred difference of the forward model with an rms step `step` per component (small: at
  // 1e-4 the particles that cross a kink of the CIC window break the symmetry by 1e-3);
  // W = S mask S / sigma^2; J^T by the adjoint), plus the priors' Hessians (1 for the noise; the
  // Gaussian priors; the log det S term by a centred difference of its gradient). Positive
  // semi-definite, unlike differences of the gradient, which jump where a particle crosses a
  // cell boundary of the CIC/TSC window. The point of value() is kept. Collective.
  void gaussNewtonProduct(const Field<double>& vo, const std::vector<double>& vt,
                          Field<double>& ho, std::vector<double>& ht, double step = 1e-6);

  // The model's matter density contrast delta at the last value() call (on the mesh,
  // unsmoothed, without the bias).
  const Field<double>& model() const { return *_model; }
  // The parameter point of theta (bias excluded).
  DiffParams paramsAt(const std::vector<double>& theta) const;
  double biasAt(const std::vector<double>& theta) const;
  const DiffConfig& config() const { return _cfg; }
  const FieldObservation& observation() const { return _obs; }
  // Number of value() calls so far (whoever made them): tells a caller whether the point it
  // evaluated last is still the posterior's.
  long evaluations() const { return _evaluations; }

private:
  // f <- S_R f (real space in and out).
  void smooth(Field<double>& f) const;
  // w = dL/d(b delta) (consumed) pulled back to the noise (go) and the free parameters (gt) at
  // the point of the last value(), likelihood only.
  void pullBack(Field<double>& w, Field<double>& go, std::vector<double>& gt);

  DiffConfig _cfg;
  DiffParams _base;
  FieldObservation _obs;
  std::vector<PosteriorParameter> _free;
  double _bias;
  double _smoothing = 0.0;
  bool _centred = false;
  std::vector<double> _shell_m2, _shell_count; // the lattice's non-null modes per |m|^2
  DiffPM _model_pm;
  std::unique_ptr<DiffPM> _probe_pm; // forward runs of the Gauss-Newton products
  std::unique_ptr<FFT<double>> _fft;
  Painter<double> _painter;
  std::unique_ptr<Field<double>> _model;    // delta
  std::unique_ptr<Field<double>> _residual; // mask S_R r / sigma^2 after value()
  std::unique_ptr<Field<double>> _omega;    // omega of the last value()
  std::vector<double> _theta;
  bool _evaluated = false; // the residual is fresh (gradient() consumes it)
  bool _has_state = false; // value() ran: the point, its state and model are kept
  long _evaluations = 0;
};

} // namespace caustic
