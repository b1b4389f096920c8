// The decomposition's iteration space (forEachPoint/forEachMode and their reductions, boxes,
// owners) against sums known in closed form, and the workspace's leases.
#include "pm/mesh/mesh.hpp"
#include "pm/mesh/workspace.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace caustic;

namespace {
double allSum(double v) {
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return v;
}
} // namespace

TEST(Decomposition, PointsCoverTheMeshOnceWithConsistentIndices) {
  for (int n : {6, 8, 10}) {
    auto d = std::make_shared<const Decomposition>(MPI_COMM_WORLD, n, 10.0);
    Field<double> f(d, "f");
    f.setZero();
    auto r = f.real();
    const IndexBox box = d->realBox();
    long bad = 0;
    // Every point writes its global linear index; compact and flat indices must agree.
    d->forEachPoint(
        "test::points",
        KOKKOS_LAMBDA(const MeshPoint& p) { r(p.index) = (double(p.x) * n + p.y) * n + p.z; });
    double sum = 0.0, count = 0.0;
    d->reducePoints(
        "test::pointSum", KOKKOS_LAMBDA(const MeshPoint& p, double& acc) { acc += r(p.index); },
        sum);
    d->reducePoints(
        "test::pointCount",
        KOKKOS_LAMBDA(const MeshPoint& p, double& acc) {
          const std::size_t compact =
              (std::size_t(p.x - box.lo[0]) * n + std::size_t(p.y)) * n + std::size_t(p.z);
          acc += (compact == p.compact && p.x >= box.lo[0] && p.x < box.hi[0]) ? 1.0 : 0.0;
        },
        count);
    EXPECT_EQ(allSum(count), double(n) * n * n);
    EXPECT_EQ(count, double(box.size()));
    const double N3 = double(n) * n * n;
    EXPECT_EQ(allSum(sum), N3 * (N3 - 1) / 2); // sum of 0 .. N^3 - 1
    (void)bad;
    // The owner of a position is the rank whose box holds its plane.
    int me = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    for (int ix = box.lo[0]; ix < box.hi[0]; ++ix)
      EXPECT_EQ(d->ownerOfPosition((ix + 0.5) * d->cell()), me);
    EXPECT_EQ(d->ownerOfPosition(-0.25 * d->cell()), d->ownerOfPosition(10.0 - 0.25 * d->cell()));
  }
}

TEST(Decomposition, ModesCoverTheFullSpaceWithHermitianWeights) {
  for (int n : {6, 8}) {
    auto d = std::make_shared<const Decomposition>(MPI_COMM_WORLD, n, 10.0);
    // Sum of the weights over the stored half = the number of modes of the full space; the sum
    // of w m_x^2 equals the full-space sum N^2 sum_m m^2 over m in (-N/2, N/2].
    double w = 0.0, mx2 = 0.0, nyq = 0.0;
    d->reduceModes(
        "test::weights", KOKKOS_LAMBDA(const MeshMode& m, double& acc) { acc += m.weight; }, w);
    d->reduceModes(
        "test::mx2",
        KOKKOS_LAMBDA(const MeshMode& m, double& acc) { acc += m.weight * m.mx * m.mx; }, mx2);
    d->reduceModes(
        "test::nyquist",
        KOKKOS_LAMBDA(const MeshMode& m, double& acc) { acc += m.nyquist(n) ? 1.0 : 0.0; }, nyq);
    const double N3 = double(n) * n * n;
    EXPECT_EQ(allSum(w), N3);
    double s2 = 0.0;
    for (int m = -n / 2 + 1; m <= n / 2; ++m)
      s2 += double(m) * m;
    EXPECT_NEAR(allSum(mx2), double(n) * n * s2, 1e-9);
    // Stored modes on a Nyquist plane: total stored minus those with all |m| < N/2.
    const double stored = double(n) * n * (n / 2 + 1), inner = double(n - 1) * (n - 1) * (n / 2);
    EXPECT_EQ(allSum(nyq), stored - inner);
    EXPECT_EQ(allSum(double(d->fourierBox().size())), stored);
  }
}

TEST(Workspace, LeasesShareFreeBuffersAndAllocateOnlyWhenAllAreLeased) {
  auto d = std::make_shared<const Decomposition>(MPI_COMM_WORLD, 8, 10.0);
  Workspace<float> ws(d, FFTW_ESTIMATE, 1);
  EXPECT_EQ(ws.buffers(), 1u);
  const float* first = nullptr;
  {
    auto a = ws.lease("a");
    first = a->real().data();
    auto b = ws.lease("b"); // the first is leased: a second buffer
    EXPECT_NE(b->real().data(), first);
    EXPECT_EQ(ws.buffers(), 2u);
  }
  {
    auto c = ws.lease("c"); // both free again: the first one, no new allocation
    EXPECT_EQ(c->real().data(), first);
    auto moved = std::move(c);
    EXPECT_EQ(moved->real().data(), first);
  }
  EXPECT_EQ(ws.buffers(), 2u);
  {
    auto held = ws.lease("held"); // the first slot
    EXPECT_GT(ws.releaseIdle(), 0u); // frees the second only
    EXPECT_EQ(ws.buffers(), 1u);
    EXPECT_EQ(held->real().data(), first);
    held->real()(0) = 7.0f;
    auto again = ws.lease("again"); // the released slot, allocated anew
    EXPECT_EQ(ws.buffers(), 2u);
    EXPECT_NE(again->real().data(), first);
    EXPECT_EQ(held->real()(0), 7.0f);
  }
  EXPECT_EQ(ws.releaseIdle() > 0, true);
  EXPECT_EQ(ws.buffers(), 0u);
  EXPECT_EQ(ws.releaseIdle(), 0u);
  auto after = ws.lease("after"); // usable again after everything was released
  EXPECT_EQ(ws.buffers(), 1u);
  after->real()(0) = 1.0f;
}
