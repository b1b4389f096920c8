// Lagrangian Deep Learning painter (pm/baryons/ldl): the gradient of <Fbar, F> in every parameter
// against centred finite differences, the result independent of the number of ranks and of how
// the particles are spread over them, and the filter against its formula.
#include "helpers.hpp"
#include "pm/analysis/power_spectrum.hpp"
#include "pm/baryons/ldl.hpp"
#include "pm/baryons/ldl_fit.hpp"
#include "pm/baryons/ldl_halo.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>

using namespace caustic;
using namespace caustic::test;

namespace {

constexpr double kL = 32.0;
constexpr int kMesh = 16, kSide = 16;

// A perturbed lattice (clumped: a sum of three Gaussian blobs' displacements), every rank alike.
Particles clumpyLattice() {
  Particles p(kSide * kSide * kSide);
  auto x = Kokkos::create_mirror_view(p.x);
  auto id = Kokkos::create_mirror_view(p.id);
  const double c[3][3] = {{8, 8, 8}, {20, 24, 12}, {4, 28, 26}};
  for (int i = 0; i < kSide; ++i)
    for (int j = 0; j < kSide; ++j)
      for (int k = 0; k < kSide; ++k) {
        const std::size_t q = (static_cast<std::size_t>(i) * kSide + j) * kSide + k;
        double pos[3] = {(i + 0.37) * kL / kSide, (j + 0.61) * kL / kSide, (k + 0.23) * kL / kSide};
        double d[3] = {0, 0, 0};
        for (const auto& cc : c) {
          double r2 = 0, dv[3];
          for (int a = 0; a < 3; ++a) {
            dv[a] = periodicDiff(pos[a], cc[a], kL);
            r2 += dv[a] * dv[a];
          }
          for (int a = 0; a < 3; ++a)
            d[a] -= 0.8 * dv[a] * std::exp(-r2 / 18.0);
        }
        for (int a = 0; a < 3; ++a)
          x(q, a) = periodicWrap(pos[a] + d[a], kL);
        id(q) = q;
      }
  Kokkos::deep_copy(p.x, x);
  Kokkos::deep_copy(p.id, id);
  return p;
}

// A fixed cotangent field by global index, and <fbar, F>.
void cotangent(Field<double>& fbar) {
  auto f = fbar.real();
  const int n = kMesh;
  fbar.decomp().forEachPoint("test::ldl::cotangent", KOKKOS_LAMBDA(const MeshPoint& p) {
    const double v = std::sin(0.7 * p.x + 1.3 * p.y + 0.4 * p.z + 0.1) + 0.3 * std::cos(2.1 * p.x * p.z / n);
    f(p.index) = v;
  });
}
double dot(const Field<double>& a, const Field<double>& b) {
  auto u = a.real(), v = b.real();
  const int n = kMesh;
  double s = 0, all = 0;
  a.decomp().reduceRows(
      "test::ldl::dot",
      KOKKOS_LAMBDA(const MeshRow& r, double& acc) {
        for (int z = 0; z < n; ++z)
          acc += u(r.index + z) * v(r.index + z);
      },
      s);
  MPI_Allreduce(&s, &all, 1, MPI_DOUBLE, MPI_SUM, a.decomp().comm().get());
  return all;
}

// The centred finite difference of f(x) in x[p], with a step of 1e-5 relative (absolute below 1).
template <class F> double centredDifference(const std::vector<double>& x, std::size_t p, F&& f) {
  const double h = 1e-5 * std::max(1.0, std::abs(x[p]));
  std::vector<double> up = x, dn = x;
  up[p] += h;
  dn[p] -= h;
  return (f(up) - f(dn)) / (2 * h);
}

const std::vector<double> kParams = {3.0,  0.8, 0.3, 2.0, 0.5,  // layer 1: alpha gamma k_l k_h n
                                     -2.0, 1.2, 0.2, 3.0, -0.5, // layer 2
                                     1.3,  2.0, -0.1};          // mu b1 b0 (b0 < 0: ReLU smooth)

} // namespace

TEST(Ldl, FilterFormula) {
  EXPECT_EQ(LdlPainter::filter(0.0, 0.3, 2.0, 0.5), 0.0);
  const double k = 1.7;
  EXPECT_NEAR(LdlPainter::filter(k, 0.3, 2.0, 0.5),
              std::exp(-k * k / 4.0) * std::exp(-0.09 / (k * k)) * std::pow(k, 0.5), 1e-15);
}

TEST(Ldl, GradientMatchesFiniteDifferences) {
  auto decomp = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL);
  LdlPainter ldl(decomp, 2);
  Particles all = clumpyLattice();
  Particles parts = share(all, worldRank(), worldSize()); // not on their slabs: LDL takes any
  Field<double> out(decomp, "test::ldl::out"), fbar(decomp, "test::ldl::fbar");
  cotangent(fbar);
  ldl.forward(parts.x, parts.size(), kParams, out);
  const double j0 = dot(fbar, out);
  EXPECT_TRUE(std::isfinite(j0));
  const std::vector<double> g = ldl.gradient(fbar);
  ASSERT_EQ(g.size(), kParams.size());
  // The displacements are a sizeable fraction of a cell (the test would not see them otherwise).
  {
    auto x0 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
    auto x1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ldl.displaced());
    double dmax = 0;
    for (std::size_t i = 0; i < parts.size(); ++i)
      for (int a = 0; a < 3; ++a)
        dmax = std::max(dmax, std::abs(periodicDiff(x1(i, a), x0(i, a), kL)));
    MPI_Allreduce(MPI_IN_PLACE, &dmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    EXPECT_GT(dmax, 0.1 * kL / kMesh);
    EXPECT_LT(dmax, 2.0 * kL / kMesh);
  }
  for (std::size_t p = 0; p < kParams.size(); ++p) {
    const double fd = centredDifference(kParams, p, [&](const std::vector<double>& x) {
      ldl.forward(parts.x, parts.size(), x, out);
      return dot(fbar, out);
    });
    SCOPED_TRACE("parameter " + std::to_string(p));
    EXPECT_NEAR(g[p], fd, 2e-5 * std::max(1.0, std::abs(fd)));
  }
}

