#include "infer/hmc.hpp"

#include "pm/core/profiling.hpp"
#include "pm/ic/white_noise.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

namespace {

// A standard normal (Box-Muller) from the Philox uniforms at counter (c0, c1, c2, c3).
KOKKOS_INLINE_FUNCTION double philoxNormal(std::uint64_t seed, std::uint32_t c0, std::uint32_t c1,
                                           std::uint32_t c2, std::uint32_t c3) {
  double u1, u2;
  philoxUniforms(seed, c0, c1, c2, c3, u1, u2);
  return km::sqrt(-2.0 * km::log(u1)) * km::cos(2.0 * M_PI * u2);
}

double philoxUniform(std::uint64_t seed, std::uint32_t c0, std::uint32_t c1) {
  double u1, u2;
  philoxUniforms(seed, c0, c1, 0xfffffffeu, 2u, u1, u2);
  return u1;
}

// Kinetic energy 1/2 p^T M^{-1} p. Collective.
double kinetic(const FieldVector& p, double mw, const std::vector<double>& mu) {
  double k = 0.5 * latticeDot(p.noise(), p.noise()) / mw;
  for (std::size_t j = 0; j < mu.size(); ++j)
    k += 0.5 * p.params()[j] * p.params()[j] / mu[j];
  return k;
}

// x += eps M^{-1} p.
void drift(FieldVector& x, const FieldVector& p, double eps, double mw,
           const std::vector<double>& mu) {
  auto xv = x.noise().real(), pv = p.noise().real();
  const double f = eps / mw;
  Kokkos::parallel_for(
      "caustic::hmc::drift", Kokkos::RangePolicy<>(0, xv.extent(0)),
      KOKKOS_LAMBDA(std::size_t i) { xv(i) += f * pv(i); });
  Kokkos::fence();
  for (std::size_t j = 0; j < mu.size(); ++j)
    x.params()[j] += eps * p.params()[j] / mu[j];
}

} // namespace

HmcResult hmcSample(ROL::Objective<double>& obj, FieldVector& x, const HmcSettings& s,
                    const std::function<bool(const HmcSample&)>& each, const HmcStart& from) {
  ScopedRegion region("caustic::hmcSample");
  const std::size_t np = x.params().size();
  std::vector<double> mu = s.parameter_mass;
  if (mu.empty())
    mu.assign(np, 1.0);
  if (mu.size() != np)
    throw std::invalid_argument("hmcSample: " + std::to_string(mu.size()) +
                                " parameter masses for " + std::to_string(np) + " parameters");
  if (!(s.step_size > 0) || s.leapfrog_steps < 1 || !(s.noise_mass > 0))
    throw std::invalid_argument("hmcSample: step size, leapfrog steps and masses must be > 0");
  for (double m : mu)
    if (!(m > 0))
      throw std::invalid_argument("hmcSample: a parameter mass is not > 0");
  HmcResult out;
  double tol = 0.0;
  FieldVector g(x), xt(x), p(x);
  double u = obj.value(x, tol);
  obj.gradient(g, x, tol);
  ++out.gradients;
  if (from.trajectory < 0 || from.accepted < 0 || from.accepted > from.trajectory)
    throw std::invalid_argument("hmcSample: a chain cannot continue from trajectory " +
                                std::to_string(from.trajectory) + " with " +
                                std::to_string(from.accepted) + " accepted");
  int accepted = from.accepted, total = from.trajectory;
  const int n = x.noise().decomp().n();
  const double sqm = std::sqrt(s.noise_mass);
  for (int t = from.trajectory; t < s.burn_in + s.samples; ++t) {
    // Momenta ~ N(0, M), keyed on the trajectory and the global point.
    {
      auto pv = p.noise().real();
      const std::uint64_t seed = s.seed;
      const auto tr = static_cast<std::uint32_t>(t);
      p.noise().decomp().forEachPoint("caustic::hmc::momenta", KOKKOS_LAMBDA(const MeshPoint& q) {
        const std::uint64_t gidx = (std::uint64_t(q.x) * n + q.y) * n + q.z;
        pv(q.index) = sqm * philoxNormal(seed, static_cast<std::uint32_t>(gidx),
                                         static_cast<std::uint32_t>(gidx >> 32), tr, 0u);
      });
      for (std::size_t j = 0; j < np; ++j)
        p.params()[j] = std::sqrt(mu[j]) * philoxNormal(s.seed, static_cast<std::uint32_t>(j),
                                                        0xffffffffu, tr, 1u);
    }
    const double eps =
        s.step_size * (0.8 + 0.4 * philoxUniform(s.seed, static_cast<std::uint32_t>(t), 1u));
    const double h0 = u + kinetic(p, s.noise_mass, mu);
    xt.set(x);
    FieldVector gt(g);
    double ut = u;
    bool finite = true;
    p.axpy(-0.5 * eps, gt);
    for (int l = 0; l < s.leapfrog_steps; ++l) {
      drift(xt, p, eps, s.noise_mass, mu);
      ut = obj.value(xt, tol);
      if (!std::isfinite(ut)) {
        finite = false;
        break;
      }
      obj.gradient(gt, xt, tol);
      ++out.gradients;
      p.axpy(l + 1 < s.leapfrog_steps ? -eps : -0.5 * eps, gt);
    }
    HmcSample smp;
    smp.trajectory = t;
    smp.energy_error = finite ? ut + kinetic(p, s.noise_mass, mu) - h0 : INFINITY;
    // The same uniform on every rank: the decision is collective.
    const double r = philoxUniform(s.seed, static_cast<std::uint32_t>(t), 2u);
    smp.accepted = finite && std::log(r) < -smp.energy_error;
    if (smp.accepted) {
      x.set(xt);
      g.set(gt);
      u = ut;
      ++accepted;
    }
    ++total;
    smp.accepted_total = accepted;
    smp.minus_log_posterior = u;
    smp.params = x.params();
    smp.gradients = out.gradients;
    if (t >= s.burn_in)
      out.samples.push_back(smp);
    if (each && !each(smp))
      break;
  }
  out.acceptance = total ? double(accepted) / total : 0.0;
  return out;
}

} // namespace caustic
