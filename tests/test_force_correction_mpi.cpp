// The neural force correction (emulators/force/neural_correction.hpp): the cubic B-spline against
// its analytic properties, the network's pinning, bounds and parameter layout, and its VJP inside
// the PM force against finite differences (1, 2 and 3 ranks).
#include "emulators/force/neural_correction.hpp"
#include "helpers.hpp"
#include "pm/grad/adjoint.hpp"
#include "pm/ic/white_noise.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

using namespace caustic;

namespace {

double allSum(double v) {
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return v;
}

std::vector<double> randomTheta(const NeuralSplineConfig& cfg, double scale, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, scale);
  std::vector<double> t(NeuralSplineCorrection<double>::parameterCount(cfg));
  for (auto& v : t)
    v = g(rng);
  return t;
}

// Centred differences of value() in the correction parameters `which` (step eps) against the
// gradient `grad` (relative 1e-4); each parameter must move the value by more than min_effect.
void expectGradients(const DiffParams& params, const std::vector<double>& grad,
                     const std::vector<std::size_t>& which,
                     const std::function<double(const DiffParams&)>& value, double eps,
                     double min_effect, const char* what) {
  for (std::size_t i : which) {
    DiffParams up = params, down = params;
    up.correction[i] += eps;
    down.correction[i] -= eps;
    const double fd = (value(up) - value(down)) / (2 * eps);
    const double rel = std::abs(fd - grad[i]) / std::max(std::abs(fd), 1e-12);
    if (test::worldRank() == 0)
      std::printf("  %s d/dtheta[%zu]  fd % .10e  adjoint % .10e  rel %.2e (%d ranks)\n", what, i,
                  fd, grad[i], rel, test::worldSize());
    EXPECT_LT(rel, 1e-4) << what << ": parameter " << i;
    EXPECT_GT(std::abs(fd), min_effect) << what << ": parameter " << i << " has no effect";
  }
}

} // namespace

TEST(NeuralCorrection, SplineIsAPartitionOfUnityAndExactOnLines) {
  const auto dd = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor inner = torch::tensor({0.0, 0.1, 0.35, 0.4, 0.8, 1.0}, dd);
  const torch::Tensor u = torch::linspace(0.0, 1.0, 101, dd);
  const int nb = 5 + 3;
  // sum_i B_i(u) = 1 on [0, 1].
  const torch::Tensor one = bsplineCubic(u, inner, torch::ones({nb}, dd));
  EXPECT_LT((one - 1.0).abs().max().item<double>(), 1e-12);
  // Linear precision: weights at the Greville abscissae (t_{i+1} + t_{i+2} + t_{i+3}) / 3
  // reproduce s(u) = u.
  std::vector<double> t = {0, 0, 0};
  for (int i = 0; i < 6; ++i)
    t.push_back(inner[i].item<double>());
  t.insert(t.end(), {1, 1, 1});
  std::vector<double> g(nb);
  for (int i = 0; i < nb; ++i)
    g[i] = (t[i + 1] + t[i + 2] + t[i + 3]) / 3.0;
  const torch::Tensor lin = bsplineCubic(u, inner, torch::tensor(g, dd));
  EXPECT_LT((lin - u).abs().max().item<double>(), 1e-12);
}

namespace {
// A network with the flat parameters theta (the layout of NeuralSplineCorrection::parameters()).
NeuralSplineNet networkWith(const NeuralSplineConfig& cfg, const std::vector<double>& theta) {
  NeuralSplineNet net(cfg);
  torch::NoGradGuard no_grad;
  std::size_t o = 0;
  for (auto& p : net->parameters()) {
    auto flat = p.view({-1});
    for (int64_t j = 0; j < flat.size(0); ++j)
      flat[j] = theta[o++];
  }
  return net;
}
} // namespace

TEST(NeuralCorrection, HostTableEqualsTheAutogradNetwork) {
  // The run's table (host spline) and the network's differentiable forward() agree, with the
  // spline's origin free and flat.
  for (bool flat_origin : {false, true}) {
    NeuralSplineConfig cfg;
    cfg.knots = 7;
    cfg.latent = 12;
    cfg.flat_origin = flat_origin;
    const auto theta = randomTheta(cfg, 0.8, 11);
    const NeuralSplineCorrection<double> c(cfg, theta);
    NeuralSplineNet net = networkWith(cfg, theta);
    const int n = 24;
    std::vector<double> K(3 * 12 * 12 + 1);
    const auto x = radialTableX(n);
    for (double a : {0.15, 0.6, 1.0}) {
      c.table(a, n, 100.0, K);
      torch::NoGradGuard no_grad;
      const auto ref = torch::exp(net->forward(torch::tensor(x, torch::kFloat64), a));
      double worst = 0.0;
      for (std::size_t j = 0; j < K.size(); ++j)
        worst = std::max(worst, std::abs(K[j] / ref[j].item<double>() - 1.0));
      EXPECT_LT(worst, 1e-12) << "a = " << a << ", flat_origin " << flat_origin;
    }
  }
}