// The same <Fbar, F> and gradient on one rank (MPI_COMM_SELF) with all particles.
TEST(Ldl, RankIndependent) {
  Particles all = clumpyLattice();
  auto self = std::make_shared<const SlabDecomposition>(MPI_COMM_SELF, kMesh, kL);
  LdlPainter serial(self, 2);
  Field<double> so(self, "test::ldl::so"), sb(self, "test::ldl::sb");
  cotangent(sb);
  serial.forward(all.x, all.size(), kParams, so);
  const double js = dot(sb, so);
  const std::vector<double> gs = serial.gradient(sb);

  auto decomp = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL);
  LdlPainter ldl(decomp, 2);
  Particles parts = share(all, worldRank(), worldSize());
  Field<double> out(decomp, "test::ldl::out"), fbar(decomp, "test::ldl::fbar");
  cotangent(fbar);
  ldl.forward(parts.x, parts.size(), kParams, out);
  EXPECT_NEAR(dot(fbar, out), js, 1e-12 * std::abs(js));
  const std::vector<double> g = ldl.gradient(fbar);
  for (std::size_t p = 0; p < g.size(); ++p)
    EXPECT_NEAR(g[p], gs[p], 1e-10 * std::max(1.0, std::abs(gs[p]))) << "parameter " << p;
}

TEST(Ldl, RejectsBadParameters) {
  auto decomp = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL);
  LdlPainter ldl(decomp, 1);
  Particles all = clumpyLattice();
  Field<double> out(decomp, "test::ldl::out");
  EXPECT_THROW(ldl.forward(all.x, all.size(), {0.1, 1, 0.1, 1, 0}, out), std::invalid_argument);
  EXPECT_THROW(ldl.forward(all.x, all.size(), {0.1, 1, -0.1, 1, 0, 1, 1, 0}, out),
               std::invalid_argument);
}

// The pair of the fitting tests: the clumpy particles dealt over the ranks and the target a
// one-layer painter makes of them with parameters `truth`.
struct FitCase {
  std::shared_ptr<const SlabDecomposition> decomp =
      std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL);
  LdlPainter ldl{decomp, 1};
  Particles parts = share(clumpyLattice(), worldRank(), worldSize());
  Field<double> target{decomp, "test::ldl::target"};
  std::vector<LdlPair> pairs;
  explicit FitCase(const std::vector<double>& truth) {
    ldl.forward(parts.x, parts.size(), truth, target);
    pairs = {{parts.x, parts.size(), &target, {}}};
  }
};

// The loss's gradient at `start` against centred finite differences in the parameters `which`.
void expectLossGradient(FitCase& c, const std::vector<double>& start, const LdlLossOptions& lo,
                        const std::vector<std::size_t>& which) {
  std::vector<double> g;
  ldlLoss(c.ldl, c.pairs, start, lo, &g);
  for (std::size_t p : which) {
    const double fd = centredDifference(start, p, [&](const std::vector<double>& x) {
      return ldlLoss(c.ldl, c.pairs, x, lo, nullptr);
    });
    EXPECT_NEAR(g[p], fd, 1e-4 * std::max(1e-3, std::abs(fd)))
        << "parameter " << p << ", power weight " << lo.power_weight << ", k_max " << lo.power_kmax;
  }
}

// The fitting loss: its gradient against finite differences, and a fit that recovers a target
// painted by known parameters from a perturbed start.
TEST(Ldl, FitRecoversKnownParameters) {
  FitCase c({2.0, 0.9, 0.3, 2.5, 0.3, 1.4, 1.5, -0.05});
  LdlPainter& ldl = c.ldl;
  const auto& pairs = c.pairs;
  const std::vector<double> start = {1.0, 0.7, 0.4, 2.0, 0.0, 1.0, 1.2, 0.0};
  const double j0 = ldlLoss(ldl, pairs, start, LdlLossOptions{}, nullptr);
  EXPECT_GT(j0, 1e-3);
  expectLossGradient(c, start, LdlLossOptions{}, {0, 1, 3, 5});
  LdlFitOptions opt;
  opt.iterations = 150;
  opt.tolerance = 0;
  const LdlFitResult r = fitLdl(ldl, pairs, start, opt);
  ASSERT_FALSE(r.loss.empty());
  EXPECT_LT(r.loss.back(), 1e-4 * j0) << "stopped: " << r.stop << " after " << r.iterations;
  for (std::size_t i = 1; i < r.loss.size(); ++i)
    EXPECT_LE(r.loss[i], r.loss[i - 1]); // monotone (Armijo)
}

