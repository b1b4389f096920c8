// Distributed FFT against a known transform and against a serial transform of the same field.
#include "pm/mesh/mesh.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <complex>

using namespace caustic;

namespace {

// f(x) = sin(2 pi (a x + b y + c z) / N) on local planes.
template <class T> void fillSine(Field<T>& f, int a, int b, int c) {
  const int n = f.decomp().n();
  auto r = f.real();
  f.decomp().forEachPoint(
      "test::fillSine", KOKKOS_LAMBDA(const MeshPoint& p) {
        r(p.index) = T(km::sin(2 * M_PI * (a * p.x + b * p.y + c * p.z) / n));
      });
}

} // namespace

TEST(Mesh, DecompositionCoversAllPlanes) {
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, 16, 100.0);
  int nx = d->localNx(), total = 0;
  MPI_Allreduce(&nx, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(total, 16);
  int ny = d->localNy(), totaly = 0;
  MPI_Allreduce(&ny, &totaly, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(totaly, 16);
  for (int i = 0; i < 16; ++i) {
    const int r = d->ownerOfPlane(i);
    EXPECT_GE(i, d->xStartOf(r));
    EXPECT_LT(i, d->xStartOf(r) + d->localNxOf(r));
  }
  EXPECT_EQ(d->ownerOfPlane(-1), d->ownerOfPlane(15));
  EXPECT_EQ(d->ownerOfPlane(16), d->ownerOfPlane(0));
}

TEST(Mesh, ForwardTransformOfSineIsKnown) {
  // sin(k.x) = (e^{ik.x} - e^{-ik.x}) / 2i: with F(k) = sum f e^{-ik.x}, F(+m) = -i N^3/2 and
  // F(-m) = +i N^3/2; every other mode is zero. A wrong sign or scale fails here.
  const int n = 12;
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, 1.0);
  FFT<double> fft(d);
  Field<double> f(d, "f");
  const int a = 2, b = -3, c = 1;
  fillSine(f, a, b, c);
  fft.forward(f);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f.complex());
  const double n3 = double(n) * n * n;
  for (int ly = 0; ly < d->localNy(); ++ly)
    for (int x = 0; x < n; ++x)
      for (int z = 0; z < d->nzComplex(); ++z) {
        const int mx = SlabDecomposition::signedIndex(x, n);
        const int my = SlabDecomposition::signedIndex(d->yStart() + ly, n);
        std::complex<double> expect(0, 0);
        if (mx == a && my == b && z == c)
          expect = {0, -n3 / 2};
        if (mx == -a && my == -b && z == -c)
          expect = {0, n3 / 2};
        const auto v = h(Field<double>::complexIndex(ly, x, z, n));
        EXPECT_NEAR(v.real(), expect.real(), 1e-9 * n3) << mx << " " << my << " " << z;
        EXPECT_NEAR(v.imag(), expect.imag(), 1e-9 * n3) << mx << " " << my << " " << z;
      }
  // Round trip restores the field.
  fft.backward(f);
  Field<double> g(d, "g");
  fillSine(g, a, b, c);
  auto hf = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f.real());
  auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), g.real());
  for (int lx = 0; lx < d->localNx(); ++lx)
    for (int y = 0; y < n; ++y)
      for (int z = 0; z < n; ++z) {
        const auto i = Field<double>::realIndex(lx, y, z, n);
        EXPECT_NEAR(hf(i), hg(i), 1e-12);
      }
}

TEST(Mesh, DistributedTransformEqualsSerial) {
  const int n = 16;
  auto dw = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, 1.0);
  auto ds = std::make_shared<SlabDecomposition>(MPI_COMM_SELF, n, 1.0);
  FFT<double> fw(dw), fs(ds);
  Field<double> w(dw, "w"), s(ds, "s");
  // A field with all modes populated: a smooth but non-separable function.
  auto fill = [](Field<double>& f) {
    auto r = f.real();
    f.decomp().forEachPoint(
        "test::fill", KOKKOS_LAMBDA(const MeshPoint& p) {
          r(p.index) = km::cos(0.3 * p.x * p.y + 0.7 * p.z) + 0.01 * p.x * p.z;
        });
  };
  fill(w);
  fill(s);
  fw.forward(w);
  fs.forward(s);
  auto hw = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), w.complex());
  auto hs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), s.complex());
  double maxdiff = 0, maxval = 0;
  for (int ly = 0; ly < dw->localNy(); ++ly)
    for (int x = 0; x < n; ++x)
      for (int z = 0; z < dw->nzComplex(); ++z) {
        const auto a = hw(Field<double>::complexIndex(ly, x, z, n));
        const auto b = hs(Field<double>::complexIndex(dw->yStart() + ly, x, z, n));
        maxdiff = std::max(maxdiff, Kokkos::abs(a - b));
        maxval = std::max(maxval, Kokkos::abs(b));
      }
  EXPECT_LT(maxdiff, 1e-12 * maxval);
}