TEST(NeuralCorrection, FlatOriginMakesLnKQuadraticAtSmallK) {
  // ln K(2x) / ln K(x) -> 4 as x -> 0 with the origin flat (K - 1 = O(k^2)), and -> 2 without
  // (the same random parameters, whose spline has a slope at 0).
  for (bool flat_origin : {false, true}) {
    NeuralSplineConfig cfg;
    cfg.knots = 6;
    cfg.latent = 8;
    cfg.flat_origin = flat_origin;
    NeuralSplineNet net = networkWith(cfg, randomTheta(cfg, 0.8, 17));
    torch::NoGradGuard no_grad;
    for (double a : {0.2, 1.0}) {
      const auto g = net->forward(torch::tensor({1e-4, 2e-4}, torch::kFloat64), a);
      const double ratio = g[1].item<double>() / g[0].item<double>();
      EXPECT_NEAR(ratio, flat_origin ? 4.0 : 2.0, 2e-2)
          << "a = " << a << ", flat_origin " << flat_origin
          << ", ln K(x) = " << g[0].item<double>();
    }
  }
  // The architecture records it and refuses a value that is not a boolean.
  NeuralSplineConfig cfg;
  cfg.flat_origin = true;
  EXPECT_TRUE(NeuralSplineConfig::fromJson(cfg.toJson(), "test").flat_origin);
  EXPECT_FALSE(NeuralSplineConfig::fromJson({{"type", "neural_spline"}}, "test").flat_origin);
  EXPECT_THROW(
      NeuralSplineConfig::fromJson({{"type", "neural_spline"}, {"flat_origin", 1}}, "test"),
      std::invalid_argument);
}

TEST(NeuralCorrection, IdentityAtStartPinnedBoundedAndParametersRoundTrip) {
  NeuralSplineConfig cfg;
  cfg.knots = 6;
  cfg.latent = 8;
  cfg.bound = 1.0;
  const NeuralSplineCorrection<double> fresh(cfg, {}, 3);
  std::vector<double> K(3 * 16 * 16 + 1);
  fresh.table(0.5, 32, 128.0, K);
  for (double k : K)
    ASSERT_DOUBLE_EQ(k, 1.0);
  EXPECT_EQ(fresh.parameters().size(), NeuralSplineCorrection<double>::parameterCount(cfg));
  // Large random parameters: K(0) = 1, and e^-B < K < e^B.
  const auto theta = randomTheta(cfg, 3.0, 5);
  const NeuralSplineCorrection<double> c(cfg, theta);
  EXPECT_EQ(c.parameters(), theta);
  for (double a : {0.1, 0.5, 1.0}) {
    c.table(a, 32, 128.0, K);
    EXPECT_NEAR(K[0], 1.0, 1e-14);
    double lo = 1e30, hi = 0;
    for (double k : K) {
      lo = std::min(lo, k);
      hi = std::max(hi, k);
    }
    EXPECT_GE(lo, std::exp(-1.0) * (1 - 1e-12));
    EXPECT_LE(hi, std::exp(1.0) * (1 + 1e-12));
    EXPECT_GT(hi - lo, 1e-3) << "the random network should not be flat";
  }
  EXPECT_THROW(NeuralSplineCorrection<double>(cfg, std::vector<double>(3, 0.0)),
               std::invalid_argument);
  EXPECT_THROW(NeuralSplineConfig::fromJson({{"type", "neural_spline"}, {"knots", 0}}, "test"),
               std::invalid_argument);
}