// The loss's power-spectrum term: its value against binPower's spectra of the painted and the
// target field, and the gradient of the whole loss against finite differences, over all shells
// and up to a k_max.
TEST(Ldl, PowerTermOfTheLoss) {
  FitCase c({2.0, 0.9, 0.3, 2.5, 0.3, 1.4, 1.5, -0.05});
  LdlPainter& ldl = c.ldl;
  const auto& pairs = c.pairs;
  const auto& decomp = c.decomp;
  const std::vector<double> start = {1.0, 0.7, 0.4, 2.0, 0.0, 1.0, 1.2, 0.0};
  Field<double> painted(decomp, "test::ldl::painted");

  LdlLossOptions field, both;
  both.power_weight = 0.7;
  const double jf = ldlLoss(ldl, pairs, start, field, nullptr);
  const double jb = ldlLoss(ldl, pairs, start, both, nullptr);
  ldl.forward(c.parts.x, c.parts.size(), start, painted);
  FFT<double> fft(decomp);
  fft.forward(painted);
  fft.forward(c.target);
  const PowerSpectrum pf = binPower(painted), pt = binPower(c.target);
  ASSERT_EQ(pf.k.size(), pt.k.size());
  ASSERT_EQ(pf.k.size(), static_cast<std::size_t>(kMesh / 2)); // shells 1 .. N/2
  double sum = 0;
  for (std::size_t b = 0; b < pf.k.size(); ++b)
    sum += (pf.power[b] / pt.power[b] - 1) * (pf.power[b] / pt.power[b] - 1);
  const double expected = both.power_weight * sum / pf.k.size();
  EXPECT_GT(expected, 1e-3);
  EXPECT_NEAR(jb - jf, expected, 1e-10 * expected);

  for (double kmax : {0.0, 4.2 * decomp->kFundamental()}) {
    LdlLossOptions lo = both;
    lo.power_kmax = kmax;
    lo.power_weight = 3.0;
    expectLossGradient(c, start, lo, {0, 1, 2, 3, 4, 5, 6, 7});
  }
  EXPECT_THROW(ldlLoss(ldl, pairs, start, LdlLossOptions{1.0, -1.0, 0.0}, nullptr),
               std::invalid_argument);
}

// A displacement-only fit (the output layer held at the identity, a matter painter): the output
// parameters stay as they started, the loss still falls, and the fit recovers the displacement
// of a target painted with an identity output.
TEST(Ldl, DisplacementOnlyFitHoldsTheOutputLayer) {
  FitCase c({2.0, 0.9, 0.3, 2.5, 0.3, 1.0, 1.0, 0.0});
  const std::vector<double> start = {1.0, 0.7, 0.4, 2.0, 0.0, 1.0, 1.0, 0.0};
  LdlFitOptions opt;
  opt.iterations = 150;
  opt.tolerance = 0;
  opt.fit_output = false;
  opt.loss.power_weight = 1.0;
  const LdlFitResult r = fitLdl(c.ldl, c.pairs, start, opt);
  for (std::size_t i = 5; i < 8; ++i)
    EXPECT_EQ(r.params[i], start[i]) << "output parameter " << i;
  EXPECT_LT(r.loss.back(), 1e-4 * r.loss.front())
      << "stopped: " << r.stop << " after " << r.iterations;
}

// Held parameters (LdlFitOptions::hold, `--hold-painter`): they keep their start exactly while
// the others are fitted; a target painted by known layer parameters with another output layer is
// reached by the output layer alone when the layer starts at the truth, and a wrong-sized hold is
// refused.
TEST(Ldl, HeldParametersKeepTheirStart) {
  const std::vector<double> truth = {2.0, 0.9, 0.3, 2.5, 0.3, 1.4, 1.5, -0.05};
  FitCase c(truth);
  std::vector<double> start = truth;
  start[5] = 1.0; // the output layer off the truth: mu, b_1, b_0
  start[6] = 1.2;
  start[7] = 0.0;
  LdlFitOptions opt;
  opt.iterations = 100;
  opt.tolerance = 0;
  opt.hold = {true, true, true, true, true, false, false, false};
  const LdlFitResult r = fitLdl(c.ldl, c.pairs, start, opt);
  for (std::size_t i = 0; i < 5; ++i)
    EXPECT_EQ(r.params[i], start[i]) << "held parameter " << i;
  EXPECT_LT(r.loss.back(), 1e-4 * r.loss.front()) << "stopped: " << r.stop;
  for (std::size_t i = 5; i < 8; ++i)
    EXPECT_NEAR(r.params[i], truth[i], 1e-2) << "fitted parameter " << i;
  opt.hold.pop_back();
  EXPECT_THROW(fitLdl(c.ldl, c.pairs, start, opt), std::invalid_argument);
}

// Parameters conditioned on a per-pair value (for a painter that follows BCM parameters): the
// conditioned loss's gradient in the base parameters and in the slopes against finite
// differences; and a fit on two pairs whose targets were painted with different parameters
// reaches them with slopes, which one set of parameters cannot.
struct ConditionedCase {
  std::shared_ptr<const SlabDecomposition> decomp =
      std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL);
  LdlPainter ldl{decomp, 1};
  Particles parts = share(clumpyLattice(), worldRank(), worldSize());
  Field<double> low{decomp, "test::ldl::low"}, high{decomp, "test::ldl::high"};
  std::vector<LdlPair> pairs;
  // Targets at conditions -1 and +1: base {2.0, 0.9, 0.3, 2.5, 0.3, 1.0, 1.0, 0.0} with alpha
  // and ln k_l moving by -/+0.6 and -/+0.3.
  const std::vector<double> base = {2.0, 0.9, 0.3, 2.5, 0.3, 1.0, 1.0, 0.0};
  const std::vector<std::vector<double>> slopes = {{0.6, 0.0, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0}};
  ConditionedCase() {
    ldl.forward(parts.x, parts.size(), ldlParametersAt(base, slopes, {-1.0}, 1), low);
    ldl.forward(parts.x, parts.size(), ldlParametersAt(base, slopes, {1.0}, 1), high);
    pairs = {{parts.x, parts.size(), &low, {-1.0}}, {parts.x, parts.size(), &high, {1.0}}};
  }
};

