// Friends-of-friends: the groups of a brute-force O(N^2) FoF, at any rank count, with clumps
// across the periodic boundary and across slabs, and group properties against a direct
// computation. The contraction of small groups' cores (group_contraction.hpp) against the radial
// map of single particles and a direct computation over all groups, at any rank count.
#include "helpers.hpp"
#include "pm/analysis/fof.hpp"
#include "pm/analysis/group_contraction.hpp"
#include "pm/particles/migrate.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <set>

using namespace caustic;
using namespace caustic::test;

namespace {

// Random clumps (some centred on the box faces and corners, some wider than a slab) plus a
// uniform background; the same on every rank.
Particles clumpyParticles(std::size_t n, double L, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, L);
  std::normal_distribution<double> g(0.0, 1.0);
  Particles p(n);
  auto x = Kokkos::create_mirror_view(p.x);
  auto v = Kokkos::create_mirror_view(p.p);
  auto id = Kokkos::create_mirror_view(p.id);
  const std::vector<std::array<double, 4>> clumps = {
      {0.0, 5.0, 5.0, 0.35},      {L - 0.1, L - 0.1, 0.05, 0.3}, {5.0, 2.0, 7.0, 0.25},
      {L / 2, L / 2, L / 2, 0.9}, {3.3, 8.0, 1.0, 0.2},          {7.5, 0.0, 9.9, 0.3},
      {1.7, 1.7, 1.7, 0.15}};
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng); // ids not spatially ordered
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = order[k];
    if (k < n / 2) {
      const auto& c = clumps[k % clumps.size()];
      for (int a = 0; a < 3; ++a)
        x(i, a) = periodicWrap(c[a] + c[3] * g(rng), L);
    } else {
      for (int a = 0; a < 3; ++a)
        x(i, a) = u(rng);
    }
    for (int a = 0; a < 3; ++a)
      v(i, a) = g(rng) + (k < n / 2 ? double(k % clumps.size()) : 0.0);
    id(i) = 1000 + 7 * i; // sparse ids
  }
  Kokkos::deep_copy(p.x, x);
  Kokkos::deep_copy(p.p, v);
  Kokkos::deep_copy(p.id, id);
  return p;
}

// n points in one gaussian clump of width sigma across the corner of the box (sparse ids).
Particles cornerClump(std::size_t n, double L, double sigma, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  Particles p(n);
  auto x = Kokkos::create_mirror_view(p.x);
  auto id = Kokkos::create_mirror_view(p.id);
  for (std::size_t i = 0; i < n; ++i) {
    for (int a = 0; a < 3; ++a)
      x(i, a) = periodicWrap(sigma * g(rng), L);
    id(i) = 5 + 3 * i;
  }
  Kokkos::deep_copy(p.x, x);
  Kokkos::deep_copy(p.id, id);
  Kokkos::deep_copy(p.p, 0.0);
  return p;
}

// Brute force: label = smallest id of the connected component, all pairs.
std::map<std::uint64_t, std::uint64_t> bruteForce(const Particles& p, double L, double ell) {
  auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.x);
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.id);
  const std::size_t n = p.size();
  std::vector<std::size_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  std::function<std::size_t(std::size_t)> find = [&](std::size_t i) {
    return parent[i] == i ? i : parent[i] = find(parent[i]);
  };
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j) {
      double d2 = 0;
      for (int a = 0; a < 3; ++a) {
        const double d = periodicDiff(x(i, a), x(j, a), L);
        d2 += d * d;
      }
      if (d2 < ell * ell)
        parent[find(i)] = find(j);
    }
  std::map<std::size_t, std::uint64_t> minid;
  for (std::size_t i = 0; i < n; ++i) {
    auto r = find(i);
    minid[r] = minid.count(r) ? std::min(minid[r], id(i)) : id(i);
  }
  std::map<std::uint64_t, std::uint64_t> out;
  for (std::size_t i = 0; i < n; ++i)
    out[id(i)] = minid[find(i)];
  return out;
}

