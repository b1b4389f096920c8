// Painting and migration: mass conservation, distributed against serial painting of the same
// particles, a uniform lattice paints a uniform field, migration delivers each particle.
#include "helpers.hpp"
#include "pm/force/painter.hpp"
#include "pm/particles/migrate.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

using namespace caustic;

namespace {

using test::share;

// Random particles plus a few exactly on cell faces and at the box edge.
Particles randomParticles(std::size_t count, double L, unsigned seed) {
  Particles p = test::randomParticles(count, L, seed);
  auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.x);
  x(0, 0) = 0.0;
  x(1, 0) = L * (1 - 1e-16);
  x(2, 0) = L / 2;
  Kokkos::deep_copy(p.x, x);
  return p;
}

double localSum(const Field<double>& f) {
  auto r = f.real();
  double s = 0;
  f.decomp().reducePoints(
      "test::localSum", KOKKOS_LAMBDA(const MeshPoint& p, double& acc) { acc += r(p.index); }, s);
  return s;
}

} // namespace

TEST(Migrate, EveryParticleEndsOnItsOwner) {
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const double L = 10.0;
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, 10, L);
  const auto all = randomParticles(3000, L, 1);
  Particles p = share(all, rank, size);
  migrate(p, *d);
  auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.x);
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), p.id);
  auto ax = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.x);
  for (std::size_t i = 0; i < p.size(); ++i) {
    EXPECT_EQ(d->ownerOfPosition(x(i, 0)), rank);
    for (int c = 0; c < 3; ++c)
      EXPECT_EQ(x(i, c), ax(id(i), c)); // data travelled with its id
  }
  // All ids present exactly once.
  long local = long(p.size()), total = 0;
  MPI_Allreduce(&local, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(total, 3000);
  std::vector<std::uint64_t> mine(id.data(), id.data() + p.size());
  std::vector<int> counts(size), displ(size);
  int n = int(mine.size());
  MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
  for (int r = 1; r < size; ++r)
    displ[r] = displ[r - 1] + counts[r - 1];
  std::vector<std::uint64_t> ids(3000);
  MPI_Allgatherv(mine.data(), n, MPI_UINT64_T, ids.data(), counts.data(), displ.data(),
                 MPI_UINT64_T, MPI_COMM_WORLD);
  EXPECT_EQ(std::set<std::uint64_t>(ids.begin(), ids.end()).size(), 3000u);
  // A second migration moves nothing.
  EXPECT_EQ(migrate(p, *d), 0u);
}

TEST(Paint, DistributedEqualsSerialAndConservesMass) {
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const double L = 20.0, mass = 1.7;
  // n = 6 at 3 ranks gives slabs of 2 planes: TSC with a half-cell shift reaches 2 ranks away.
  for (int n : {6, 16}) {
    auto dw = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, L);
    auto ds = std::make_shared<SlabDecomposition>(MPI_COMM_SELF, n, L);
    const auto all = randomParticles(2000, L, 7);
    Particles mine = share(all, rank, size);
    migrate(mine, *dw);
    for (Window win : {Window::CIC, Window::TSC})
      for (double shift : {0.0, 0.5}) {
        Field<double> w(dw, "w"), s(ds, "s");
        paint(w, mine, win, mass, shift);
        paint(s, all, win, mass, shift);
        double total = 0, local = localSum(w);
        MPI_Allreduce(&local, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        EXPECT_NEAR(total, 2000 * mass, 1e-10) << windowName(win) << " n=" << n;
        // Each rank's points against the same global points of the single-rank field.
        auto rw = w.real(), rs = s.real();
        double off = 0;
        dw->reducePoints(
            "test::compare",
            KOKKOS_LAMBDA(const MeshPoint& p, double& acc) {
              const double d = rw(p.index) - rs(Field<double>::realIndex(p.x, p.y, p.z, n));
              acc += km::fabs(d) < 1e-12 ? 0.0 : 1.0;
            },
            off);
        EXPECT_EQ(off, 0.0) << windowName(win) << " shift " << shift << " n=" << n
                            << ": points differing by 1e-12 or more";
      }
  }
}