TEST(Ldl, ConditionedParametersAndTheirGradient) {
  ConditionedCase c;
  // ldlParametersAt: k_l moves in its logarithm, alpha linearly.
  const auto p = ldlParametersAt(c.base, c.slopes, {-1.0}, 1);
  EXPECT_NEAR(p[0], 1.4, 1e-14);
  EXPECT_NEAR(p[2], 0.3 * std::exp(-0.3), 1e-14);
  EXPECT_EQ(p[1], c.base[1]);
  EXPECT_THROW(ldlParametersAt(c.base, c.slopes, {}, 1), std::invalid_argument);
  EXPECT_THROW(ldlParametersAt(c.base, {{0.1, 0.2}}, {1.0}, 1), std::invalid_argument);
  std::vector<LdlPair> mixed = c.pairs;
  mixed[1].condition = {};
  EXPECT_THROW(ldlConditionCount(mixed), std::invalid_argument);

  const std::vector<double> start = {1.0, 0.7, 0.4, 2.0, 0.1, 1.0, 1.2, 0.05};
  const std::vector<std::vector<double>> s0 = {{0.2, -0.1, 0.1, 0.05, 0.1, 0.0, 0.1, 0.02}};
  LdlLossOptions lo;
  lo.power_weight = 0.5;
  std::vector<double> gb;
  std::vector<std::vector<double>> gs;
  ldlConditionedLoss(c.ldl, c.pairs, start, s0, lo, &gb, &gs);
  ASSERT_EQ(gb.size(), start.size());
  ASSERT_EQ(gs.size(), 1u);
  auto loss = [&](const std::vector<double>& b, const std::vector<std::vector<double>>& s) {
    return ldlConditionedLoss(c.ldl, c.pairs, b, s, lo, nullptr, nullptr);
  };
  for (std::size_t i = 0; i < start.size(); ++i) {
    const double h = 1e-5 * std::max(1.0, std::abs(start[i]));
    auto up = start, dn = start;
    up[i] += h;
    dn[i] -= h;
    const double fd = (loss(up, s0) - loss(dn, s0)) / (2 * h);
    EXPECT_NEAR(gb[i], fd, 1e-4 * std::max(1e-3, std::abs(fd))) << "base parameter " << i;
    auto su = s0, sd = s0;
    su[0][i] += 1e-5;
    sd[0][i] -= 1e-5;
    const double fs = (loss(start, su) - loss(start, sd)) / 2e-5;
    EXPECT_NEAR(gs[0][i], fs, 1e-4 * std::max(1e-3, std::abs(fs))) << "slope " << i;
  }
  // At zero slopes the conditioned loss is the plain one.
  const std::vector<std::vector<double>> zero = {std::vector<double>(start.size(), 0.0)};
  EXPECT_NEAR(loss(start, zero), ldlLoss(c.ldl, c.pairs, start, lo, nullptr),
              1e-13 * loss(start, zero));
}

TEST(Ldl, ConditionedFitFollowsTheCondition) {
  ConditionedCase c;
  const std::vector<double> start = {1.0, 0.7, 0.4, 2.0, 0.0, 1.0, 1.0, 0.0};
  const double j0 =
      ldlConditionedLoss(c.ldl, c.pairs, start, {std::vector<double>(start.size(), 0.0)},
                         LdlLossOptions{}, nullptr, nullptr);
  LdlFitOptions opt;
  opt.iterations = 200;
  opt.tolerance = 0;
  opt.fit_output = false;
  opt.progress = [&](int, double j, const std::vector<double>&) { return j > 1e-4 * j0; };
  const LdlFitResult r = fitLdl(c.ldl, c.pairs, start, opt);
  ASSERT_EQ(r.slopes.size(), 1u);
  for (std::size_t i = 5; i < 8; ++i) // held, slopes included
    EXPECT_EQ(r.slopes[0][i], 0.0) << "output slope " << i;
  EXPECT_EQ(r.loss.front(), j0);
  EXPECT_LT(r.loss.back(), 1e-4 * j0) << "stopped: " << r.stop << " after " << r.iterations;
  // One set of parameters for both targets (no conditions) stays far above: its fit runs until
  // it stalls (or would pass below that level, which fails the test).
  std::vector<LdlPair> plain = c.pairs;
  for (auto& pr : plain)
    pr.condition.clear();
  opt.tolerance = 1e-6;
  opt.progress = [&](int, double j, const std::vector<double>&) { return j > 100 * r.loss.back(); };
  const LdlFitResult u = fitLdl(c.ldl, plain, start, opt);
  EXPECT_TRUE(u.slopes.empty());
  EXPECT_GT(u.loss.back(), 100 * r.loss.back()) << "stopped: " << u.stop;
}

