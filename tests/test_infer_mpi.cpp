// The MAP optimiser of field-level inference (infer/map_optimizer.hpp) on a small mock:
// the same iterates on every rank count as on one rank alone, a posterior that only decreases,
// and a MAP at least as probable as the truth that made the data.
#include "diff_helpers.hpp"
#include "field_helpers.hpp"
#include "helpers.hpp"
#include "infer/field_vector.hpp"
#include "infer/hmc.hpp"
#include "infer/laplace.hpp"
#include "infer/map_optimizer.hpp"
#include "infer/muse.hpp"
#include "infer/posterior_objective.hpp"
#include "pm/grad/lpt_model.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

using namespace caustic;

namespace {

constexpr double kBox = 128.0;
constexpr int kMesh = 16, kLattice = 8;

// A mock on `comm`: data = the matter field of seed 5 at the true cosmology + white noise of
// variance 0.05 per cell.
struct Mock {
  DiffConfig cfg;
  std::shared_ptr<const SlabDecomposition> lattice, mesh;
  DiffParams truth;
  FieldObservation obs;
  std::shared_ptr<Field<double>> omega_true;
  explicit Mock(MPI_Comm comm)
      : cfg(test::smallDiffConfig(comm, kLattice, kMesh, kBox, 3)), lattice(cfg.lattice),
        mesh(cfg.mesh) {
    truth.cosmology = test::planck();
    omega_true = test::runNoise(lattice, 5);
    auto data = std::make_shared<Field<double>>(mesh, "data");
    auto var = std::make_shared<Field<double>>(mesh, "variance");
    Kokkos::deep_copy(var->real(), 0.05);
    {
      FieldPosterior p(cfg, truth, {data, var, nullptr}, {});
      p.value(*omega_true, {});
      Field<double> eps(mesh, "eps");
      test::randomField(eps, 6, 0.0, std::sqrt(3.0 * 0.05)); // uniform with variance 0.05
      test::fieldAxpy(*data, p.model(), 1.0, eps);
    }
    obs = {data, var, nullptr};
  }
  std::vector<PosteriorParameter> free() const {
    return {posteriorParameter("Omega_m"), posteriorParameter("sigma8")};
  }
};

MapSettings settings(int iterations) {
  MapSettings s;
  s.stages = {{20.0, iterations / 2, false}, {0.0, iterations - iterations / 2, true}};
  s.gradient_tolerance = 1e-12; // run every iteration
  return s;
}

struct Trace {
  std::vector<double> loss;
  std::vector<std::vector<double>> theta;
};

Trace runMap(const Mock& m, int iterations, Field<double>& omega, std::vector<double>& theta) {
  FieldPosterior post(m.cfg, m.truth, m.obs, m.free());
  MapOptimizer opt(post, settings(iterations));
  Trace t;
  opt.run(omega, theta, [&](const MapIteration& it) {
    t.loss.push_back(it.terms.total());
    t.theta.push_back(it.theta);
    return true;
  });
  return t;
}

// A linear-Gaussian toy on the lattice with two parameters u (flat prior):
//   L = 1/2 sum_q (d_q - b_q omega_q - c_q . u)^2 / s2 + 1/2 sum_q omega_q^2,
// whose marginal posterior of u is Gaussian with F = sum_q c_q c_q^T / (s2 + b_q^2),
// covariance F^{-1} and mean F^{-1} sum_q c_q d_q / (s2 + b_q^2) (omega integrated out).
class ToyObjective : public ROL::Objective<double> {
public:
  explicit ToyObjective(std::shared_ptr<const SlabDecomposition> lattice)
      : _lattice(std::move(lattice)), _b(_lattice, "b"), _c0(_lattice, "c0"), _c1(_lattice, "c1"),
        _d(_lattice, "d") {
    test::randomField(_b, 41, 1.0, 0.8);
    test::randomField(_c0, 42, 0.3, 1.0);
    test::randomField(_c1, 43, -0.2, 1.0);
    test::randomField(_d, 44, 0.5, 2.0);
  }
  double value(const ROL::Vector<double>& xv, double&) override {
    const auto& x = dynamic_cast<const FieldVector&>(xv);
    auto b = _b.real(), c0 = _c0.real(), c1 = _c1.real(), d = _d.real(), w = x.noise().real();
    const double u0 = x.params()[0], u1 = x.params()[1], s2 = kS2;
    double v = 0.0;
    _lattice->reducePoints(
        "test::toy::value",
        KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
          const std::size_t i = q.index;
          const double r = d(i) - b(i) * w(i) - c0(i) * u0 - c1(i) * u1;
          acc += 0.5 * r * r / s2 + 0.5 * w(i) * w(i);
        },
        v);
    return test::allSum(v);
  }
  void gradient(ROL::Vector<double>& gv, const ROL::Vector<double>& xv, double&) override {
    const auto& x = dynamic_cast<const FieldVector&>(xv);
    auto& g = dynamic_cast<FieldVector&>(gv);
    auto b = _b.real(), c0 = _c0.real(), c1 = _c1.real(), d = _d.real(), w = x.noise().real(),
         gw = g.noise().real();
    const double u0 = x.params()[0], u1 = x.params()[1], s2 = kS2;
    double g0 = 0.0, g1 = 0.0;
    _lattice->forEachPoint(
        "test::toy::gradient", KOKKOS_LAMBDA(const MeshPoint& q) {
          const std::size_t i = q.index;
          const double r = d(i) - b(i) * w(i) - c0(i) * u0 - c1(i) * u1;
          gw(i) = -b(i) * r / s2 + w(i);
        });
    _lattice->reducePoints(
        "test::toy::g0",
        KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
          const std::size_t i = q.index;
          acc -= c0(i) * (d(i) - b(i) * w(i) - c0(i) * u0 - c1(i) * u1) / s2;
        },
        g0);
    _lattice->reducePoints(
        "test::toy::g1",
        KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
          const std::size_t i = q.index;
          acc -= c1(i) * (d(i) - b(i) * w(i) - c0(i) * u0 - c1(i) * u1) / s2;
        },
        g1);
    g.params() = {test::allSum(g0), test::allSum(g1)};
  }
  // The analytic marginal posterior of u: mean and covariance.
  void analytic(std::vector<double>& mean, std::vector<std::vector<double>>& cov) const {
    auto b = _b.real(), c0 = _c0.real(), c1 = _c1.real(), d = _d.real();
    const double s2 = kS2;
    double f[5] = {0, 0, 0, 0, 0}; // F00, F01, F11, h0, h1
    for (int k = 0; k < 5; ++k) {
      double v = 0.0;
      _lattice->reducePoints(
          "test::toy::fisher",
          KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
            const std::size_t i = q.index;
            const double wq = 1.0 / (s2 + b(i) * b(i));
            acc += wq * (k == 0   ? c0(i) * c0(i)
                         : k == 1 ? c0(i) * c1(i)
                         : k == 2 ? c1(i) * c1(i)
                         : k == 3 ? c0(i) * d(i)
                                  : c1(i) * d(i));
          },
          v);
      f[k] = test::allSum(v);
    }
    cov = invertSpd({{f[0], f[1]}, {f[1], f[2]}});
    mean = {cov[0][0] * f[3] + cov[0][1] * f[4], cov[1][0] * f[3] + cov[1][1] * f[4]};
  }
  std::shared_ptr<const SlabDecomposition> lattice() const { return _lattice; }

