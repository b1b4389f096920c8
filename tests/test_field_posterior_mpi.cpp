// The posterior of field-level inference (pm/grad/field_posterior.hpp): its gradient against
// centred finite differences in the noise and every free parameter, with smoothing, a mask and a
// prior; and its value against an independent computation (FieldChi2Loss and the noise norm).
#include "diff_helpers.hpp"
#include "field_helpers.hpp"
#include "helpers.hpp"
#include "pm/grad/field_posterior.hpp"
#include "pm/grad/losses.hpp"
#include "pm/grad/lpt_model.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

using namespace caustic;

namespace {

constexpr double kBox = 64.0;
constexpr int kMesh = 16, kLattice = 8;

struct Model {
  DiffConfig cfg;
  std::shared_ptr<const SlabDecomposition> lattice, mesh;
  DiffParams params;
  Model()
      : cfg(test::smallDiffConfig(MPI_COMM_WORLD, kLattice, kMesh, kBox, 3)), lattice(cfg.lattice),
        mesh(cfg.mesh) {
    params.cosmology = test::planck();
    params.cosmology.Omega_m = 0.3;
    params.cosmology.sigma8 = 0.8;
  }
  std::shared_ptr<Field<double>> noise(std::uint64_t seed) const {
    return test::runNoise(lattice, seed);
  }
};

void expectClose(double fd, double adj, const char* what, double tol = 1e-5) {
  const double rel = std::abs(fd - adj) / std::max(std::abs(fd), std::abs(adj));
  if (test::worldRank() == 0)
    std::printf("  %-28s fd % .10e  adjoint % .10e  rel %.2e\n", what, fd, adj, rel);
  EXPECT_LT(rel, tol) << what;
  EXPECT_GT(std::abs(adj), 0.0) << what;
}

// Data: b = 1.3 times the matter field of another seed plus noise; variance and mask varying.
FieldObservation observation(const Model& s, bool mask) {
  FieldObservation o;
  auto data = std::make_shared<Field<double>>(s.mesh, "data");
  auto var = std::make_shared<Field<double>>(s.mesh, "variance");
  {
    DiffPM truth(s.cfg);
    const Particles& st = truth.forward(*s.noise(21), s.params);
    Particles cot;
    Field<double> zero(s.mesh, "zero"), one(s.mesh, "one");
    Kokkos::deep_copy(one.real(), 1.0);
    FieldChi2Loss(s.mesh, s.lattice, s.cfg.window, zero, one).density(st, *data);
    Field<double> eps(s.mesh, "eps");
    test::randomField(eps, 22, 0.0, 0.3);
    test::fieldAxpy(*data, *data, 0.3, *data); // b = 1.3
    test::fieldAxpy(*data, *data, 1.0, eps);
  }
  test::randomField(*var, 23, 0.2, 0.1); // sigma^2 in [0.1, 0.3)
  o.data = data;
  o.variance = var;
  if (mask) {
    auto m = std::make_shared<Field<double>>(s.mesh, "mask");
    test::randomField(*m, 24, 0.5, 0.5); // weights in [0, 1)
    o.mask = m;
  }
  return o;
}

} // namespace