// A product painter (LdlProduct: the electron pressure as n_e times T): its field is the scale
// times its factors' fields painted by separate painters; the gradient of <Fbar, F> and of the
// fitting loss in every parameter against centred finite differences; the parameter layout; and
// a joint fit that reaches a target painted by a known product from a perturbed start.
TEST(Ldl, ProductOfPaintersAndItsGradient) {
  auto decomp = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL);
  Particles parts = share(clumpyLattice(), worldRank(), worldSize());
  const std::vector<double> p1 = {2.0, 0.9, 0.3, 2.5, 0.3, 1.4, 1.5, -0.05};
  std::vector<double> params = p1;
  params.insert(params.end(), kParams.begin(), kParams.end());
  LdlProduct prod(decomp, {1, 2}, 0.7);
  ASSERT_EQ(prod.parameterCount(), params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    const bool in1 = i < 8;
    const std::size_t j = in1 ? i : i - 8;
    EXPECT_EQ(prod.logParameter(i), ldlLogParameter(j, in1 ? 1 : 2)) << i;
    EXPECT_EQ(prod.outputParameter(i), ldlOutputParameter(j, in1 ? 1 : 2)) << i;
  }
  Field<double> out(decomp, "test::ldl::out"), fbar(decomp, "test::ldl::fbar"),
      f1(decomp, "test::ldl::f1"), f2(decomp, "test::ldl::f2");
  LdlPainter a(decomp, 1), b(decomp, 2);
  // The product's factors share one particle exchange; a painter on another mesh cannot.
  auto other = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh / 2, kL);
  EXPECT_THROW(LdlPainter(other, 1, &a), std::invalid_argument);
  a.forward(parts.x, parts.size(), p1, f1);
  b.forward(parts.x, parts.size(), kParams, f2);
  prod.forward(parts.x, parts.size(), params, out);
  {
    auto o = out.real(), u = f1.real(), v = f2.real();
    double sums[2] = {0, 0}; // sum (F - 0.7 F_1 F_2)^2, sum F^2
    decomp->reducePoints(
        "test::ldl::product_check",
        KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
          const double d = o(q.index) - 0.7 * u(q.index) * v(q.index);
          acc += d * d;
        },
        sums[0]);
    decomp->reducePoints(
        "test::ldl::product_norm",
        KOKKOS_LAMBDA(const MeshPoint& q, double& acc) { acc += o(q.index) * o(q.index); },
        sums[1]);
    MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    const double dev = std::sqrt(sums[0]), big = std::sqrt(sums[1]);
    EXPECT_GT(big, 0.1);
    EXPECT_LE(dev, 1e-13 * big);
  }
  cotangent(fbar);
  prod.forward(parts.x, parts.size(), params, out);
  const std::vector<double> g = prod.gradient(fbar);
  ASSERT_EQ(g.size(), params.size());
  for (std::size_t p = 0; p < params.size(); ++p) {
    const double fd = centredDifference(params, p, [&](const std::vector<double>& x) {
      prod.forward(parts.x, parts.size(), x, out);
      return dot(fbar, out);
    });
    EXPECT_NEAR(g[p], fd, 2e-5 * std::max(1.0, std::abs(fd))) << "parameter " << p;
  }
  EXPECT_THROW(LdlProduct(decomp, {1}, 1.0), std::invalid_argument);
  EXPECT_THROW(prod.forward(parts.x, parts.size(), p1, out), std::invalid_argument);

  // The fitting loss (with its power term) through the product, and a joint fit.
  Field<double> target(decomp, "test::ldl::product_target");
  const std::vector<double> truth = {2.0, 0.9, 0.3, 2.5, 0.3, 1.4, 1.5, -0.05,
                                     1.0, 0.6, 0.5, 3.0, 0.0, 0.8, 1.2, -0.02};
  LdlProduct two(decomp, {1, 1}, 1.3);
  two.forward(parts.x, parts.size(), truth, target);
  const std::vector<LdlPair> pairs = {{parts.x, parts.size(), &target, {}}};
  std::vector<double> start = truth;
  for (std::size_t i = 0; i < start.size(); ++i)
    start[i] *= 1.0 + 0.15 * std::sin(1.0 + 2.0 * i); // within 15%, k_l and k_h stay positive
  LdlLossOptions lo;
  lo.power_weight = 2.0;
  std::vector<double> gl;
  const double j0 = ldlLoss(two, pairs, start, lo, &gl);
  EXPECT_GT(j0, 1e-3);
  for (std::size_t p = 0; p < start.size(); ++p) {
    const double fd = centredDifference(
        start, p, [&](const std::vector<double>& x) { return ldlLoss(two, pairs, x, lo, nullptr); });
    EXPECT_NEAR(gl[p], fd, 1e-4 * std::max(1e-3, std::abs(fd))) << "loss, parameter " << p;
  }
  LdlFitOptions opt;
  opt.iterations = 150;
  opt.tolerance = 0;
  opt.loss = lo;
  const LdlFitResult r = fitLdl(two, pairs, start, opt);
  EXPECT_LT(r.loss.back(), 1e-3 * j0) << "stopped: " << r.stop << " after " << r.iterations;
}

// ---- The halo layer (pm/baryons/ldl_halo.hpp) and the profile term of the loss ----

namespace {

// Four haloes on the 32 Mpc/h box: across the periodic boundary in x and y, overlapping each
// other, spanning slab edges; masses below, inside and above the mass nodes. Radii given directly
// (the layer reads them as R).
LdlHaloSet testHaloes() {
  LdlHaloSet h;
  h.pos = {31.2, 0.7, 12.0, 15.9, 16.3, 20.1, 18.0, 14.5, 22.0, 6.0, 27.5, 3.3};
  h.log10_mass = {12.2, 13.4, 14.9, 12.8};
  h.radius = {2.1, 3.3, 4.4, 1.7};
  return h;
}
const LdlHaloLayout kLayout{{12.5, 13.0, 14.0}, {0.0, 0.4, 1.0, 2.2}};

// Hat i of increasing nodes at x, clamped outside (an independent form: the distance to the
// neighbours).
double hatAt(const std::vector<double>& nodes, std::size_t i, double x) {
  x = std::min(std::max(x, nodes.front()), nodes.back());
  if (x == nodes[i])
    return 1.0;
  if (i > 0 && x > nodes[i - 1] && x < nodes[i])
    return (x - nodes[i - 1]) / (nodes[i] - nodes[i - 1]);
  if (i + 1 < nodes.size() && x > nodes[i] && x < nodes[i + 1])
    return (nodes[i + 1] - x) / (nodes[i + 1] - nodes[i]);
  return 0.0;
}

// E(x) at global mesh point (ix, iy, iz): the layer's sum over haloes by minimum image.
double exponentAt(const LdlHaloSet& h, const std::vector<double>& theta, int ix, int iy, int iz) {
  const double cell = kL / kMesh;
  const std::size_t nj = kLayout.radius_nodes.size() - 1;
  double e = 0;
  for (std::size_t q = 0; q < h.size(); ++q) {
    double r2 = 0;
    const int idx[3] = {ix, iy, iz};
    for (int a = 0; a < 3; ++a) {
      const double d = periodicDiff(idx[a] * cell, h.pos[3 * q + a], kL);
      r2 += d * d;
    }
    const double r = std::sqrt(r2) / h.radius[q];
    for (std::size_t i = 0; i < kLayout.mass_nodes.size(); ++i)
      for (std::size_t j = 0; j < nj; ++j)
        if (r < kLayout.radius_nodes.back())
          e += theta[i * nj + j] * hatAt(kLayout.mass_nodes, i, h.log10_mass[q]) *
               hatAt(kLayout.radius_nodes, j, r);
  }
  return e;
}

std::vector<double> haloTheta() {
  std::vector<double> t(kLayout.parameterCount());
  for (std::size_t i = 0; i < t.size(); ++i)
    t[i] = 0.6 * std::sin(1.7 * i + 0.3);
  return t;
}

} // namespace

