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

  // The model's matter density contrast delta at the last value() call (on the mesh,
  // unsmoothed, without the bias).
  const Field<double>& model() const { return *_model; }
  // The parameter point of theta (bias excluded).
  DiffParams paramsAt(const std::vector<double>& theta) const;
  double biasAt(const std::vector<double>& theta) const;
  const DiffConfig& config() const { return _cfg; }
  const FieldObservation& observation() const { return _obs; }

private:
  // f <- S_R f (real space in and out).
  void smooth(Field<double>& f) const;

  DiffConfig _cfg;
  DiffParams _base;
  FieldObservation _obs;
  std::vector<PosteriorParameter> _free;
  double _bias;
  double _smoothing = 0.0;
  DiffPM _model_pm;
  std::unique_ptr<FFT<double>> _fft;
  Painter<double> _painter;
  std::unique_ptr<Field<double>> _model;    // delta
  std::unique_ptr<Field<double>> _residual; // mask S_R r / sigma^2 after value()
  std::unique_ptr<Field<double>> _omega;    // omega of the last value()
  std::vector<double> _theta;
  bool _evaluated = false;
};

} // namespace caustic
