#pragma once
// The marginal unbiased score expansion (MUSE; Millea & Seljak 2022, Phys. Rev. D 105, 103531):
// an estimate of the parameters theta of a hierarchical model with latent variables z (here
// the white noise) that approximates their marginal posterior without integrating z out and
// without its log-determinant, from maxima over z and simulations.
//
// With zhat(theta, x) = argmax_z log P(x, z | theta) and the score at that maximum
//   s(theta, x) = d/dtheta log P(x, zhat | theta)   (z held at zhat),
// the estimate solves s(theta, x_obs) = < s(theta, x) >, x ~ P(x | theta): the observed score
// against the mean score of simulations made at theta. Its covariance is H^{-1} J H^{-T}, with
// J = Cov(s(theta, x)) over the simulations and H_ij = d/dtheta'_j < s_i(theta, x) >, x ~
// P(x | theta'), the response of the mean score to the parameters the simulations are made
// with. Newton steps theta <- theta + H^{-1} (s_obs - <s>) reach it (each limited to a fraction
// of the parameters' values); their H is measured once, at the start, by forward differences
// over simulations that share their seeds with those at theta, and by default updated after
// every step by Broyden's rank-one secant update, so that it matches the change of
// G = <s> - s_obs between the last two iterates (the simulations' common random numbers make G
// a smooth function of theta as far as the MAPs behind the scores converge); H at a start far
// from the estimate can differ from the solution's in sign (the Omega_m column on the 32^3
// mocks). The covariance takes H and J
// measured again at the estimate (as Millea & Seljak's MuseInference does), since H changes
// with theta: the H of a start far from the estimate misstates the errors.
//
// The joint MAP of (z, theta) and the Laplace approximation around it are biased where the
// noise dominates (the joint maximum shrinks z; see field_posterior.hpp); MUSE's score
// difference cancels that shrinkage, because the simulations' maxima shrink the same way. It
// is exact for a Gaussian joint likelihood and unbiased as the number of data modes grows.
//
// This file holds the algorithm; what a score is (a MAP of `caustic infer` and the adjoint
// gradient in theta) is the caller's. No I/O.
#include <functional>
#include <string>
#include <vector>

namespace caustic {

using SmallMatrix = std::vector<std::vector<double>>;

struct MuseSettings {
  int simulations = 20; // per Newton step (and per parameter for H)
  int iterations = 2;   // Newton steps (the most, with a tolerance)
  // > 0: stop once a Newton step is shorter than this in the metric of the covariance at its
  // theta (H^-1 J H^-T (1 + 1/N), sqrt(d^T Sigma^-1 d)): that step is taken and is the last.
  // 0: always `iterations` steps.
  double tolerance = 0.0;
  double step = 0.02;   // H's forward-difference step, relative to each parameter's value
  // A Newton step changes no parameter by more than this fraction of its value (the step is
  // scaled down as a whole): far from the estimate the linear expansion of the score does not
  // hold, and a full step can land at the edge of the domain.
  double max_step = 0.25;
  // H, J and the data's score measured again at the estimate for the covariance
  // (N (1 + parameters) + 1 more scores); otherwise H from the start and J from the last step.
  bool final_covariance = true;
  // The Newton steps' H after each step: Broyden's secant update (true) or the start's (false).
  bool broyden = true;
};

// What MUSE asks of a problem. `score` returns false when the caller stops the run (a signal);
// the score is then not used.
struct MuseProblem {
  // The score at theta for the observed data (sim < 0) or for simulation `sim` (0-based) made
  // at theta_sim; simulation `sim` draws the same latent variables and noise at every
  // theta_sim (common random numbers).
  std::function<bool(const std::vector<double>& theta, const std::vector<double>& theta_sim,
                     int sim, std::vector<double>& score)>
      score;
  // Whether theta lies in the parameters' domain (a step that leaves it is halved).
  std::function<bool(const std::vector<double>& theta)> in_domain;
};

// The scores measured at one theta.
struct MuseScores {
  std::vector<double> observed, mean;
  std::vector<std::vector<double>> simulations;
  SmallMatrix newton_H; // in MuseResult::steps: the H this step's Newton step used
};

struct MuseResult {
  bool complete = false;                    // false: stopped by the problem
  std::vector<double> theta;                // the estimate (after the last Newton step)
  SmallMatrix covariance;                   // H^{-1} J H^{-T} (1 + 1/N): J and the mean's noise
  SmallMatrix H, J;                         // the covariance's: at the estimate (final_covariance)
                                            // or H at the first theta and J at the last step's
  SmallMatrix newton_H;                     // the H measured at the first theta
  std::vector<std::vector<double>> history; // theta before each step, then the estimate
  std::vector<MuseScores> steps;            // the scores at each step's theta
  MuseScores at_estimate;                   // with final_covariance: the scores at the estimate
  bool covariance_at_estimate = false;
  int newton_steps = 0; // steps taken
  // With a tolerance: whether a step fell below it (false: `iterations` steps, none did).
  bool converged = false;
  double last_step_sigmas = 0.0; // the last step's length in the covariance's metric,
                                 // sqrt(d^T Sigma^-1 d) (a convergence measure)
  // With final_covariance: H^{-1} (s_obs - <s>) at the estimate, the step a further Newton
  // iteration would take, in the covariance's metric (a convergence measure at the estimate).
  double residual_sigmas = -1.0;
  int scores = 0; // scores computed (MAPs)
};

// Runs `s.iterations` Newton steps from theta0 (fewer when one is below `s.tolerance`). Throws
// std::invalid_argument for settings out of range (simulations < 2 or not above the number of
// parameters (J would be singular), iterations < 1, step not in
// (0, 0.5], max_step <= 0, tolerance < 0, a zero parameter) and
// std::runtime_error if H is singular.
MuseResult museEstimate(const MuseProblem& problem, const std::vector<double>& theta0,
                        const MuseSettings& s);

// How wide the intervals of a MUSE estimate are at probability `level` (in (0, 1)), for
// `parameters` parameters whose covariance comes from `simulations` = N scores. J is their
// sample covariance, with N - 1 degrees of freedom: the estimate's standardised error
// (theta - truth) / sigma then follows Student's t with N - 1 degrees of freedom for one
// parameter, and d^T Sigma^-1 d Hotelling's T^2 (p (N - 1) / (N - p) times an F(p, N - p)
// variable) for p of them jointly, not the normal and chi^2 of a known covariance. Exact when the
// scores are Gaussian and linear in theta (H then has no noise of its own); with N = 10 the 95%
// interval is 2.26 sigma instead of 1.96. Throws std::invalid_argument unless N > parameters >= 1
// and level is in (0, 1).
struct MuseIntervalScale {
  double marginal = 0.0; // a parameter's interval: theta +- marginal sigma (t quantile)
  double joint = 0.0;    // the joint region: d^T Sigma^-1 d <= joint (Hotelling's T^2 quantile)
};
MuseIntervalScale museIntervalScale(int simulations, std::size_t parameters, double level);

// The probabilities `caustic infer` gives intervals at, with their keys in its summary.
struct IntervalLevel {
  const char* key;
  double level;
};
inline constexpr IntervalLevel kIntervalLevels[] = {{"68", 0.68}, {"95", 0.95}};

// The inverse of a small square matrix (Gauss-Jordan with partial pivoting); throws
// std::runtime_error if it is singular to rounding.
SmallMatrix invertSmall(const SmallMatrix& a);

} // namespace caustic