// F_out = F exp(E) point by point against E summed directly over the haloes (at 1, 2 and 3 ranks:
// haloes across the periodic boundary and slab edges), and theta = 0 the identity.
TEST(LdlHalo, LayerMatchesDirectSum) {
  auto decomp = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL);
  Particles parts = share(clumpyLattice(), worldRank(), worldSize());
  const std::vector<double> p1 = {2.0, 0.9, 0.3, 2.5, 0.3, 1.4, 1.5, 0.05};
  LdlPainter plain(decomp, 1);
  Field<double> f(decomp, "test::ldl_halo::f"), out(decomp, "test::ldl_halo::out");
  plain.forward(parts.x, parts.size(), p1, f);
  LdlHaloModel model(decomp, std::make_unique<LdlPainter>(decomp, 1), kLayout);
  ASSERT_EQ(model.parameterCount(), p1.size() + 9);
  const LdlHaloSet h = testHaloes();
  std::vector<double> params = p1;
  params.resize(model.parameterCount(), 0.0);
  EXPECT_THROW(model.forward(parts.x, parts.size(), params, out),
               std::invalid_argument); // no halos
  model.setHalos(&h);
  model.forward(parts.x, parts.size(), params, out);
  auto fh = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f.real());
  auto oh = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out.real());
  const int x0 = decomp->xStart(), nx = decomp->localNx();
  for (int lx = 0; lx < nx; ++lx)
    for (int y = 0; y < kMesh; ++y)
      for (int z = 0; z < kMesh; ++z) {
        const std::size_t i = Field<double>::realIndex(lx, y, z, kMesh);
        ASSERT_EQ(oh(i), fh(i)) << "theta = 0 is not the identity at " << x0 + lx << " " << y;
      }
  const std::vector<double> theta = haloTheta();
  std::copy(theta.begin(), theta.end(), params.begin() + p1.size());
  model.forward(parts.x, parts.size(), params, out);
  Kokkos::deep_copy(oh, out.real());
  int touched = 0;
  for (int lx = 0; lx < nx; ++lx)
    for (int y = 0; y < kMesh; ++y)
      for (int z = 0; z < kMesh; ++z) {
        const std::size_t i = Field<double>::realIndex(lx, y, z, kMesh);
        const double e = exponentAt(h, theta, x0 + lx, y, z);
        touched += e != 0 ? 1 : 0;
        ASSERT_NEAR(oh(i), fh(i) * std::exp(e), 1e-12 * std::abs(fh(i) * std::exp(e)) + 1e-300)
            << "point " << x0 + lx << " " << y << " " << z;
      }
  MPI_Allreduce(MPI_IN_PLACE, &touched, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_GT(touched, kMesh * kMesh * kMesh / 10); // the haloes reach a good part of the box
  // A layer reaching half the box is refused.
  LdlHaloSet big = h;
  big.radius[2] = 8.0;
  model.setHalos(&big);
  EXPECT_THROW(model.forward(parts.x, parts.size(), params, out), std::invalid_argument);
}

// d<Fbar, F exp(E)>/d(painter's parameters, theta) against centred finite differences.
TEST(LdlHalo, GradientMatchesFiniteDifferences) {
  auto decomp = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL);
  Particles parts = share(clumpyLattice(), worldRank(), worldSize());
  LdlHaloModel model(decomp, std::make_unique<LdlPainter>(decomp, 2), kLayout);
  const LdlHaloSet h = testHaloes();
  model.setHalos(&h);
  std::vector<double> params = kParams;
  const std::vector<double> theta = haloTheta();
  params.insert(params.end(), theta.begin(), theta.end());
  for (std::size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(model.logParameter(i), i < kParams.size() && ldlLogParameter(i, 2)) << i;
    EXPECT_EQ(model.outputParameter(i), i < kParams.size() && ldlOutputParameter(i, 2)) << i;
  }
  Field<double> out(decomp, "test::ldl_halo::out"), fbar(decomp, "test::ldl_halo::fbar");
  cotangent(fbar);
  model.forward(parts.x, parts.size(), params, out);
  const std::vector<double> g = model.gradient(fbar);
  ASSERT_EQ(g.size(), params.size());
  double gmax = 0;
  for (std::size_t p = kParams.size(); p < params.size(); ++p)
    gmax = std::max(gmax, std::abs(g[p]));
  EXPECT_GT(gmax, 1e-2); // the haloes' terms matter
  for (std::size_t p = 0; p < params.size(); ++p) {
    const double fd = centredDifference(params, p, [&](const std::vector<double>& x) {
      model.forward(parts.x, parts.size(), x, out);
      return dot(fbar, out);
    });
    EXPECT_NEAR(g[p], fd, 2e-5 * std::max(1.0, std::abs(fd))) << "parameter " << p;
  }
}

// R200m of ldlHaloSet against the formula, and bad catalogues refused.
TEST(LdlHalo, HaloSetRadius) {
  const LdlHaloSet s = ldlHaloSet({1, 2, 3}, {1e14}, 0.3);
  const double rho_m = 2.77536627e11 * 0.3;
  EXPECT_NEAR(s.radius[0], std::cbrt(3e14 / (4 * M_PI * 200 * rho_m)), 1e-12);
  EXPECT_NEAR(s.log10_mass[0], 14.0, 1e-14);
  EXPECT_THROW(ldlHaloSet({1, 2, 3}, {0.0}, 0.3), std::invalid_argument);
  EXPECT_THROW(ldlHaloSet({1, 2}, {1e14}, 0.3), std::invalid_argument);
  EXPECT_THROW(
      LdlHaloModel(std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL),
                   std::make_unique<LdlPainter>(
                       std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL), 1),
                   LdlHaloLayout{{13.0}, {0.0, 1.0}}),
      std::invalid_argument);
}