// fofLabels of `all` shared over the ranks (slabs of a mesh of nmesh planes): how many local
// labels differ from the reference.
int wrongLabels(const Particles& all, const std::map<std::uint64_t, std::uint64_t>& ref, int nmesh,
                double L, double ell) {
  auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, nmesh, L);
  Particles mine = share(all, worldRank(), worldSize());
  migrate(mine, *d);
  const auto labels = fofLabels(mine, *d, ell);
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mine.id);
  int wrong = 0;
  for (std::size_t i = 0; i < mine.size(); ++i)
    wrong += labels[i] != ref.at(id(i));
  return wrong;
}

} // namespace

TEST(FoF, LabelsEqualBruteForceAtAnyRankCount) {
  const double L = 10.0, ell = 0.18;
  const auto all = clumpyParticles(4000, L, 42);
  const auto ref = bruteForce(all, L, ell);
  // Thin slabs (6 planes of 1.67 Mpc/h: at 3 ranks 2 planes each) so that the central clump
  // (sigma 0.9) spans several slabs.
  for (int nmesh : {6, 16})
    EXPECT_EQ(wrongLabels(all, ref, nmesh, L, ell), 0) << "mesh " << nmesh;
  // Sanity of the setup: a few large groups, one across the periodic corner.
  std::map<std::uint64_t, int> sizes;
  for (const auto& [i, l] : ref)
    ++sizes[l];
  int big = 0;
  for (const auto& [l, s] : sizes)
    big += s >= 100;
  EXPECT_GE(big, 5);
}

// Linking lengths from 0.001 to 0.49 of the box: the cell grid goes from 1650 cells per side
// (cell keys beyond 32 bits) to 4 (the grids of 4 and 6 cells per side, whose neighbouring
// columns and z images repeat). The point counts keep about 1.5 friends per point on average,
// so the groups are neither all single nor all one; at the shortest length the points are one
// clump of width 3 ell across the box corner, 3000 of them.
TEST(FoF, LabelsEqualBruteForceAcrossLinkingLengths) {
  const double L = 10.0;
  for (const double ell : {0.0105, 0.9, 2.0, 3.3, 4.9}) {
    const auto n = static_cast<std::size_t>(1.5 * L * L * L / (4.19 * ell * ell * ell)) + 3;
    int linked = 0, several = 0; // the setup: points linked, and not all into one group
    for (unsigned seed = 1; seed <= 6; ++seed) {
      const auto all =
          ell < 0.1 ? cornerClump(3000, L, 3 * ell, seed) : clumpyParticles(n, L, seed);
      const auto ref = bruteForce(all, L, ell);
      EXPECT_EQ(wrongLabels(all, ref, 6, L, ell), 0)
          << "ell " << ell << ", seed " << seed << ", " << all.size() << " points";
      std::set<std::uint64_t> groups;
      for (const auto& [pid, l] : ref) {
        groups.insert(l);
        linked += l != pid;
      }
      several += groups.size() > 1;
    }
    EXPECT_GT(linked, 0) << "ell " << ell;
    EXPECT_GT(several, 0) << "ell " << ell;
  }
}