private:
  static constexpr double kS2 = 0.3;
  std::shared_ptr<const SlabDecomposition> _lattice;
  Field<double> _b, _c0, _c1, _d;
};

} // namespace

// The MAP of the toy by minimizeLbfgs is the analytic mean of u, and the Laplace covariance
// (finite-difference Hessian products, CG on the noise block, Schur complement) is the analytic
// marginal covariance: exact for a Gaussian posterior.
TEST(Laplace, LinearGaussianToyEqualsAnalyticPosterior) {
  ToyObjective toy(std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, kLattice, kBox));
  FieldVector x(toy.lattice(), 2);
  LbfgsSettings ls;
  ls.max_iterations = 500;
  ls.gradient_tolerance = 1e-11;
  // (So tight a tolerance ends at the step tolerance, 1e-12: converged either way, not capped.)
  const LbfgsStop stop = minimizeLbfgs(toy, x, ls, {});
  EXPECT_TRUE(stop == LbfgsStop::gradient_tolerance || stop == LbfgsStop::step_tolerance)
      << lbfgsStopName(stop);
  {
    FieldVector y(toy.lattice(), 2);
    ls.gradient_tolerance = 1e-6;
    EXPECT_EQ(minimizeLbfgs(toy, y, ls, {}), LbfgsStop::gradient_tolerance);
  }
  std::vector<double> mean;
  std::vector<std::vector<double>> cov;
  toy.analytic(mean, cov);
  for (int i = 0; i < 2; ++i)
    EXPECT_NEAR(x.params()[i], mean[i], 1e-7 * std::abs(mean[i])) << "MAP u_" << i;
  const LaplaceResult r = laplaceCovariance(toy, x);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      EXPECT_NEAR(r.covariance[i][j], cov[i][j], 1e-6 * std::sqrt(cov[i][i] * cov[j][j]))
          << "covariance " << i << j;
  if (test::worldRank() == 0)
    std::printf("  MAP u = (%.8f, %.8f), analytic (%.8f, %.8f); Laplace covariance "
                "[[%.6e, %.6e], [%.6e, %.6e]], analytic [[%.6e, %.6e], [., %.6e]]; CG "
                "iterations %d, %d; %ld gradients\n",
                x.params()[0], x.params()[1], mean[0], mean[1], r.covariance[0][0],
                r.covariance[0][1], r.covariance[1][0], r.covariance[1][1], cov[0][0], cov[0][1],
                cov[1][1], r.cg_iterations[0], r.cg_iterations[1], r.gradients);
}

// An L-BFGS run stopped at iteration 12 and resumed from its iterate and memory continues bit for
// bit as the uninterrupted run (a memory of 5 pairs, so the resumed run's memory has wrapped).
TEST(Lbfgs, ResumedRunContinuesBitForBit) {
  ToyObjective toy(std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, kLattice, kBox));
  LbfgsSettings ls;
  ls.max_iterations = 30;
  ls.memory = 5;
  ls.gradient_tolerance = 1e-300;
  ls.step_tolerance = 0.0;
  std::vector<double> full, resumed;
  FieldVector x(toy.lattice(), 2);
  EXPECT_EQ(minimizeLbfgs(toy, x, ls,
                          [&](const LbfgsState& st) {
                            full.push_back(st.value);
                            return true;
                          }),
            LbfgsStop::iteration_limit);
  FieldVector y(toy.lattice(), 2);
  LbfgsMemory memory;
  EXPECT_EQ(minimizeLbfgs(toy, y, ls,
                          [&](const LbfgsState& st) {
                            if (st.iteration < 12)
                              return true;
                            memory = st.memory();
                            return false;
                          }),
            LbfgsStop::callback);
  ASSERT_EQ(memory.iteration, 12);
  ASSERT_EQ(memory.s.size(), 5u);
  FieldVector z(y); // the iterate, as a checkpoint would restore it
  minimizeLbfgs(
      toy, z, ls,
      [&](const LbfgsState& st) {
        resumed.push_back(st.value);
        return true;
      },
      &memory);
  ASSERT_EQ(full.size(), 31u);
  ASSERT_EQ(resumed.size(), 19u); // iterations 12 .. 30
  for (std::size_t i = 0; i < resumed.size(); ++i)
    EXPECT_EQ(resumed[i], full[12 + i]) << "iteration " << 12 + i;
  FieldVector d(x);
  d.axpy(-1.0, z);
  EXPECT_EQ(d.norm(), 0.0) << "the final iterates differ";
}

