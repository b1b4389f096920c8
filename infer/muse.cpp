#include "infer/muse.hpp"
#include <boost/math/distributions/fisher_f.hpp>
#include <boost/math/distributions/students_t.hpp>

#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

SmallMatrix invertSmall(const SmallMatrix& a) {
  const std::size_t n = a.size();
  SmallMatrix m = a, inv(n, std::vector<double>(n, 0.0));
  double scale = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    if (m[i].size() != n)
      throw std::invalid_argument("invertSmall: the matrix is not square");
    inv[i][i] = 1.0;
    for (double v : m[i])
      scale = std::max(scale, std::abs(v));
  }
  for (std::size_t c = 0; c < n; ++c) {
    std::size_t p = c;
    for (std::size_t r = c + 1; r < n; ++r)
      if (std::abs(m[r][c]) > std::abs(m[p][c]))
        p = r;
    if (!(std::abs(m[p][c]) > 1e-13 * scale))
      throw std::runtime_error("invertSmall: singular matrix");
    std::swap(m[p], m[c]);
    std::swap(inv[p], inv[c]);
    const double d = m[c][c];
    for (std::size_t k = 0; k < n; ++k) {
      m[c][k] /= d;
      inv[c][k] /= d;
    }
    for (std::size_t r = 0; r < n; ++r) {
      if (r == c)
        continue;
      const double f = m[r][c];
      for (std::size_t k = 0; k < n; ++k) {
        m[r][k] -= f * m[c][k];
        inv[r][k] -= f * inv[c][k];
      }
    }
  }
  return inv;
}

namespace {

std::vector<double> mean(const std::vector<std::vector<double>>& rows, std::size_t np) {
  std::vector<double> m(np, 0.0);
  for (const auto& r : rows)
    for (std::size_t i = 0; i < np; ++i)
      m[i] += r[i] / static_cast<double>(rows.size());
  return m;
}

} // namespace

