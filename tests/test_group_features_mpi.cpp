// Per-group features (pm/analysis/group_features): the group columns as given, the smoothed
// density at a clump against the analytic Gaussian sum, and the distributed result against the
// same computation on one rank (MPI_COMM_SELF, every particle), at 1, 2 and 3 ranks.
#include "helpers.hpp"
#include "pm/analysis/group_features.hpp"
#include "pm/particles/migrate.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace caustic;
using namespace caustic::test;

namespace {

// A lattice of one particle per mesh node plus `k` particles at mesh node (cx, cy, cz); the same
// on every rank.
Particles latticeWithClump(int n, double L, int k, const int c[3]) {
  const std::size_t total = std::size_t(n) * n * n + k;
  Particles p(total);
  auto x = Kokkos::create_mirror_view(p.x);
  auto id = Kokkos::create_mirror_view(p.id);
  const double H = L / n;
  std::size_t i = 0;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int d = 0; d < n; ++d, ++i) {
        x(i, 0) = a * H;
        x(i, 1) = b * H;
        x(i, 2) = d * H;
        id(i) = i;
      }
  for (int j = 0; j < k; ++j, ++i) {
    for (int a = 0; a < 3; ++a)
      x(i, a) = c[a] * H;
    id(i) = i;
  }
  Kokkos::deep_copy(p.x, x);
  Kokkos::deep_copy(p.id, id);
  return p;
}

HaloCatalogue oneGroup(const double pos[3], std::uint64_t count, double radius, double sigma) {
  HaloCatalogue cat;
  cat.label = {7};
  cat.count = {count};
  cat.pos = {pos[0], pos[1], pos[2]};
  cat.vel = {0, 0, 0};
  cat.radius = {radius};
  cat.sigma_v = {sigma};
  return cat;
}

} // namespace

TEST(GroupFeatures, ClumpOnLatticeMatchesTheGaussianSum) {
  const int n = 24;
  const double L = 48.0, H = L / n;
  const int k = 40, c[3] = {0, 11, 23}; // on the box faces: the smoothing wraps
  const Particles all = latticeWithClump(n, L, k, c);
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, L);
  Particles mine = share(all, worldRank(), worldSize());
  migrate(mine, *d);
  const double pos[3] = {c[0] * H, c[1] * H, c[2] * H};
  const std::vector<double> radii = {2.0 * H, 3.5 * H};
  const auto f =
      groupFeatures(oneGroup(pos, 40, 0.3, 2.5), mine, d, static_cast<double>(all.size()), radii);
  ASSERT_EQ(f.size(), 5u);
  EXPECT_DOUBLE_EQ(f[0], std::log(40.0));
  EXPECT_DOUBLE_EQ(f[1], std::log(0.3));
  EXPECT_DOUBLE_EQ(f[2], std::log(2.5));
  // 1 + delta at a node: n^3 / total (the lattice) + the clump's k n^3 / total smoothed by the
  // periodic Gaussian sampled on the nodes, H^3 sum_images G(image).
  const double mean = static_cast<double>(all.size()) / (double(n) * n * n);
  for (std::size_t j = 0; j < radii.size(); ++j) {
    const double R = radii[j];
    double g = 0;
    for (int a = -2; a <= 2; ++a)
      for (int b = -2; b <= 2; ++b)
        for (int e = -2; e <= 2; ++e) {
          const double r2 = (a * L) * (a * L) + (b * L) * (b * L) + (e * L) * (e * L);
          g += std::exp(-0.5 * r2 / (R * R));
        }
    g *= H * H * H / std::pow(2 * M_PI * R * R, 1.5);
    const double expect = (1.0 + k * g) / mean;
    EXPECT_NEAR(f[3 + j], std::log(expect), 1e-5) << "R = " << R; // a float mesh
  }
  EXPECT_EQ(groupFeatureNames(radii).size(), 5u);
  EXPECT_EQ(groupFeatureNames({2.0})[3], "ln_density_R2");
  EXPECT_THROW(groupFeatures(oneGroup(pos, 40, 0.3, 2.5), mine, d, 1.0 * all.size(), {0.0}),
               std::invalid_argument);
}