// HMC on the toy recovers the analytic marginal mean and covariance of u (within the Monte Carlo
// error of the chain: the batch-means error of the mean, 25% on the variances).
TEST(Hmc, LinearGaussianToyRecoversAnalyticPosterior) {
  ToyObjective toy(std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, kLattice, kBox));
  std::vector<double> mean;
  std::vector<std::vector<double>> cov;
  toy.analytic(mean, cov);
  FieldVector x(toy.lattice(), 2);
  LbfgsSettings ls;
  ls.max_iterations = 300;
  minimizeLbfgs(toy, x, ls, {});
  const LaplaceResult lap = laplaceCovariance(toy, x);
  HmcSettings hs;
  hs.samples = 3000;
  hs.burn_in = 100;
  hs.leapfrog_steps = 10;
  hs.step_size = 0.2;
  hs.parameter_mass = {lap.hessian[0][0], lap.hessian[1][1]};
  hs.seed = 77;
  const HmcResult r = hmcSample(toy, x, hs);
  const std::size_t ns = r.samples.size();
  ASSERT_EQ(ns, 3000u);
  double m[2] = {0, 0}, c[2][2] = {{0, 0}, {0, 0}};
  for (const auto& smp : r.samples)
    for (int i = 0; i < 2; ++i)
      m[i] += smp.params[i] / ns;
  for (const auto& smp : r.samples)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j)
        c[i][j] += (smp.params[i] - m[i]) * (smp.params[j] - m[j]) / (ns - 1);
  // Batch means (30 batches of 100) for the error of the mean.
  for (int i = 0; i < 2; ++i) {
    double bm[30] = {}, v = 0.0;
    for (int b = 0; b < 30; ++b) {
      for (int k = 0; k < 100; ++k)
        bm[b] += r.samples[b * 100 + k].params[i] / 100;
      v += (bm[b] - m[i]) * (bm[b] - m[i]) / 29;
    }
    const double err = std::sqrt(v / 30);
    EXPECT_LT(std::abs(m[i] - mean[i]), 4 * err + 1e-12) << "mean of u_" << i;
    EXPECT_NEAR(c[i][i], cov[i][i], 0.25 * cov[i][i]) << "variance of u_" << i;
    if (test::worldRank() == 0)
      std::printf("  u_%d: HMC mean %.5f +- %.5f (analytic %.5f), variance %.4e (analytic %.4e)\n",
                  i, m[i], err, mean[i], c[i][i], cov[i][i]);
  }
  EXPECT_GT(r.acceptance, 0.5);
  if (test::worldRank() == 0)
    std::printf("  acceptance %.3f, %ld gradients\n", r.acceptance, r.gradients);
}

// A chain stopped after trajectory 7 and continued from its state (HmcStart) is the
// uninterrupted chain, bit for bit: the same states, energy errors and acceptance.
TEST(Hmc, ContinuedChainIsTheUninterruptedOne) {
  ToyObjective toy(std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, kLattice, kBox));
  HmcSettings hs;
  hs.samples = 12;
  hs.burn_in = 3;
  hs.leapfrog_steps = 10;
  hs.step_size = 0.1;
  hs.seed = 5;
  FieldVector x(toy.lattice(), 2);
  LbfgsSettings ls;
  ls.max_iterations = 300;
  minimizeLbfgs(toy, x, ls, {});
  const LaplaceResult lap = laplaceCovariance(toy, x);
  hs.parameter_mass = {lap.hessian[0][0], lap.hessian[1][1]};
  std::vector<HmcSample> full, part;
  FieldVector y(x);
  const HmcResult rf = hmcSample(toy, x, hs, [&](const HmcSample& smp) {
    full.push_back(smp);
    return true;
  });
  HmcStart at;
  hmcSample(toy, y, hs, [&](const HmcSample& smp) {
    at = {smp.trajectory + 1, smp.accepted_total};
    return smp.trajectory < 7;
  });
  ASSERT_EQ(at.trajectory, 8);
  const HmcResult rc = hmcSample(toy, y, hs, [&](const HmcSample& smp) {
    part.push_back(smp);
    return true;
  }, at);
  ASSERT_EQ(full.size(), 15u);
  ASSERT_EQ(part.size(), 7u);
  for (std::size_t i = 0; i < part.size(); ++i) {
    const HmcSample &a = full[8 + i], &b = part[i];
    EXPECT_EQ(a.trajectory, b.trajectory);
    EXPECT_EQ(a.accepted, b.accepted) << "trajectory " << a.trajectory;
    EXPECT_EQ(a.accepted_total, b.accepted_total);
    EXPECT_EQ(a.energy_error, b.energy_error) << "trajectory " << a.trajectory;
    EXPECT_EQ(a.params, b.params) << "trajectory " << a.trajectory;
  }
  EXPECT_EQ(rc.acceptance, rf.acceptance);
  EXPECT_GT(full.back().accepted_total, 0);
  FieldVector d(x);
  d.axpy(-1.0, y);
  EXPECT_EQ(d.norm(), 0.0) << "the final states differ";
}

// The distributed optimiser follows the serial one: rank 0 runs alone on MPI_COMM_SELF, then
// all ranks together; 20 iterations agree to 1e-6 (the reductions differ in order only; the
// differences, 1e-12 at first, grow by about 10x per few iterations of this ill-conditioned
// problem: 5e-8 after 14 at 2 ranks, measured).
TEST(MapOptimizer, IteratesAgreeAcrossRankCounts) {
  const int iterations = 20;
  Trace serial;
  if (test::worldRank() == 0) {
    Mock m(MPI_COMM_SELF);
    Field<double> omega(m.lattice, "omega");
    std::vector<double> theta = {0.25, 0.9};
    serial = runMap(m, iterations, omega, theta);
  }
  Mock m(MPI_COMM_WORLD);
  Field<double> omega(m.lattice, "omega");
  std::vector<double> theta = {0.25, 0.9};
  const Trace dist = runMap(m, iterations, omega, theta);
  if (test::worldRank() == 0) {
    ASSERT_EQ(serial.loss.size(), dist.loss.size());
    ASSERT_GE(dist.loss.size(), std::size_t(iterations));
    double worst = 0.0;
    for (std::size_t i = 0; i < dist.loss.size(); ++i) {
      const double rel = std::abs(dist.loss[i] - serial.loss[i]) / std::abs(serial.loss[i]);
      worst = std::max(worst, rel);
      EXPECT_LT(rel, 1e-6) << "iterate " << i;
      for (std::size_t j = 0; j < 2; ++j)
        EXPECT_NEAR(dist.theta[i][j], serial.theta[i][j], 1e-6) << "iterate " << i;
    }
    std::printf("  %zu iterates at %d ranks: loss %.6e -> %.6e, worst relative difference to one "
                "rank %.2e\n",
                dist.loss.size(), test::worldSize(), dist.loss.front(), dist.loss.back(), worst);
  }
}