TEST(FoF, CatalogueMatchesDirectComputation) {
  const double L = 10.0, ell = 0.18, sep = 1.0;
  const auto all = clumpyParticles(4000, L, 7);
  const auto ref = bruteForce(all, L, ell);
  auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 6, L);
  Particles mine = share(all, worldRank(), worldSize());
  migrate(mine, *d);
  FofOptions opt;
  opt.b = ell / sep;
  opt.min_particles = 20;
  opt.member_ids = true;
  const HaloCatalogue cat = findHalos(mine, *d, sep, opt);
  // Direct: members per label, centre by unwrapping around the first member.
  auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.x);
  auto v = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.p);
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.id);
  std::map<std::uint64_t, std::vector<std::size_t>> members;
  for (std::size_t i = 0; i < all.size(); ++i)
    members[ref.at(id(i))].push_back(i);
  std::vector<std::uint64_t> expect_labels;
  for (const auto& [l, m] : members)
    if (m.size() >= 20)
      expect_labels.push_back(l);
  ASSERT_EQ(cat.label, expect_labels);
  for (std::size_t g = 0; g < cat.size(); ++g) {
    const auto& m = members[cat.label[g]];
    EXPECT_EQ(cat.count[g], m.size());
    double c[3] = {0, 0, 0}, mv[3] = {0, 0, 0};
    for (std::size_t i : m)
      for (int a = 0; a < 3; ++a) {
        c[a] += periodicDiff(x(i, a), x(m[0], a), L);
        mv[a] += v(i, a);
      }
    double r2 = 0, s2 = 0;
    for (int a = 0; a < 3; ++a) {
      c[a] /= m.size();
      mv[a] /= m.size();
    }
    for (std::size_t i : m)
      for (int a = 0; a < 3; ++a) {
        const double dx = periodicDiff(x(i, a), x(m[0], a), L) - c[a];
        r2 += dx * dx;
        s2 += (v(i, a) - mv[a]) * (v(i, a) - mv[a]);
      }
    for (int a = 0; a < 3; ++a) {
      EXPECT_NEAR(periodicDiff(cat.pos[3 * g + a], periodicWrap(x(m[0], a) + c[a], L), L), 0.0,
                  1e-9);
      EXPECT_NEAR(cat.vel[3 * g + a], mv[a], 1e-9);
    }
    EXPECT_NEAR(cat.radius[g], std::sqrt(r2 / m.size()), 1e-9);
    EXPECT_NEAR(cat.sigma_v[g], std::sqrt(s2 / (3.0 * m.size())), 1e-9);
    // Member IDs: exactly the group's, ascending.
    std::vector<std::uint64_t> ids;
    for (std::size_t i : m)
      ids.push_back(id(i));
    std::sort(ids.begin(), ids.end());
    const std::size_t end = g + 1 < cat.size() ? cat.member_offset[g + 1] : cat.members.size();
    EXPECT_EQ(std::vector<std::uint64_t>(cat.members.begin() + cat.member_offset[g],
                                         cat.members.begin() + end),
              ids);
  }
}

// Particles of an N^3 lattice (ID (i N + j) N + k at q = (i, j, k) L / N + offset) pulled towards
// four centres (one across the box corner, one on the x face, one where slabs meet): those within
// R of a centre move to 5% of their distance from it, so each clump is a group whose members'
// lattice positions straddle the box faces. The mean lattice position FoF sums per group equals
// the one computed from the gathered member IDs, at any rank count.
TEST(FoF, MeanLatticePositionsEqualMemberIds) {
  const int n = 24;
  const double L = 48.0, H = L / n, offset = 0.3, R = 5.0;
  const std::vector<std::array<double, 3>> centres = {
      {0.5, 47.2, 0.1}, {47.9, 20.0, 30.0}, {24.0, 12.0, 36.0}, {16.1, 35.0, 9.0}};
  Particles all(std::size_t(n) * n * n);
  {
    auto x = Kokkos::create_mirror_view(all.x);
    auto id = Kokkos::create_mirror_view(all.id);
    std::size_t i = 0;
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b)
        for (int d = 0; d < n; ++d, ++i) {
          const double q[3] = {a * H + offset, b * H + offset, d * H + offset};
          double shift[3] = {0, 0, 0};
          for (const auto& c : centres) {
            double r2 = 0, dq[3];
            for (int e = 0; e < 3; ++e) {
              dq[e] = periodicDiff(q[e], c[e], L);
              r2 += dq[e] * dq[e];
            }
            if (r2 < R * R)
              for (int e = 0; e < 3; ++e)
                shift[e] = -0.95 * dq[e];
          }
          for (int e = 0; e < 3; ++e)
            x(i, e) = periodicWrap(q[e] + shift[e], L);
          id(i) = (std::uint64_t(a) * n + b) * n + d;
        }
    Kokkos::deep_copy(all.x, x);
    Kokkos::deep_copy(all.id, id);
    Kokkos::deep_copy(all.p, 0.0);
  }
  auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, L);
  Particles mine = share(all, worldRank(), worldSize());
  migrate(mine, *d);
  FofOptions opt;
  opt.b = 0.2;
  opt.min_particles = 20;
  opt.member_ids = true;
  opt.lattice_grid = n;
  opt.lattice_offset = offset;
  const HaloCatalogue cat = findHalos(mine, *d, H, opt);
  ASSERT_EQ(cat.size(), centres.size());
  ASSERT_EQ(cat.lattice_pos.size(), 3 * cat.size());
  double moved = 0;
  for (std::size_t g = 0; g < cat.size(); ++g) {
    const std::uint64_t first = cat.member_offset[g];
    double ref[3], sum[3] = {0, 0, 0};
    for (std::uint64_t k = 0; k < cat.count[g]; ++k) {
      const std::uint64_t id = cat.members[first + k];
      const double q[3] = {double(id / (n * n)) * H, double((id / n) % n) * H, double(id % n) * H};
      for (int e = 0; e < 3; ++e) {
        if (k == 0)
          ref[e] = q[e];
        sum[e] += periodicDiff(q[e], ref[e], L);
      }
    }
    for (int e = 0; e < 3; ++e) {
      const double expect = periodicWrap(ref[e] + sum[e] / cat.count[g] + offset, L);
      EXPECT_NEAR(periodicDiff(cat.lattice_pos[3 * g + e], expect, L), 0.0, 1e-9)
          << "group " << g << " axis " << e;
      EXPECT_GE(cat.lattice_pos[3 * g + e], 0.0);
      EXPECT_LT(cat.lattice_pos[3 * g + e], L);
      // The clump's centre of mass and its members' mean lattice position agree to a cell (the
      // comparison means something: both near the clump's centre, across the faces).
      moved = std::max(moved, std::fabs(periodicDiff(cat.pos[3 * g + e], expect, L)));
    }
  }
  EXPECT_LT(moved, H);
  // Without a lattice, no lattice positions; a negative grid is refused.
  opt.lattice_grid = 0;
  EXPECT_TRUE(findHalos(mine, *d, H, opt).lattice_pos.empty());
  opt.lattice_grid = -1;
  EXPECT_THROW(findHalos(mine, *d, H, opt), std::invalid_argument);
}