// The stacked profiles against a direct host computation (validation/plot_painter.py's), and the
// loss's profile term: its value and the gradient of the whole loss against finite differences.
TEST(LdlHalo, ProfileTermOfTheLoss) {
  auto decomp = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL);
  Particles parts = share(clumpyLattice(), worldRank(), worldSize());
  LdlHaloSet h = testHaloes();
  h.log10_mass = {12.7, 13.2, 14.0, 12.9}; // two in the first mass bin, one in each other
  LdlHaloModel model(decomp, std::make_unique<LdlPainter>(decomp, 1), kLayout);
  const std::vector<double> truth = {2.0, 0.9, 0.3, 2.5, 0.3, 1.4, 1.5, 0.05};
  std::vector<double> tp = truth;
  const std::vector<double> theta = haloTheta();
  tp.insert(tp.end(), theta.begin(), theta.end());
  Field<double> target(decomp, "test::ldl_halo::target");
  model.setHalos(&h);
  model.forward(parts.x, parts.size(), tp, target);

  // Stacked profiles: each rank's share of every (halo, shell) gathered on the host.
  const LdlProfiles prof(decomp, h);
  const std::vector<double> st = prof.stack(target);
  {
    auto th = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), target.real());
    const int K = LdlProfiles::kShells, B = LdlProfiles::kBins;
    std::vector<double> sum(h.size() * K, 0.0), cnt(h.size() * K, 0.0);
    const double cell = kL / kMesh;
    for (std::size_t q = 0; q < h.size(); ++q)
      for (int lx = 0; lx < decomp->localNx(); ++lx)
        for (int y = 0; y < kMesh; ++y)
          for (int z = 0; z < kMesh; ++z) {
            const int idx[3] = {decomp->xStart() + lx, y, z};
            double r2 = 0;
            for (int a = 0; a < 3; ++a) {
              const double d = periodicDiff(idx[a] * cell, h.pos[3 * q + a], kL);
              r2 += d * d;
            }
            const double r = std::sqrt(r2) / h.radius[q];
            for (int s = 0; s < K; ++s)
              if (r >= LdlProfiles::kShellEdges[s] && r < LdlProfiles::kShellEdges[s + 1]) {
                sum[q * K + s] += th(Field<double>::realIndex(lx, y, z, kMesh));
                cnt[q * K + s] += 1;
              }
          }
    MPI_Allreduce(MPI_IN_PLACE, sum.data(), static_cast<int>(sum.size()), MPI_DOUBLE, MPI_SUM,
                  MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, cnt.data(), static_cast<int>(cnt.size()), MPI_DOUBLE, MPI_SUM,
                  MPI_COMM_WORLD);
    const int bin_of[4] = {0, 1, 2, 0};
    for (int b = 0; b < B; ++b)
      for (int s = 0; s < K; ++s) {
        double acc = 0, n = 0;
        for (std::size_t q = 0; q < h.size(); ++q)
          if (bin_of[q] == b && cnt[q * K + s] > 0) {
            acc += sum[q * K + s] / cnt[q * K + s];
            n += 1;
          }
        SCOPED_TRACE("bin " + std::to_string(b) + " shell " + std::to_string(s));
        if (n == 0)
          EXPECT_TRUE(std::isnan(st[b * K + s]));
        else
          EXPECT_NEAR(st[b * K + s], acc / n, 1e-12 * std::abs(acc / n));
      }
  }

  // The loss with the profile term: the term's value, then the gradient.
  const std::vector<LdlPair> pairs = {{parts.x, parts.size(), &target, {}, &h}};
  std::vector<double> start = tp;
  for (std::size_t i = 0; i < start.size(); ++i)
    start[i] *= 1.0 + 0.2 * std::sin(0.5 + 1.3 * i);
  LdlLossOptions field, both;
  both.profile_weight = 0.8;
  const double jf = ldlLoss(model, pairs, start, field, nullptr);
  const double jb = ldlLoss(model, pairs, start, both, nullptr);
  Field<double> painted(decomp, "test::ldl_halo::painted");
  model.forward(parts.x, parts.size(), start, painted);
  const std::vector<double> sp = prof.stack(painted);
  double term = 0;
  int used = 0;
  for (std::size_t q = 0; q < sp.size(); ++q)
    if (std::isfinite(st[q])) {
      term += (sp[q] / st[q] - 1) * (sp[q] / st[q] - 1);
      ++used;
    }
  EXPECT_GE(used, 12);
  const double expected = both.profile_weight * term / used;
  EXPECT_GT(expected, 1e-3);
  EXPECT_NEAR(jb - jf, expected, 1e-10 * expected);
  LdlLossOptions lo = both;
  lo.power_weight = 0.5;
  std::vector<double> g;
  ldlLoss(model, pairs, start, lo, &g);
  for (std::size_t p = 0; p < start.size(); ++p) {
    const double fd = centredDifference(start, p, [&](const std::vector<double>& x) {
      return ldlLoss(model, pairs, x, lo, nullptr);
    });
    EXPECT_NEAR(g[p], fd, 1e-4 * std::max(1e-3, std::abs(fd))) << "parameter " << p;
  }
  // Without catalogues the profile term is refused.
  const std::vector<LdlPair> bare = {{parts.x, parts.size(), &target, {}}};
  EXPECT_THROW(ldlLoss(model, bare, start, lo, nullptr), std::invalid_argument);
}