// A MAP run stopped in its second (fitting, preconditioned) stage and resumed from the checkpoint
// continues bit for bit as the uninterrupted run.
TEST(MapOptimizer, ResumedRunContinuesBitForBit) {
  Mock m(MPI_COMM_WORLD);
  const MapSettings s = settings(16);
  std::vector<double> full, resumed;
  Field<double> omega(m.lattice, "omega"), omega2(m.lattice, "omega2");
  std::vector<double> theta = {0.25, 0.9}, theta2 = theta;
  {
    FieldPosterior post(m.cfg, m.truth, m.obs, m.free());
    MapOptimizer opt(post, s);
    opt.run(omega, theta, [&](const MapIteration& it) {
      full.push_back(it.terms.total());
      return true;
    });
  }
  MapCheckpoint cp;
  {
    Field<double> w(m.lattice, "w");
    std::vector<double> th = {0.25, 0.9};
    FieldPosterior post(m.cfg, m.truth, m.obs, m.free());
    MapOptimizer opt(post, s);
    opt.run(w, th, [&](const MapIteration& it) {
      if (it.total < 11)
        return true;
      cp = it.checkpoint();
      return false;
    });
  }
  ASSERT_EQ(cp.stage, 1);
  ASSERT_FALSE(cp.preconditioner_curvature.empty());
  {
    FieldPosterior post(m.cfg, m.truth, m.obs, m.free());
    MapOptimizer opt(post, s);
    bool first = true;
    opt.run(
        omega2, theta2,
        [&](const MapIteration& it) {
          if (!first) // the first call repeats the checkpoint's iterate
            resumed.push_back(it.terms.total());
          first = false;
          return true;
        },
        &cp);
  }
  // full: 9 iterates of stage 0 (0..8), then stage 1's; the checkpoint is total 11.
  ASSERT_EQ(full.size(), resumed.size() + 13);
  for (std::size_t i = 0; i < resumed.size(); ++i)
    EXPECT_EQ(resumed[i], full[13 + i]) << "iterate " << 13 + i;
  EXPECT_EQ(theta2, theta);
  Field<double> d(m.lattice, "d");
  test::fieldAxpy(d, omega, -1.0, omega2);
  EXPECT_EQ(test::fieldDot(d, d), 0.0);
}

// From zero noise and a wrong cosmology the posterior only decreases, and the MAP is at least as
// probable as the truth (a MAP worse than the truth is a local minimum or a failed optimiser).
TEST(MapOptimizer, ReachesAPosteriorAtLeastAsHighAsTheTruth) {
  Mock m(MPI_COMM_WORLD);
  FieldPosterior post(m.cfg, m.truth, m.obs, m.free());
  const double at_truth =
      post.value(*m.omega_true, {m.truth.cosmology.Omega_m, m.truth.cosmology.sigma8}).total();
  MapSettings s;
  s.stages = {{20.0, 15, false}, {0.0, 60, true}};
  s.gradient_tolerance = 1e-6;
  MapOptimizer opt(post, s);
  Field<double> omega(m.lattice, "omega");
  std::vector<double> theta = {0.25, 0.9};
  std::vector<double> losses;
  std::vector<int> stages;
  opt.run(omega, theta, [&](const MapIteration& it) {
    losses.push_back(it.terms.total());
    stages.push_back(it.stage);
    return true;
  });
  for (std::size_t i = 1; i < losses.size(); ++i) {
    if (stages[i] == stages[i - 1]) {
      EXPECT_LE(losses[i], losses[i - 1]) << "iterate " << i;
    }
  }
  const double at_map = post.value(omega, theta).total();
  if (test::worldRank() == 0)
    std::printf("  %zu iterates: -log posterior %.4f at the MAP, %.4f at the truth; Omega_m %.4f "
                "(true %.4f), sigma8 %.4f (true %.4f)\n",
                losses.size(), at_map, at_truth, theta[0], m.truth.cosmology.Omega_m, theta[1],
                m.truth.cosmology.sigma8);
  EXPECT_LE(at_map, at_truth);
}