// One group centred across the box corner and particles at known distances along fixed
// directions: each moves to r (lambda + (1 - lambda) (r / R)^2) along its direction, and those
// at r >= R or in a group above max_members stay.
TEST(GroupContraction, RadialMapOfSingleParticles) {
  const double L = 20.0, R = 1.5, lam = 0.4;
  HaloCatalogue cat;
  const double c0[3] = {0.1, L - 0.2, 0.05}, c1[3] = {10.0, 10.0, 10.0};
  for (const auto* c : {c0, c1}) {
    cat.label.push_back(cat.label.size());
    cat.count.push_back(cat.count.empty() ? 50 : 500);
    for (int a = 0; a < 3; ++a)
      cat.pos.push_back(c[a]);
  }
  const std::vector<double> radii = {0.0, 0.1, 0.5, 1.0, 1.49, 1.5, 2.0};
  const double dir[3] = {0.48, -0.6, 0.64}; // unit
  Particles all(2 * radii.size());
  auto x = Kokkos::create_mirror_view(all.x);
  auto id = Kokkos::create_mirror_view(all.id);
  for (std::size_t i = 0; i < all.size(); ++i) {
    const double* c = i < radii.size() ? c0 : c1;
    for (int a = 0; a < 3; ++a)
      x(i, a) = periodicWrap(c[a] + radii[i % radii.size()] * dir[a], L);
    id(i) = i;
  }
  Kokkos::deep_copy(all.x, x);
  Kokkos::deep_copy(all.id, id);
  Kokkos::deep_copy(all.p, 0.0);
  Particles mine = share(all, worldRank(), worldSize());
  GroupContraction opt;
  opt.lambda = lam;
  opt.radius = R;
  opt.max_members = 100; // the second group (500 members) is left alone
  EXPECT_EQ(contractGroups(mine, cat, L, opt), 1u);
  auto mx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mine.x);
  auto mid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mine.id);
  for (std::size_t j = 0; j < mine.size(); ++j) {
    const std::size_t i = mid(j);
    const double r = radii[i % radii.size()];
    const double want = i < radii.size() && r < R ? r * (lam + (1 - lam) * (r / R) * (r / R)) : r;
    const double* c = i < radii.size() ? c0 : c1;
    for (int a = 0; a < 3; ++a) {
      EXPECT_GE(mx(j, a), 0.0);
      EXPECT_LT(mx(j, a), L);
      EXPECT_NEAR(periodicDiff(mx(j, a), c[a], L), want * dir[a], 1e-12) << "particle " << i;
    }
  }
  // Bad options are refused.
  opt.lambda = 0.0;
  EXPECT_THROW(contractGroups(mine, cat, L, opt), std::invalid_argument);
  opt.lambda = 0.5;
  opt.radius = L / 4 + 0.1;
  EXPECT_THROW(contractGroups(mine, cat, L, opt), std::invalid_argument);
}