MuseResult museEstimate(const MuseProblem& problem, const std::vector<double>& theta0,
                        const MuseSettings& s) {
  if (s.simulations < 2)
    throw std::invalid_argument("MUSE: simulations = " + std::to_string(s.simulations) +
                                "; at least 2 (the scores' covariance)");
  if (s.iterations < 1)
    throw std::invalid_argument("MUSE: iterations = " + std::to_string(s.iterations) +
                                "; at least 1");
  if (!(s.step > 0.0 && s.step <= 0.5))
    throw std::invalid_argument("MUSE: step = " + std::to_string(s.step) + "; in (0, 0.5]");
  if (!(s.max_step > 0.0))
    throw std::invalid_argument("MUSE: max_step = " + std::to_string(s.max_step) + "; > 0");
  if (!(s.tolerance >= 0.0))
    throw std::invalid_argument("MUSE: tolerance = " + std::to_string(s.tolerance) + "; >= 0");
  const std::size_t np = theta0.size();
  if (static_cast<std::size_t>(s.simulations) <= np)
    throw std::invalid_argument("MUSE: simulations = " + std::to_string(s.simulations) +
                                "; more than the " + std::to_string(np) +
                                " parameters (the scores' covariance J is singular otherwise)");
  for (double t : theta0)
    if (t == 0.0)
      throw std::invalid_argument("MUSE: a parameter is 0; the difference step is relative");
  const auto N = static_cast<std::size_t>(s.simulations);
  MuseResult r;
  auto score = [&](const std::vector<double>& th, const std::vector<double>& th_sim, int sim,
                   std::vector<double>& out) {
    if (!problem.score(th, th_sim, sim, out))
      return false;
    if (out.size() != np)
      throw std::logic_error("MUSE: a score has " + std::to_string(out.size()) +
                             " components; expected " + std::to_string(np));
    ++r.scores;
    return true;
  };
  // The data's and the simulations' scores at theta, their mean and covariance J, and with
  // `H` non-null H_ij = d <s_i> / d theta'_j by forward differences with common random numbers.
  auto measure = [&](const std::vector<double>& theta, MuseScores& sc, SmallMatrix& J,
                     SmallMatrix* H) {
    if (!score(theta, theta, -1, sc.observed))
      return false;
    sc.simulations.assign(N, {});
    for (std::size_t i = 0; i < N; ++i)
      if (!score(theta, theta, static_cast<int>(i), sc.simulations[i]))
        return false;
    sc.mean = mean(sc.simulations, np);
    J.assign(np, std::vector<double>(np, 0.0));
    for (const auto& si : sc.simulations)
      for (std::size_t a = 0; a < np; ++a)
        for (std::size_t b = 0; b < np; ++b)
          J[a][b] += (si[a] - sc.mean[a]) * (si[b] - sc.mean[b]) / static_cast<double>(N - 1);
    if (!H)
      return true;
    H->assign(np, std::vector<double>(np, 0.0));
    for (std::size_t j = 0; j < np; ++j) {
      const double h = s.step * std::abs(theta[j]);
      std::vector<double> shifted = theta;
      shifted[j] += h;
      if (problem.in_domain && !problem.in_domain(shifted))
        shifted[j] = theta[j] - h; // at the domain's upper edge: a backward difference
      const double dh = shifted[j] - theta[j];
      for (std::size_t i = 0; i < N; ++i) {
        std::vector<double> si;
        if (!score(theta, shifted, static_cast<int>(i), si))
          return false;
        for (std::size_t k = 0; k < np; ++k)
          (*H)[k][j] += (si[k] - sc.simulations[i][k]) / (dh * static_cast<double>(N));
      }
    }
    return true;
  };
  // H^{-1} (s_obs - <s>).
  auto newtonStep = [&](const SmallMatrix& Hinv, const MuseScores& sc) {
    std::vector<double> d(np, 0.0);
    for (std::size_t a = 0; a < np; ++a)
      for (std::size_t b = 0; b < np; ++b)
        d[a] += Hinv[a][b] * (sc.observed[b] - sc.mean[b]);
    return d;
  };
  // Sigma = H^{-1} J H^{-T}; the mean score's own noise (J / N) adds to it.
  const double inflate = 1.0 + 1.0 / static_cast<double>(N);
  auto covarianceOf = [&](const SmallMatrix& Hinv, const SmallMatrix& J) {
    SmallMatrix c(np, std::vector<double>(np, 0.0));
    for (std::size_t a = 0; a < np; ++a)
      for (std::size_t b = 0; b < np; ++b)
        for (std::size_t e = 0; e < np; ++e)
          for (std::size_t f = 0; f < np; ++f)
            c[a][b] += inflate * Hinv[a][e] * J[e][f] * Hinv[b][f];
    return c;
  };
  // sqrt(d^T Sigma^-1 d): per-parameter sigmas hide a step across a narrow degeneracy (Omega_m
  // and sigma8 correlate by -0.99 on small mocks).
  auto sigmasIn = [&](const SmallMatrix& cov, const std::vector<double>& d) {
    const SmallMatrix prec = invertSmall(cov);
    double q = 0.0;
    for (std::size_t a = 0; a < np; ++a)
      for (std::size_t b = 0; b < np; ++b)
        q += d[a] * prec[a][b] * d[b];
    return std::sqrt(std::max(0.0, q));
  };
  auto sigmas = [&](const std::vector<double>& d) { return sigmasIn(r.covariance, d); };

  // Broyden's update of H from the step theta_prev -> theta and the change of G = <s> - s_obs
  // over it: H += (dG - H dtheta) (D dtheta)^T / (dtheta^T D dtheta), D = diag(1 / theta^2) (the
  // parameters' own scales), so that H dtheta = dG afterwards; Hinv follows. Both kept as they
  // were if the update would make H singular.
  auto broydenUpdate = [&](SmallMatrix& H, SmallMatrix& Hinv, const std::vector<double>& dtheta,
                           const MuseScores& prev, const MuseScores& now,
                           const std::vector<double>& scale) {
    double norm = 0.0;
    for (std::size_t a = 0; a < np; ++a)
      norm += dtheta[a] * dtheta[a] / (scale[a] * scale[a]);
    if (!(norm > 0.0))
      return;
    SmallMatrix next = H;
    for (std::size_t a = 0; a < np; ++a) {
      double resid = (now.mean[a] - now.observed[a]) - (prev.mean[a] - prev.observed[a]);
      for (std::size_t b = 0; b < np; ++b)
        resid -= H[a][b] * dtheta[b];
      for (std::size_t b = 0; b < np; ++b)
        next[a][b] += resid * dtheta[b] / (scale[b] * scale[b] * norm);
    }
    try {
      Hinv = invertSmall(next);
    } catch (const std::runtime_error&) {
      return;
    }
    H = next;
  };

  std::vector<double> theta = theta0;
  SmallMatrix Hnewton, Hinv;
  std::vector<double> last(np, 0.0);
  for (int it = 0; it < s.iterations; ++it) {
    r.history.push_back(theta);
    MuseScores sc;
    if (!measure(theta, sc, r.J, it == 0 ? &r.newton_H : nullptr))
      return r;
    if (it == 0) {
      Hnewton = r.newton_H;
      Hinv = invertSmall(Hnewton);
    } else if (s.broyden) {
      broydenUpdate(Hnewton, Hinv, last, r.steps.back(), sc, r.history[it - 1]);
    }
    sc.newton_H = Hnewton;
    r.steps.push_back(sc);
    // theta <- theta + H^{-1} (s_obs - <s>), scaled to at most max_step of each parameter's
    // value, then halved until it stays in the domain.
    std::vector<double> step = newtonStep(Hinv, sc);
    // Converged: this step is small against the errors at theta; it is taken and the last.
    const bool last_one =
        s.tolerance > 0.0 && sigmasIn(covarianceOf(Hinv, r.J), step) < s.tolerance;
    double largest = 0.0;
    for (std::size_t a = 0; a < np; ++a)
      largest = std::max(largest, std::abs(step[a] / theta[a]));
    if (largest > s.max_step)
      for (double& v : step)
        v *= s.max_step / largest;
    std::vector<double> next = theta;
    for (int halvings = 0;; ++halvings) {
      for (std::size_t a = 0; a < np; ++a)
        next[a] = theta[a] + step[a];
      if (!problem.in_domain || problem.in_domain(next))
        break;
      if (halvings == 30)
        throw std::runtime_error("MUSE: no step inside the parameters' domain");
      for (double& v : step)
        v *= 0.5;
    }
    for (std::size_t a = 0; a < np; ++a)
      step[a] = next[a] - theta[a];
    last = step;
    theta = next;
    ++r.newton_steps;
    if (last_one) {
      r.converged = true;
      break;
    }
  }
  r.theta = theta;
  r.history.push_back(theta);
  r.H = r.newton_H;
  if (s.final_covariance) {
    if (!measure(theta, r.at_estimate, r.J, &r.H))
      return r;
    Hinv = invertSmall(r.H);
    r.covariance_at_estimate = true;
  }
  r.covariance = covarianceOf(Hinv, r.J);
  r.last_step_sigmas = sigmas(last);
  if (s.final_covariance)
    r.residual_sigmas = sigmas(newtonStep(Hinv, r.at_estimate));
  r.complete = true;
  return r;
}

MuseIntervalScale museIntervalScale(int simulations, std::size_t parameters, double level) {
  if (parameters < 1 || simulations < 2 || static_cast<std::size_t>(simulations) <= parameters)
    throw std::invalid_argument("MUSE intervals: " + std::to_string(simulations) +
                                " simulations for " + std::to_string(parameters) +
                                " parameters; need more simulations than parameters");
  if (!(level > 0.0 && level < 1.0))
    throw std::invalid_argument("MUSE intervals: level " + std::to_string(level) +
                                "; expected a probability in (0, 1)");
  const double n = simulations, p = static_cast<double>(parameters);
  MuseIntervalScale r;
  r.marginal = boost::math::quantile(boost::math::students_t_distribution<double>(n - 1.0),
                                     0.5 * (1.0 + level));
  r.joint = p * (n - 1.0) / (n - p) *
            boost::math::quantile(boost::math::fisher_f_distribution<double>(p, n - p), level);
  return r;
}

} // namespace caustic