// The partially centred noise of HMC over the parameters (PosteriorObjective's centring):
// - fully centred (w = 1), the linear density of z is the same at every theta (LptModel's, an
//   independent computation), and -log det A = (N^3 - 1) log(sigma8 / sigma8_0) when sigma8
//   alone moves (log S moves by 2 log of the ratio on every mode but DC);
// - with w = 0 the noise itself stays;
// - with weights between, the gradient is that of the value (centred differences).
TEST(PosteriorObjective, CentredNoiseKeepsTheLinearDensityAndHasItsValuesGradient) {
  Mock m(MPI_COMM_WORLD);
  FieldPosterior post(m.cfg, m.truth, m.obs, m.free());
  const std::vector<double> theta0 = {0.3, 0.8}, scales = {0.01, 0.02};
  auto pc = std::make_shared<FourierPreconditioner>(m.lattice);
  const int h = kLattice / 2;
  const std::size_t nb = std::size_t(3 * h * h + 1);
  std::vector<double> c(nb), w(nb);
  for (std::size_t i = 0; i < nb; ++i) {
    c[i] = 40.0 / (1.0 + i);
    w[i] = c[i] / (1.0 + c[i]);
  }
  pc->setCurvature(c);
  auto point = [&](const PosteriorObjective& obj, std::vector<double> u) {
    FieldVector x = obj.makeVector();
    test::randomField(x.noise(), 41, 0.0, 1.7);
    x.params() = u;
    return x;
  };
  auto linear = [&](const PosteriorObjective& obj, const FieldVector& x) {
    Field<double> omega(m.lattice, "omega"), lin(m.lattice, "lin");
    obj.noiseAt(x, omega);
    LptModel(m.cfg, post.paramsAt(obj.thetaAt(x))).linearDensity(omega, lin);
    return lin;
  };
  auto difference = [&](const Field<double>& a, const Field<double>& b) {
    Field<double> d(m.lattice, "d");
    test::fieldAxpy(d, a, -1.0, b);
    return std::sqrt(test::fieldDot(d, d) / test::fieldDot(b, b));
  };
  {
    PosteriorObjective full(post, theta0, scales, true, pc, std::vector<double>(nb, 1.0));
    const FieldVector x0 = point(full, {0.0, 0.0}), xs = point(full, {0.0, 2.5}),
                      xo = point(full, {2.0, -1.0});
    const Field<double> l0 = linear(full, x0);
    EXPECT_LT(difference(linear(full, xs), l0), 1e-12) << "sigma8 moved the linear density";
    EXPECT_LT(difference(linear(full, xo), l0), 1e-12) << "Omega_m moved the linear density";
    double tol = 0.0;
    const double v = full.value(xs, tol);
    Field<double> omega(m.lattice, "omega");
    full.noiseAt(xs, omega);
    const double white = post.value(omega, full.thetaAt(xs)).total();
    const double modes = std::pow(double(kLattice), 3) - 1.0;
    EXPECT_NEAR(v - white, modes * std::log(0.85 / 0.8), 1e-9 * modes);
  }
  {
    PosteriorObjective none(post, theta0, scales, true, pc, std::vector<double>(nb, 0.0));
    Field<double> o0(m.lattice, "o0"), o1(m.lattice, "o1");
    none.noiseAt(point(none, {0.0, 0.0}), o0);
    none.noiseAt(point(none, {2.0, 2.5}), o1);
    EXPECT_LT(difference(o1, o0), 1e-14) << "w = 0 moved the noise";
  }
  PosteriorObjective obj(post, theta0, scales, true, pc, w);
  const FieldVector x = point(obj, {0.7, -0.4});
  FieldVector g = obj.makeVector(), v = obj.makeVector(), xt = obj.makeVector();
  double tol = 0.0;
  obj.gradient(g, x, tol);
  test::randomField(v.noise(), 42);
  v.params() = {0.3, 0.5};
  auto along = [&](const FieldVector& dir) {
    return test::centred(
        [&](double t) {
          xt.set(x);
          xt.axpy(t, dir);
          return obj.value(xt, tol);
        },
        1e-5);
  };
  auto close = [&](double fd, double an, const char* what) {
    const double rel = std::abs(fd - an) / std::max(std::abs(fd), std::abs(an));
    if (test::worldRank() == 0)
      std::printf("  %-22s fd % .10e  gradient % .10e  rel %.2e\n", what, fd, an, rel);
    EXPECT_LT(rel, 1e-5) << what;
  };
  close(along(v), g.dot(v), "noise and parameters");
  for (std::size_t j = 0; j < 2; ++j) {
    FieldVector e = obj.makeVector();
    e.params()[j] = 1.0;
    close(along(e), g.params()[j], j ? "d/du sigma8" : "d/du Omega_m");
  }
  // The round trip of fromNoise and noiseAt at x's parameters.
  Field<double> omega(m.lattice, "omega"), back(m.lattice, "back");
  obj.noiseAt(x, omega);
  FieldVector y = obj.makeVector();
  y.params() = x.params();
  obj.fromNoise(omega, y);
  EXPECT_LT(difference(y.noise(), x.noise()), 1e-13);
}