// FoF groups of clumpy particles (clumps across faces, corners and slabs), then the contraction
// about those of at most the median size: every particle where a direct loop over all groups in
// catalogue order (largest L1 move wins, the first of equal ones) puts it, at any rank count.
TEST(GroupContraction, MatchesDirectComputationAtAnyRankCount) {
  const double L = 10.0, sep = 1.0;
  const auto all = clumpyParticles(4000, L, 11);
  auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 6, L);
  Particles mine = share(all, worldRank(), worldSize());
  migrate(mine, *d);
  FofOptions fo;
  fo.b = 0.18;
  fo.min_particles = 5;
  const HaloCatalogue cat = findHalos(mine, *d, sep, fo);
  ASSERT_GE(cat.size(), 4u);
  std::vector<std::uint64_t> sizes(cat.count);
  std::sort(sizes.begin(), sizes.end());
  GroupContraction opt;
  opt.lambda = 0.55;
  opt.radius = 1.2;
  opt.max_members = sizes[sizes.size() / 2];
  const std::size_t used = contractGroups(mine, cat, L, opt);
  // Direct computation on the whole set.
  auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.x);
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.id);
  std::map<std::uint64_t, std::array<double, 3>> want;
  std::size_t expect_used = 0, moved = 0;
  for (std::size_t g = 0; g < cat.size(); ++g)
    expect_used += cat.count[g] <= opt.max_members;
  std::size_t shared = 0; // particles within R of two or more groups: the largest move wins
  for (std::size_t i = 0; i < all.size(); ++i) {
    double disp[3] = {0, 0, 0}, best = 0;
    int near = 0;
    for (std::size_t g = 0; g < cat.size(); ++g) {
      if (cat.count[g] > opt.max_members)
        continue;
      double dx[3], r2 = 0;
      for (int a = 0; a < 3; ++a) {
        dx[a] = periodicDiff(x(i, a), cat.pos[3 * g + a], L);
        r2 += dx[a] * dx[a];
      }
      const double r = std::sqrt(r2);
      if (r >= opt.radius)
        continue;
      ++near;
      const double f = opt.lambda + (1 - opt.lambda) * (r / opt.radius) * (r / opt.radius) - 1;
      const double n1 = std::abs(dx[0] * f) + std::abs(dx[1] * f) + std::abs(dx[2] * f);
      if (n1 > best) {
        best = n1;
        for (int a = 0; a < 3; ++a)
          disp[a] = dx[a] * f;
      }
    }
    moved += best > 0;
    shared += near > 1;
    want[id(i)] = {periodicWrap(x(i, 0) + disp[0], L), periodicWrap(x(i, 1) + disp[1], L),
                   periodicWrap(x(i, 2) + disp[2], L)};
  }
  EXPECT_EQ(used, expect_used);
  EXPECT_GT(moved, all.size() / 20); // the test moves many particles
  EXPECT_GT(shared, 10u);
  auto mx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mine.x);
  auto mid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mine.id);
  double worst = 0;
  for (std::size_t j = 0; j < mine.size(); ++j)
    for (int a = 0; a < 3; ++a)
      worst = std::max(worst, std::abs(periodicDiff(mx(j, a), want.at(mid(j))[a], L)));
  EXPECT_LT(worst, 1e-12);
  std::uint64_t n = mine.size();
  MPI_Allreduce(MPI_IN_PLACE, &n, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(n, all.size());
}