TEST(FieldPosterior, GradientAgainstFiniteDifferences) {
  Model s;
  std::vector<PosteriorParameter> free = {posteriorParameter("Omega_m"),
                                          posteriorParameter("sigma8"),
                                          posteriorParameter("bias")};
  free[1].prior_mean = 0.75;
  free[1].prior_width = 0.1; // a Gaussian prior on sigma8 too
  FieldPosterior post(s.cfg, s.params, observation(s, true), free);
  const std::vector<double> theta = {0.32, 0.78, 1.2};
  auto w = s.noise(7);
  Field<double> v(s.lattice, "v"), wt(s.lattice, "wt"), g(s.lattice, "g");
  test::randomField(v, 31);
  for (double R : {0.0, 6.0}) {
    post.setSmoothing(R);
    post.setCentredPrior(R > 0); // the second pass with the log det S term
    if (test::worldRank() == 0)
      std::printf("smoothing R = %.1f Mpc/h, centred prior %s (%d ranks)\n", R,
                  R > 0 ? "on" : "off", test::worldSize());
    const auto t0 = post.value(*w, theta);
    EXPECT_GT(t0.likelihood, 0.0);
    EXPECT_GT(t0.parameter_prior, 0.0);
    std::vector<double> gt;
    post.gradient(g, gt);
    ASSERT_EQ(gt.size(), 3u);
    auto at = [&](const Field<double>& omega, std::vector<double> th) {
      return post.value(omega, th).total();
    };
    expectClose(test::centred(
                    [&](double t) {
                      test::fieldAxpy(wt, *w, t, v);
                      return at(wt, theta);
                    },
                    1e-5),
                test::fieldDot(g, v), "d/domega . v");
    const char* names[3] = {"d/dOmega_m", "d/dsigma8", "d/dbias"};
    for (int i = 0; i < 3; ++i)
      expectClose(test::centred(
                      [&](double t) {
                        std::vector<double> th = theta;
                        th[i] += t;
                        return at(*w, th);
                      },
                      1e-6),
                  gt[i], names[i]);
  }
}

// The Gauss-Newton product: symmetric (the forward differences of J and the adjoint J^T agree),
// and equal to differences of the gradient where the residual vanishes (data = the model at the
// point), where the Hessian is J^T W J plus the priors.
TEST(FieldPosterior, GaussNewtonProductSymmetricAndExactAtZeroResidual) {
  Model s;
  auto w = s.noise(13);
  const std::vector<double> theta = {0.31, 0.79, 1.1};
  FieldObservation obs = observation(s, true);
  {
    // Noise-free data at (w, theta).
    FieldPosterior truth(s.cfg, s.params, obs, {posteriorParameter("Omega_m"),
                                                posteriorParameter("sigma8"),
                                                posteriorParameter("bias")});
    truth.value(*w, theta);
    auto d = std::const_pointer_cast<Field<double>>(obs.data);
    auto m = truth.model().real(), dd = d->real();
    const double b = theta[2];
    Kokkos::parallel_for(
        "test::exactData", dd.extent(0), KOKKOS_LAMBDA(std::size_t i) { dd(i) = b * m(i); });
    Kokkos::fence();
  }
  std::vector<PosteriorParameter> free = {posteriorParameter("Omega_m"),
                                          posteriorParameter("sigma8"),
                                          posteriorParameter("bias")};
  FieldPosterior post(s.cfg, s.params, obs, free);
  post.setSmoothing(5.0);
  post.setCentredPrior(true);
  post.value(*w, theta);
  Field<double> u(s.lattice, "u"), v(s.lattice, "v"), hu(s.lattice, "hu"), hv(s.lattice, "hv");
  test::randomField(u, 61);
  test::randomField(v, 62);
  const std::vector<double> ut = {0.3, -0.2, 0.5}, vt = {-0.1, 0.4, 0.2};
  std::vector<double> hut, hvt;
  post.gaussNewtonProduct(u, ut, hu, hut);
  post.gaussNewtonProduct(v, vt, hv, hvt);
  double uhv = test::fieldDot(u, hv), vhu = test::fieldDot(v, hu);
  for (int i = 0; i < 3; ++i) {
    uhv += ut[i] * hvt[i];
    vhu += vt[i] * hut[i];
  }
  expectClose(uhv, vhu, "u.Hv against v.Hu", 1e-5);
  // Differences of the gradient along v at the zero-residual point.
  Field<double> gp(s.lattice, "gp"), gm(s.lattice, "gm"), wt(s.lattice, "wt");
  std::vector<double> gpt, gmt;
  const double h = 1e-4;
  for (int side = 0; side < 2; ++side) {
    const double t = side ? -h : h;
    test::fieldAxpy(wt, *w, t, v);
    std::vector<double> th = theta;
    for (int i = 0; i < 3; ++i)
      th[i] += t * vt[i];
    post.value(wt, th);
    post.gradient(side ? gm : gp, side ? gmt : gpt);
  }
  Field<double> fd(s.lattice, "fd");
  test::fieldAxpy(fd, gp, -1.0, gm);
  double ufd = test::fieldDot(u, fd) / (2 * h);
  for (int i = 0; i < 3; ++i)
    ufd += ut[i] * (gpt[i] - gmt[i]) / (2 * h);
  expectClose(ufd, uhv, "u.Hv against differences of the gradient", 1e-4);
}