// MUSE on a Gaussian hierarchical toy with two parameters, where it equals the maximum of the
// marginal likelihood: x_q = z_q + n_q, z_q ~ N(0, v_q), n_q ~ N(0, 1), v_q = t0 + t1 c_q. The
// joint maximum over z is zhat = x v / (v + 1), the score d/dt log P(x, zhat | t) =
// sum_q dv_q/dt (zhat^2 / v^2 - 1 / v) / 2, and MUSE's equation s_obs = <s> is the marginal
// likelihood's sum_q dv_q/dt (x^2 - (v + 1)) / (v + 1)^2 = 0. The test finds that maximum by
// Fisher scoring; MUSE from another starting point must reach it within the noise of its mean
// score (the Fisher error / sqrt(N)) and give the inverse Fisher matrix as its covariance.
TEST(Muse, GaussianToyEqualsTheMarginalMaximumAndItsFisherCovariance) {
  const int d = 4000, N = 400;
  std::vector<double> c(d);
  for (int q = 0; q < d; ++q)
    c[q] = 0.2 + 1.8 * q / (d - 1.0);
  auto draw = [&](const std::vector<double>& t, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> g(0.0, 1.0);
    std::vector<double> x(d);
    for (int q = 0; q < d; ++q) {
      const double z = std::sqrt(t[0] + t[1] * c[q]) * g(rng);
      x[q] = z + g(rng);
    }
    return x;
  };
  const std::vector<double> truth = {1.0, 2.0};
  const std::vector<double> xobs = draw(truth, 7);
  auto scoreOf = [&](const std::vector<double>& t, const std::vector<double>& x) {
    std::vector<double> s(2, 0.0);
    for (int q = 0; q < d; ++q) {
      const double v = t[0] + t[1] * c[q], zh = x[q] * v / (v + 1.0);
      const double e = 0.5 * (zh * zh / (v * v) - 1.0 / v);
      s[0] += e;
      s[1] += c[q] * e;
    }
    return s;
  };
  // The marginal maximum and its Fisher matrix F_ab = 1/2 sum dv_a dv_b / (v + 1)^2.
  std::vector<double> ml = {1.2, 1.8};
  SmallMatrix fisher;
  for (int it = 0; it < 50; ++it) {
    std::vector<double> g(2, 0.0);
    fisher.assign(2, std::vector<double>(2, 0.0));
    for (int q = 0; q < d; ++q) {
      const double v1 = ml[0] + ml[1] * c[q] + 1.0, dv[2] = {1.0, c[q]};
      for (int a = 0; a < 2; ++a) {
        g[a] += 0.5 * dv[a] * (xobs[q] * xobs[q] - v1) / (v1 * v1);
        for (int b = 0; b < 2; ++b)
          fisher[a][b] += 0.5 * dv[a] * dv[b] / (v1 * v1);
      }
    }
    const SmallMatrix fi = invertSmall(fisher);
    for (int a = 0; a < 2; ++a)
      ml[a] += fi[a][0] * g[0] + fi[a][1] * g[1];
  }
  const SmallMatrix cov_ml = invertSmall(fisher);

  MuseProblem problem;
  int observed_calls = 0;
  problem.score = [&](const std::vector<double>& t, const std::vector<double>& t_sim, int sim,
                      std::vector<double>& s) {
    if (sim < 0) {
      ++observed_calls;
      s = scoreOf(t, xobs);
    } else {
      s = scoreOf(t, draw(t_sim, 1000 + static_cast<std::uint64_t>(sim)));
    }
    return true;
  };
  problem.in_domain = [](const std::vector<double>& t) { return t[0] > 0.0 && t[1] > 0.0; };
  MuseSettings ms;
  ms.simulations = N;
  ms.iterations = 6;
  // The first full step would move t0 by 37%: max_step scales it to 25%.
  const MuseResult r = museEstimate(problem, {0.8, 2.3}, ms);
  ASSERT_TRUE(r.complete);
  // Six Newton steps with H at the start, then H, J and the data's score at the estimate.
  EXPECT_EQ(observed_calls, 7);
  EXPECT_EQ(r.scores, 6 * (N + 1) + 2 * N + (N + 1) + 2 * N);
  ASSERT_EQ(r.history.size(), 7u);
  ASSERT_EQ(r.steps.size(), 6u);
  EXPECT_TRUE(r.covariance_at_estimate);
  EXPECT_NEAR(std::abs(r.history[1][0] - 0.8) / 0.8, 0.25, 1e-12) << "the first step, limited";
  EXPECT_LT(r.last_step_sigmas, 0.05) << "not converged";
  EXPECT_GE(r.residual_sigmas, 0.0);
  EXPECT_LT(r.residual_sigmas, 0.05) << "not converged at the estimate";
  // H of the covariance: the forward difference at the estimate, computed here on its own;
  // the Newton steps' H at the start differs from it.
  {
    std::vector<std::vector<double>> base(N);
    double change = 0.0;
    for (int i = 0; i < N; ++i)
      base[i] = scoreOf(r.theta, draw(r.theta, 1000 + std::uint64_t(i)));
    for (int j = 0; j < 2; ++j) {
      std::vector<double> shifted = r.theta;
      shifted[j] += ms.step * r.theta[j];
      const double dh = shifted[j] - r.theta[j];
      std::vector<double> hj(2, 0.0);
      for (int i = 0; i < N; ++i) {
        const std::vector<double> si = scoreOf(r.theta, draw(shifted, 1000 + std::uint64_t(i)));
        for (int k = 0; k < 2; ++k)
          hj[k] += (si[k] - base[i][k]) / (dh * N);
      }
      for (int k = 0; k < 2; ++k) {
        EXPECT_NEAR(r.H[k][j], hj[k], 1e-9 * std::abs(hj[k])) << "H " << k << j;
        change = std::max(change, std::abs(r.newton_H[k][j] / r.H[k][j] - 1.0));
      }
    }
    EXPECT_GT(change, 0.02) << "H at the start and at the estimate";
  }
  for (int a = 0; a < 2; ++a) {
    const double sd = std::sqrt(cov_ml[a][a]);
    EXPECT_LT(std::abs(r.theta[a] - ml[a]), 4.0 * sd / std::sqrt(double(N)))
        << "parameter " << a << ": MUSE " << r.theta[a] << ", marginal maximum " << ml[a];
    EXPECT_NEAR(r.covariance[a][a], cov_ml[a][a], 0.3 * cov_ml[a][a]) << "variance " << a;
  }
  const double corr = r.covariance[0][1] / std::sqrt(r.covariance[0][0] * r.covariance[1][1]);
  const double corr_ml = cov_ml[0][1] / std::sqrt(cov_ml[0][0] * cov_ml[1][1]);
  EXPECT_NEAR(corr, corr_ml, 0.1);
  if (test::worldRank() == 0)
    std::printf("  MUSE %.4f %.4f (from 0.8 2.3), marginal maximum %.4f %.4f, truth 1 2; sigma "
                "%.4f %.4f (Fisher %.4f %.4f), correlation %.3f (Fisher %.3f)\n",
                r.theta[0], r.theta[1], ml[0], ml[1], std::sqrt(r.covariance[0][0]),
                std::sqrt(r.covariance[1][1]), std::sqrt(cov_ml[0][0]), std::sqrt(cov_ml[1][1]),
                corr, corr_ml);
  // Broyden: the first step used the H measured at the start; every later one an H that maps
  // the previous step onto the change of G = <s> - s_obs over it (the secant condition).
  EXPECT_EQ(r.steps[0].newton_H, r.newton_H);
  for (std::size_t k = 1; k < r.steps.size(); ++k)
    for (int a = 0; a < 2; ++a) {
      double mapped = 0.0;
      for (int b = 0; b < 2; ++b)
        mapped += r.steps[k].newton_H[a][b] * (r.history[k][b] - r.history[k - 1][b]);
      const double g = r.steps[k].mean[a] - r.steps[k].observed[a],
                   dg = g - (r.steps[k - 1].mean[a] - r.steps[k - 1].observed[a]);
      EXPECT_NEAR(mapped, dg, 1e-9 * (std::abs(dg) + std::abs(g))) << "step " << k << ", " << a;
    }
  // Without the final measurement: H from the start, J from the last step, as many scores as
  // the steps take.
  {
    MuseSettings start = ms;
    start.final_covariance = false;
    observed_calls = 0;
    const MuseResult q = museEstimate(problem, {0.8, 2.3}, start);
    ASSERT_TRUE(q.complete);
    EXPECT_EQ(observed_calls, 6);
    EXPECT_EQ(q.scores, 6 * (N + 1) + 2 * N);
    EXPECT_FALSE(q.covariance_at_estimate);
    EXPECT_EQ(q.H, q.newton_H);
    EXPECT_EQ(q.theta, r.theta);
    EXPECT_LT(q.residual_sigmas, 0.0);
    if (test::worldRank() == 0)
      std::printf("  MUSE sigma with H from the start %.4f %.4f, at the estimate %.4f %.4f\n",
                  std::sqrt(q.covariance[0][0]), std::sqrt(q.covariance[1][1]),
                  std::sqrt(r.covariance[0][0]), std::sqrt(r.covariance[1][1]));
  }
  // With a tolerance: the iteration stops at the first step shorter than it (taken, the last),
  // near the six steps' estimate; an unreachable tolerance takes every step and says so.
  {
    MuseSettings tol = ms;
    tol.iterations = 30;
    tol.tolerance = 0.05;
    observed_calls = 0;
    const MuseResult q = museEstimate(problem, {0.8, 2.3}, tol);
    ASSERT_TRUE(q.complete);
    EXPECT_TRUE(q.converged);
    EXPECT_GE(q.newton_steps, 2);
    EXPECT_LT(q.newton_steps, 30);
    EXPECT_EQ(observed_calls, q.newton_steps + 1); // one per step, one at the estimate
    ASSERT_EQ(q.history.size(), static_cast<std::size_t>(q.newton_steps + 1));
    EXPECT_LT(q.last_step_sigmas, 0.05 * 1.5); // the covariance at the estimate, not the step's
    const std::vector<double> d = {q.theta[0] - r.theta[0], q.theta[1] - r.theta[1]};
    const SmallMatrix prec = invertSmall(r.covariance);
    double q2 = 0.0;
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b)
        q2 += d[a] * prec[a][b] * d[b];
    EXPECT_LT(std::sqrt(q2), 0.1) << "the tolerance's estimate against six steps'";
    tol.iterations = 3;
    tol.tolerance = 1e-12;
    const MuseResult u = museEstimate(problem, {0.8, 2.3}, tol);
    EXPECT_FALSE(u.converged);
    EXPECT_EQ(u.newton_steps, 3);
    tol.tolerance = -1.0;
    EXPECT_THROW(museEstimate(problem, {0.8, 2.3}, tol), std::invalid_argument);
  }
  // A stop from the problem ends the run, incomplete.
  problem.score = [&](const std::vector<double>&, const std::vector<double>&, int sim,
                      std::vector<double>& s) {
    s.assign(2, 0.0);
    return sim < 3;
  };
  EXPECT_FALSE(museEstimate(problem, {1.0, 2.0}, ms).complete);
  ms.simulations = 1;
  EXPECT_THROW(museEstimate(problem, {1.0, 2.0}, ms), std::invalid_argument);
}