TEST(Paint, UniformLatticePaintsUniformField) {
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int np = 8;
  const double L = 32.0;
  // Lattice offset by a fraction of a cell: every cell still receives mass (n/np)^-3 per particle.
  Particles all(np * np * np);
  auto x = Kokkos::create_mirror_view(all.x);
  for (int i = 0; i < np * np * np; ++i) {
    const int q[3] = {i / (np * np), (i / np) % np, i % np};
    for (int c = 0; c < 3; ++c)
      x(i, c) = (q[c] + 0.3) * L / np;
  }
  Kokkos::deep_copy(all.x, x);
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, np, L);
  Particles mine = share(all, rank, size);
  migrate(mine, *d);
  for (Window win : {Window::CIC, Window::TSC}) {
    Field<double> f(d, "f");
    paint(f, mine, win, 1.0);
    auto r = f.real();
    double off = 0;
    d->reducePoints(
        "test::uniform",
        KOKKOS_LAMBDA(const MeshPoint& p, double& acc) {
          acc += km::fabs(r(p.index) - 1.0) < 1e-12 ? 0.0 : 1.0;
        },
        off);
    EXPECT_EQ(off, 0.0) << windowName(win) << ": cells differing from 1 by 1e-12 or more";
  }
}

// The gradient readout against the 4-point difference and window summed directly in the test
// on an analytic mesh function, for random probes: probes whose stencil lies in their rank's
// planes and wraps in neither y nor z take the kernel's constant-offset path, the others
// (slab edges, periodic faces) its general path; both must agree with the direct sum.
TEST(Paint, GradientReadoutEqualsDirectStencilSum) {
  const int n = 32; // slabs of >= 10 planes at 3 ranks: room for the 7-plane TSC span
  const double L = 64.0, H = L / n, scale = 0.7;
  auto phi = [n](int x, int y, int z) {
    auto w = [n](int i) { return ((i % n) + n) % n; };
    return std::sin(0.9 * w(x) + 0.4 * w(y)) * std::cos(0.6 * w(z)) + 0.01 * w(x) * w(z);
  };
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, L);
  Field<double> f(d, "phi");
  {
    auto r = f.real();
    d->forEachPoint(
        "test::phi", KOKKOS_LAMBDA(const MeshPoint& p) { r(p.index) = phi(p.x, p.y, p.z); });
  }
  Particles probes = share(randomParticles(600, L, 23), test::worldRank(), test::worldSize());
  migrate(probes, *d);
  auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), probes.x);
  const IndexBox slab = d->realBox();
  for (Window win : {Window::CIC, Window::TSC}) {
    const int order = windowOrder(win);
    Kokkos::View<double* [3]> out("out", probes.size());
    Painter<double>(d, win).readoutGradient(f, probes.x, probes.size(), out, scale, false);
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
    long fast = 0, general = 0;
    for (std::size_t p = 0; p < probes.size(); ++p) {
      int i0[3];
      double w[3][3];
      for (int c = 0; c < 3; ++c)
        windowWeights(win, std::min(std::max(x(p, c) / H, 0.0), double(n)), i0[c], w[c]);
      const bool in_slab = i0[0] - 2 >= slab.lo[0] && i0[0] + order + 2 <= slab.hi[0];
      const bool no_wrap =
          i0[1] >= 2 && i0[1] + order + 2 <= n && i0[2] >= 2 && i0[2] + order + 2 <= n;
      ++(in_slab && no_wrap ? fast : general);
      double g[3] = {0, 0, 0};
      for (int a = 0; a < order; ++a)
        for (int b = 0; b < order; ++b)
          for (int c = 0; c < order; ++c) {
            const int q[3] = {i0[0] + a, i0[1] + b, i0[2] + c};
            for (int e = 0; e < 3; ++e) {
              auto at = [&](int s) {
                int r[3] = {q[0], q[1], q[2]};
                r[e] += s;
                return phi(r[0], r[1], r[2]);
              };
              const double diff = (8 * (at(1) - at(-1)) - (at(2) - at(-2))) / (12 * H);
              g[e] += w[0][a] * w[1][b] * w[2][c] * diff;
            }
          }
      for (int e = 0; e < 3; ++e)
        EXPECT_NEAR(h(p, e), -scale * g[e], 1e-12) << windowName(win) << " probe " << p;
    }
    // Both paths were taken somewhere (summed over ranks).
    long counts[2] = {fast, general}, total[2];
    MPI_Allreduce(counts, total, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    EXPECT_GT(total[0], 0) << windowName(win);
    EXPECT_GT(total[1], 0) << windowName(win);
  }
}