namespace {

// The halo displacement of particle position x (host, minimum image over every halo): the
// direct sum the cell list must reproduce.
std::array<double, 3> displacedAt(const LdlHaloSet& h, const std::vector<double>& theta,
                                  const double* x) {
  const std::size_t nj = kLayout.radius_nodes.size() - 1;
  std::array<double, 3> out = {x[0], x[1], x[2]};
  for (std::size_t q = 0; q < h.size(); ++q) {
    double d[3], r2 = 0;
    for (int a = 0; a < 3; ++a) {
      d[a] = periodicDiff(x[a], h.pos[3 * q + a], kL);
      r2 += d[a] * d[a];
    }
    const double r = std::sqrt(r2), s = r / h.radius[q];
    if (!(r > 0) || s >= kLayout.radius_nodes.back())
      continue;
    double D = 0;
    for (std::size_t i = 0; i < kLayout.mass_nodes.size(); ++i)
      for (std::size_t j = 0; j < nj; ++j)
        D += theta[i * nj + j] * hatAt(kLayout.mass_nodes, i, h.log10_mass[q]) *
             hatAt(kLayout.radius_nodes, j, s);
    for (int a = 0; a < 3; ++a)
      out[a] += h.radius[q] * D * d[a] / r;
  }
  for (int a = 0; a < 3; ++a)
    out[a] = periodicWrap(out[a], kL);
  return out;
}

// Haloes small enough for a cell list of several cells per side (reach 3 R = 4.5 Mpc/h < L / 3).
LdlHaloSet smallHaloes() {
  LdlHaloSet h = testHaloes();
  h.radius = {1.5, 1.2, 1.4, 0.9};
  return h;
}

} // namespace

// The displaced particles against the direct sum over all haloes (one cell, and a cell list of
// several cells), and the painted field against a plain painter of those positions.
TEST(LdlHalo, DisplacementMatchesDirectSum) {
  auto decomp = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL);
  Particles parts = share(clumpyLattice(), worldRank(), worldSize());
  const std::vector<double> ident = {1.0, 1.0, 0.0}; // zero layers, the identity output
  std::vector<double> params = ident;
  const std::vector<double> theta = haloTheta();
  params.insert(params.end(), theta.begin(), theta.end());
  for (const LdlHaloSet& h : {testHaloes(), smallHaloes()}) {
    LdlHaloDisplacement model(decomp, std::make_unique<LdlPainter>(decomp, 0), kLayout);
    model.setHalos(&h);
    Field<double> out(decomp, "test::ldl_halo::out"), ref(decomp, "test::ldl_halo::ref");
    model.forward(parts.x, parts.size(), params, out);
    auto x0 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
    auto x1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), model.displaced());
    Kokkos::View<double* [3]> want("test::ldl_halo::want", parts.size());
    auto wh = Kokkos::create_mirror_view(want);
    int moved = 0;
    for (std::size_t p = 0; p < parts.size(); ++p) {
      const double xp[3] = {x0(p, 0), x0(p, 1), x0(p, 2)};
      const auto w = displacedAt(h, theta, xp);
      double dmax = 0, moved_by = 0;
      for (int a = 0; a < 3; ++a) {
        wh(p, a) = w[a];
        dmax = std::max(dmax, std::abs(periodicDiff(x1(p, a), w[a], kL)));
        moved_by = std::max(moved_by, std::abs(periodicDiff(w[a], xp[a], kL)));
      }
      moved += moved_by > 1e-3 ? 1 : 0;
      ASSERT_LT(dmax, 1e-12) << "particle " << p << " of radius set " << h.radius[0];
    }
    MPI_Allreduce(MPI_IN_PLACE, &moved, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    EXPECT_GT(moved, 20); // the small haloes reach about 1% of the box each
    Kokkos::deep_copy(want, wh);
    LdlPainter plain(decomp, 0);
    plain.forward(want, parts.size(), ident, ref);
    Field<double> diff(decomp, "test::ldl_halo::diff");
    auto o = out.real(), rf = ref.real(), df = diff.real();
    decomp->forEachPoint(
        "test::ldl_halo::diff",
        KOKKOS_LAMBDA(const MeshPoint& q) { df(q.index) = o(q.index) - rf(q.index); });
    EXPECT_LT(dot(diff, diff), 1e-20 * dot(ref, ref));
  }
}

// d<Fbar, F>/d(painter's parameters, theta) of a painter after the halo displacement against
// centred finite differences.
TEST(LdlHalo, DisplacementGradientMatchesFiniteDifferences) {
  auto decomp = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, kMesh, kL);
  Particles parts = share(clumpyLattice(), worldRank(), worldSize());
  const LdlHaloSet h = smallHaloes();
  LdlHaloDisplacement model(decomp, std::make_unique<LdlPainter>(decomp, 1), kLayout);
  model.setHalos(&h);
  std::vector<double> params = {2.0, 0.9, 0.3, 2.5, 0.3, 1.4, 1.5, -0.05};
  const std::vector<double> theta = haloTheta();
  for (double t : theta)
    params.push_back(0.2 * t); // displacements of a fraction of a cell
  Field<double> out(decomp, "test::ldl_halo::out"), fbar(decomp, "test::ldl_halo::fbar");
  cotangent(fbar);
  model.forward(parts.x, parts.size(), params, out);
  const std::vector<double> g = model.gradient(fbar);
  ASSERT_EQ(g.size(), params.size());
  double gmax = 0;
  for (std::size_t p = 8; p < params.size(); ++p)
    gmax = std::max(gmax, std::abs(g[p]));
  EXPECT_GT(gmax, 1e-2);
  for (std::size_t p = 0; p < params.size(); ++p) {
    const double fd = centredDifference(params, p, [&](const std::vector<double>& x) {
      model.forward(parts.x, parts.size(), x, out);
      return dot(fbar, out);
    });
    EXPECT_NEAR(g[p], fd, 2e-5 * std::max(1.0, std::abs(fd))) << "parameter " << p;
  }
}