// A score whose mean over the simulations is a nonlinear function of the simulations'
// parameters, g(t) = (t0^3 + t1, t0 t1^2), with zero-mean noise and an observed score g(truth):
// MUSE's equation <s> = s_obs has the root t = truth. From a start where H = dg/dt is far from
// the root's, Newton steps with Broyden's update come closer to it in four steps than steps with
// the start's H, and reach it to rounding in 40 (those with the start's H are still 13% off
// then: the fixed-H iteration does not contract there).
TEST(Muse, BroydenReachesTheRootOfANonlinearScoreSoonerThanTheStartsH) {
  const std::vector<double> truth = {1.6, 0.7};
  auto g = [](const std::vector<double>& t) {
    return std::vector<double>{t[0] * t[0] * t[0] + t[1], t[0] * t[1] * t[1]};
  };
  MuseProblem problem;
  problem.score = [&](const std::vector<double>&, const std::vector<double>& t_sim, int sim,
                      std::vector<double>& s) {
    // Noise of zero mean over the four simulations, different in the two components (J is
    // not singular).
    static const double noise[4][2] = {{0.01, 0.01}, {-0.01, -0.01}, {0.02, -0.02}, {-0.02, 0.02}};
    s = g(sim < 0 ? truth : t_sim);
    if (sim >= 0)
      for (int a = 0; a < 2; ++a)
        s[a] += noise[sim][a];
    return true;
  };
  problem.in_domain = [](const std::vector<double>& t) { return t[0] > 0.0 && t[1] > 0.0; };
  MuseSettings ms;
  ms.simulations = 4;
  ms.max_step = 1.0;
  ms.final_covariance = false;
  auto error = [&](const MuseResult& r) {
    return std::max(std::abs(r.theta[0] / truth[0] - 1.0), std::abs(r.theta[1] / truth[1] - 1.0));
  };
  ms.iterations = 4;
  const double secant = error(museEstimate(problem, {1.0, 1.0}, ms));
  ms.broyden = false;
  const double fixed = error(museEstimate(problem, {1.0, 1.0}, ms));
  ms.iterations = 40;
  const double fixed_long = error(museEstimate(problem, {1.0, 1.0}, ms));
  ms.broyden = true;
  const double secant_long = error(museEstimate(problem, {1.0, 1.0}, ms));
  if (test::worldRank() == 0)
    std::printf("  largest relative error after 4 steps: Broyden %.3g, H from the start %.3g; "
                "after 40: %.3g, %.3g\n",
                secant, fixed, secant_long, fixed_long);
  EXPECT_LT(secant, 0.5 * fixed);
  EXPECT_LT(secant_long, 1e-12);
}

TEST(Muse, InvertSmallInvertsAndRefusesASingularMatrix) {
  const SmallMatrix a = {{0.0, 2.0, 1.0}, {1.0, 1.0, 0.0}, {3.0, 0.0, 1.0}};
  const SmallMatrix inv = invertSmall(a);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      double v = 0.0;
      for (int k = 0; k < 3; ++k)
        v += a[i][k] * inv[k][j];
      EXPECT_NEAR(v, i == j ? 1.0 : 0.0, 1e-14);
    }
  EXPECT_THROW(invertSmall({{1.0, 2.0}, {2.0, 4.0}}), std::runtime_error);
}