TEST(GroupFeatures, VectorsFromTheMeanLatticePosition) {
  const int n = 24;
  const double L = 48.0, H = L / n;
  const int k = 40, c[3] = {0, 11, 23};
  const Particles all = latticeWithClump(n, L, k, c);
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, L);
  Particles mine = share(all, worldRank(), worldSize());
  migrate(mine, *d);
  // The centre on the far side of the box in z from the mean lattice position (FoF's, tested in
  // test_fof_mpi: FoF.MeanLatticePositionsEqualMemberIds).
  const double pos[3] = {2 * H, 10 * H, 46.9};
  HaloCatalogue cat = oneGroup(pos, 3, 0.3, 2.5);
  cat.vel = {0.5, -1.5, 2.0};
  cat.lattice_pos = {47.7, 9.0, 10.3};
  std::vector<double> v;
  const auto f = groupFeatures(cat, mine, d, static_cast<double>(all.size()), {2.0 * H}, &v);
  ASSERT_EQ(f.size(), 4u);
  ASSERT_EQ(v.size(), 6u);
  ASSERT_EQ(groupVectorNames().size(), 2u);
  for (int a = 0; a < 3; ++a)
    EXPECT_DOUBLE_EQ(v[a], cat.vel[a]);
  // The nearest image of c - <q>: in x 4 - 47.7 + 48; in z 46.9 - 10.3 = 36.6 -> 36.6 - 48.
  const double expect[3] = {2 * H - 47.7 + L, 10 * H - 9.0, 46.9 - 10.3 - L};
  for (int a = 0; a < 3; ++a)
    EXPECT_NEAR(v[3 + a], expect[a], 1e-12) << "displacement axis " << a;
  // The features are those without vectors.
  const auto plain = groupFeatures(cat, mine, d, static_cast<double>(all.size()), {2.0 * H});
  EXPECT_EQ(plain, f);
  // Refused: no mean lattice positions.
  HaloCatalogue bare = oneGroup(pos, 3, 0.3, 2.5);
  EXPECT_THROW(groupFeatures(bare, mine, d, 1.0 * all.size(), {2.0 * H}, &v),
               std::invalid_argument);
}

TEST(GroupFeatures, DistributedEqualsOneRank) {
  const int n = 20;
  const double L = 40.0;
  const Particles all = randomParticles(6000, L, 11);
  // Groups anywhere, including on slab boundaries and the box faces.
  HaloCatalogue cat;
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0.0, L);
  for (int g = 0; g < 40; ++g) {
    cat.label.push_back(g);
    cat.count.push_back(10 + g);
    for (int a = 0; a < 3; ++a) {
      cat.pos.push_back(g % 5 == 0 ? (g / 5) * L / 8 : u(rng));
      cat.vel.push_back(0.0);
    }
    cat.radius.push_back(0.1 + 0.01 * g);
    cat.sigma_v.push_back(1.0 + g);
    for (int a = 0; a < 3; ++a)
      cat.lattice_pos.push_back(u(rng));
  }
  const std::vector<double> radii = {1.0, 2.0, 4.0, 8.0};
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, L);
  Particles mine = share(all, worldRank(), worldSize());
  migrate(mine, *d);
  std::vector<double> vdist, vone;
  const auto dist = groupFeatures(cat, mine, d, 6000.0, radii, &vdist);
  auto self = std::make_shared<SlabDecomposition>(MPI_COMM_SELF, n, L);
  Particles every = share(all, 0, 1);
  migrate(every, *self);
  const auto one = groupFeatures(cat, every, self, 6000.0, radii, &vone);
  ASSERT_EQ(vdist.size(), 6 * cat.size());
  EXPECT_EQ(vone, vdist); // from the catalogue every rank holds: no sums over ranks
  ASSERT_EQ(dist.size(), one.size());
  double worst = 0, spread = 0;
  for (std::size_t i = 0; i < one.size(); ++i) {
    worst = std::max(worst, std::fabs(dist[i] - one[i]));
    if (i % 7 >= 3)
      spread = std::max(spread, std::fabs(one[i]));
  }
  EXPECT_LT(worst, 1e-5);  // float mesh: sums in another order at other rank counts
  EXPECT_GT(spread, 0.05); // the density features vary: the comparison means something
}