// The log det S term against an independent sum over every lattice mode (sigma8 enters P as
// sigma8^2, so its derivative is the number of non-null modes / sigma8).
TEST(FieldPosterior, LogDetTermCountsEveryNonNullMode) {
  Model s;
  FieldPosterior post(s.cfg, s.params, observation(s, false),
                      {posteriorParameter("sigma8"), posteriorParameter("Omega_m")});
  std::vector<double> g;
  const double v1 = post.logDetTerm({0.8, 0.3}, &g);
  const double v2 = post.logDetTerm({0.9, 0.3});
  const double modes = std::pow(kLattice - 1, 3) - 1; // no DC, no Nyquist planes
  EXPECT_NEAR(v2 - v1, modes * std::log(0.9 / 0.8), 1e-8 * modes);
  EXPECT_NEAR(g[0], modes / 0.8, 1e-6 * modes);
  EXPECT_NE(g[1], 0.0);
}

// Without smoothing, mask or bias, L = chi^2 / 2 (FieldChi2Loss, an independent code path) +
// |omega|^2 / 2, and the noise gradient matches the DiffPM gradient of that loss plus omega.
TEST(FieldPosterior, ValueEqualsChi2LossAndNoiseNorm) {
  Model s;
  const FieldObservation obs = observation(s, false);
  FieldPosterior post(s.cfg, s.params, obs, {posteriorParameter("sigma8")});
  auto w = s.noise(9);
  const auto t = post.value(*w, {s.params.cosmology.sigma8});
  Field<double> sigma(s.mesh, "sigma");
  {
    auto sg = sigma.real(), var = obs.variance->real();
    Kokkos::parallel_for(
        "test::sqrt", sg.extent(0), KOKKOS_LAMBDA(std::size_t i) { sg(i) = std::sqrt(var(i)); });
    Kokkos::fence();
  }
  DiffPM pm(s.cfg);
  Particles cot;
  const double chi2 =
      FieldChi2Loss(s.mesh, s.lattice, s.cfg.window, *obs.data, sigma)(pm.forward(*w, s.params), cot);
  const double w2 = test::fieldDot(*w, *w);
  EXPECT_NEAR(t.likelihood, 0.5 * chi2, 1e-10 * chi2);
  EXPECT_NEAR(t.noise_prior, 0.5 * w2, 1e-12 * w2);
  EXPECT_EQ(t.parameter_prior, 0.0);
  Field<double> g(s.lattice, "g");
  std::vector<double> gt;
  post.gradient(g, gt);
  const DiffGradient ref = pm.gradient(cot);
  // g = ref / 2 + omega
  Field<double> expect(s.lattice, "expect");
  test::fieldAxpy(expect, *w, 0.5, *ref.noise);
  Field<double> diff(s.lattice, "diff");
  test::fieldAxpy(diff, g, -1.0, expect);
  EXPECT_LT(std::sqrt(test::fieldDot(diff, diff)), 1e-10 * std::sqrt(test::fieldDot(g, g)));
  EXPECT_NEAR(gt[0], 0.5 * ref.params[CosmoParam::sigma8],
              1e-10 * std::abs(ref.params[CosmoParam::sigma8]));
}

TEST(FieldPosterior, RefusesPointsOutsideTheDomain) {
  Model s;
  FieldPosterior post(s.cfg, s.params, observation(s, false), {posteriorParameter("Omega_m")});
  auto w = s.noise(3);
  EXPECT_THROW(post.value(*w, {0.99}), std::invalid_argument);
  EXPECT_THROW(post.value(*w, {0.3, 0.8}), std::invalid_argument);
  EXPECT_THROW(posteriorParameter("h"), std::invalid_argument);
  Field<double> g(s.lattice, "g");
  std::vector<double> gt;
  EXPECT_THROW(post.gradient(g, gt), std::logic_error);
}