// The interval scales against closed forms of the quantiles: Student's t with 1 and 2 degrees
// of freedom (tan(pi (u - 1/2)); (2u - 1) / sqrt(2 u (1 - u))), F(2, d2) ((d2 / 2) ((1 - q)^(-2 /
// d2) - 1)) for the joint bound of two parameters, F(1, d2) = t^2 for one, and the normal and
// chi^2 limits of many simulations.
TEST(Muse, IntervalScalesAreTheTAndHotellingQuantiles) {
  for (const double level : {0.68, 0.95}) {
    const double u = 0.5 * (1.0 + level);
    EXPECT_NEAR(museIntervalScale(2, 1, level).marginal, std::tan(M_PI * (u - 0.5)), 1e-10);
    const MuseIntervalScale three = museIntervalScale(3, 1, level);
    EXPECT_NEAR(three.marginal, (2 * u - 1) / std::sqrt(2 * u * (1 - u)), 1e-10);
    EXPECT_NEAR(three.joint, three.marginal * three.marginal, 1e-9) << "one parameter: t^2";
    for (const int n : {3, 4, 10}) {
      const double d2 = n - 2.0, f = 0.5 * d2 * (std::pow(1.0 - level, -2.0 / d2) - 1.0);
      EXPECT_NEAR(museIntervalScale(n, 2, level).joint, 2.0 * (n - 1.0) / d2 * f, 1e-9 * f)
          << n << " simulations";
    }
    const MuseIntervalScale many = museIntervalScale(1000000, 2, level);
    EXPECT_NEAR(many.marginal, level == 0.68 ? 0.994457883 : 1.959963985, 1e-5);
    EXPECT_NEAR(many.joint, -2.0 * std::log(1.0 - level), 1e-4);
  }
  EXPECT_NEAR(museIntervalScale(10, 2, 0.95).marginal, 2.262157163, 1e-8);
  EXPECT_THROW(museIntervalScale(2, 2, 0.68), std::invalid_argument);
  EXPECT_THROW(museIntervalScale(5, 0, 0.68), std::invalid_argument);
  EXPECT_THROW(museIntervalScale(5, 2, 1.0), std::invalid_argument);
}

// Coverage of the intervals over 3000 replications of a linear Gaussian problem with a
// correlated noise: data x = t + L n, score s(t, x) = x - t, simulation i at t_sim x_i = t_sim +
// L n_i (common random numbers). MUSE's estimate is x_obs - mean_i L n_i and its covariance
// (1 + 1/N) J from the N = 5 simulations' scores: the intervals with museIntervalScale contain
// the truth in 68% and 95% of the replications (per parameter and jointly), those with the
// normal and chi^2 quantiles of a known covariance in far fewer (88% for 95%).
TEST(Muse, IntervalsCoverTheTruthAtTheirLevelWithFewSimulations) {
  const int N = 5, R = 3000;
  const std::vector<double> truth = {10.0, 20.0};
  const double L[2][2] = {{0.5, 0.0}, {0.3, 0.4}};
  std::vector<std::vector<double>> noise(N + 1, std::vector<double>(2)); // the data's, then sims'
  MuseProblem problem;
  problem.score = [&](const std::vector<double>& t, const std::vector<double>& t_sim, int sim,
                      std::vector<double>& s) {
    const std::vector<double>& n = noise[static_cast<std::size_t>(sim + 1)];
    const std::vector<double>& centre = sim < 0 ? truth : t_sim;
    s.resize(2);
    for (int a = 0; a < 2; ++a)
      s[a] = centre[a] + L[a][0] * n[0] + L[a][1] * n[1] - t[a];
    return true;
  };
  problem.in_domain = [](const std::vector<double>&) { return true; };
  MuseSettings ms;
  ms.simulations = N;
  ms.iterations = 1;
  const MuseIntervalScale s68 = museIntervalScale(N, 2, 0.68), s95 = museIntervalScale(N, 2, 0.95);
  const double z95 = 1.959963985, c95 = -2.0 * std::log(0.05);
  int in68 = 0, in95 = 0, joint68 = 0, joint95 = 0, normal95 = 0, chi95 = 0;
  std::mt19937_64 rng(2026);
  std::normal_distribution<double> g(0.0, 1.0);
  for (int rep = 0; rep < R; ++rep) {
    for (auto& n : noise)
      n = {g(rng), g(rng)};
    const MuseResult r = museEstimate(problem, truth, ms);
    ASSERT_TRUE(r.complete);
    std::vector<double> d(2);
    for (int a = 0; a < 2; ++a) {
      d[a] = r.theta[a] - truth[a];
      const double pull = std::abs(d[a]) / std::sqrt(r.covariance[a][a]);
      in68 += pull < s68.marginal;
      in95 += pull < s95.marginal;
      normal95 += pull < z95;
    }
    const SmallMatrix prec = invertSmall(r.covariance);
    double chi2 = 0.0;
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b)
        chi2 += d[a] * prec[a][b] * d[b];
    joint68 += chi2 < s68.joint;
    joint95 += chi2 < s95.joint;
    chi95 += chi2 < c95;
  }
  const double m68 = in68 / (2.0 * R), m95 = in95 / (2.0 * R), j68 = joint68 / double(R),
               j95 = joint95 / double(R), n95 = normal95 / (2.0 * R), x95 = chi95 / double(R);
  // Binomial standard deviations: 0.006 and 0.003 per parameter, 0.0085 and 0.004 jointly.
  EXPECT_NEAR(m68, 0.68, 0.025);
  EXPECT_NEAR(m95, 0.95, 0.012);
  EXPECT_NEAR(j68, 0.68, 0.035);
  EXPECT_NEAR(j95, 0.95, 0.016);
  EXPECT_LT(n95, 0.92) << "the normal quantile should undercover with 5 simulations";
  EXPECT_LT(x95, 0.90) << "the chi^2 bound should undercover with 5 simulations";
  if (test::worldRank() == 0)
    std::printf("  coverage with %d simulations over %d replications: t %.3f %.3f, Hotelling "
                "%.3f %.3f; normal 95%% %.3f, chi^2 95%% %.3f\n",
                N, R, m68, m95, j68, j95, n95, x95);
}