TEST(NeuralCorrection, ForceVjpAgainstFiniteDifferences) {
  constexpr double kBox = 64.0;
  auto lattice = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 8, kBox);
  auto mesh = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 16, kBox);
  NeuralSplineConfig nc;
  nc.knots = 5;
  nc.latent = 6;
  DiffConfig cfg;
  cfg.lattice = lattice;
  cfg.mesh = mesh;
  cfg.potential_correction = [nc](const std::vector<double>& t) {
    return std::make_shared<const NeuralSplineCorrection<double>>(nc, t);
  };
  DiffParams params;
  params.cosmology = test::planck();
  params.correction = randomTheta(nc, 0.4, 7);
  // Particles: the same set on every rank count (rank 0 makes them, migration distributes).
  Particles parts = test::randomParticles(test::worldRank() == 0 ? 600 : 0, kBox - 2.0, 9);
  Migrator migrator(mesh);
  migrator(parts);
  const double total = 600, a = 0.6;
  Kokkos::View<double* [3]> f("f", parts.capacity()), z("z", parts.capacity());
  {
    auto h = Kokkos::create_mirror_view(z);
    auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
    for (std::size_t i = 0; i < parts.size(); ++i)
      for (int c = 0; c < 3; ++c)
        h(i, c) = std::sin(1.7 * double(id(i)) + c);
    Kokkos::deep_copy(z, h);
  }
  auto value = [&](const DiffParams& p) {
    Trajectory traj(cfg, p, total);
    traj.force(parts, f, a);
    double v = 0.0;
    auto zz = z, ff = f;
    Kokkos::parallel_reduce(
        "test::dot", parts.size(),
        KOKKOS_LAMBDA(std::size_t i, double& acc) {
          acc += zz(i, 0) * ff(i, 0) + zz(i, 1) * ff(i, 1) + zz(i, 2) * ff(i, 2);
        },
        v);
    return allSum(v);
  };
  Trajectory traj(cfg, params, total);
  Kokkos::View<double* [3]> xbar("xbar", parts.capacity());
  ParameterGradient g = ParameterGradient::zeros(params);
  traj.forceVJP(parts, z, 1.0, xbar, f, g, a);
  g.allreduce(mesh->comm());
  // One parameter of every layer: l1.weight[0], l2.weight[3], knots.bias[1], weights.bias[2].
  const std::size_t L = nc.latent, m = nc.knots;
  const std::size_t idx[] = {0, 2 * L + 3, 2 * L + L * L + L + L * m + 1,
                             2 * L + L * L + L + L * m + m + L * (m + 3) + 2};
  expectGradients(params, g.correction, {idx, idx + 4}, value, 1e-5, 1e-8, "neural force");
}

// The whole training loss through the adjoint with the neural correction (3 steps, 2 snapshots,
// positions and power), against finite differences in parameters of every layer.
TEST(NeuralCorrection, TrajectoryLossAgainstFiniteDifferences) {
  constexpr double kBox = 64.0;
  auto lattice = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 8, kBox);
  auto mesh = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 16, kBox);
  NeuralSplineConfig nc;
  nc.knots = 4;
  nc.latent = 5;
  DiffConfig cfg;
  cfg.lattice = lattice;
  cfg.mesh = mesh;
  cfg.a_start = 0.1;
  cfg.steps = 3;
  cfg.lattice_offset = 0.5 * mesh->cell();
  cfg.potential_correction = [nc](const std::vector<double>& t) {
    return std::make_shared<const NeuralSplineCorrection<double>>(nc, t);
  };
  DiffParams params;
  params.cosmology = test::planck();
  params.correction = randomTheta(nc, 0.4, 13);
  TrajectorySample sample;
  {
    Field<double> w(lattice, "test::noise");
    FFT<double> fft(lattice);
    NoiseOptions no;
    no.seed = 5;
    whiteNoiseRealSpace(w, fft, no);
    DiffConfig plain = cfg;
    plain.potential_correction = nullptr;
    DiffParams pp = params;
    pp.correction.clear();
    sample.initial = LptModel(plain, pp).forward(w);
  }
  TrajectoryLossOptions opt;
  opt.power_weight = 0.5;
  const TrajectoryLoss loss(cfg, opt);
  sample.targets.resize(2);
  sample.targets[0].boundary = 2;
  sample.targets[1].boundary = 3;
  {
    // Targets: the corrected model's states at other parameters (a reachable stand-in).
    DiffParams other = params;
    for (double& t : other.correction)
      t *= 0.5;
    const auto st = loss.states(sample, other);
    for (int t = 0; t < 2; ++t)
      sample.targets[t].particles = copyParticles(st[t]);
  }
  loss.prepare(sample);
  ParameterGradient g = ParameterGradient::zeros(params);
  loss(sample, params, &g);
  const std::size_t L = nc.latent, m = nc.knots;
  const std::size_t idx[] = {1, 2 * L + 7, 2 * L + L * L + L + L * m + 2,
                             2 * L + L * L + L + L * m + m + L * (m + 3) + 1};
  expectGradients(
      params, g.correction, {idx, idx + 4},
      [&](const DiffParams& p) { return loss(sample, p, nullptr).total; }, 1e-6, 1e-10,
      "neural trajectory loss");
}
