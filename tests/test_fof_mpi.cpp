// Friends-of-friends: the groups of a brute-force O(N^2) FoF, at any rank count, with clumps
// across the periodic boundary and across slabs, and group properties against a direct
// computation.
#include "helpers.hpp"
#include "pm/analysis/fof.hpp"
#include "pm/particles/migrate.hpp"

#include <gtest/gtest.h>

#include <algorithm>
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
