// Distributed results against a serial reference computed in the same test (as heFFTe tests
// do): every rank solves the small problem alone on MPI_COMM_SELF and checks its own piece of
// the distributed solution, at 1/2/3 ranks, in float and double. The tolerances scale with the
// precision: the two solutions differ only by rounding (paint order, FFT decomposition).
#include "helpers.hpp"
#include "pm/analysis/power_spectrum.hpp"
#include "pm/ic/initial_conditions.hpp"
#include "pm/particles/migrate.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace caustic;

namespace {

// Relative tolerance: a few hundred rounding errors of T (float 6e-5, double 1.1e-13).
template <class T> double tolerance() {
  return 500.0 * std::numeric_limits<T>::epsilon();
}

double sumAll(double v) {
  double s = 0;
  mpiCheck(MPI_Allreduce(&v, &s, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "sumAll");
  return s;
}

constexpr int kLattice = 32;
constexpr double kBox = 128.0;

const LinearPower& linearPower() {
  static const LinearPower p = LinearPower::eisensteinHu(test::planck());
  return p;
}

template <class T> Field<T> linearDensity(std::shared_ptr<const Decomposition> d) {
  Field<T> delta(d, "test::delta");
  fillWhiteNoise(delta, {31, false, false});
  applyLinearPower(delta, linearPower());
  return delta;
}

// The power spectrum of 2LPT particles at a = 0.5, painted on a mesh twice as fine (CIC,
// compensated, interlaced), the whole pipeline on `comm`.
template <class T> PowerSpectrum pipelinePower(MPI_Comm comm) {
  const Cosmology cosmo(test::planck());
  auto lattice = std::make_shared<const Decomposition>(comm, kLattice, kBox);
  ICOptions opt;
  opt.noise = {31, false, false};
  opt.a_start = 0.5;
  opt.lattice_offset = 0.25 * kBox / kLattice;
  Particles parts = makeInitialConditions<T>(lattice, cosmo, linearPower(), opt);
  auto mesh = std::make_shared<const Decomposition>(comm, 2 * kLattice, kBox);
  migrate(parts, *mesh);
  const FFT<T> fft(mesh);
  return measurePower<T>(parts, double(kLattice) * kLattice * kLattice, mesh, fft, {});
}

} // namespace

template <class T> class SerialReference : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(SerialReference, Precisions);

TYPED_TEST(SerialReference, PowerSpectrumEqualsSerial) {
  using T = TypeParam;
  const PowerSpectrum dist = pipelinePower<T>(MPI_COMM_WORLD);
  const PowerSpectrum serial = pipelinePower<T>(MPI_COMM_SELF);
  ASSERT_EQ(dist.k.size(), serial.k.size());
  ASSERT_EQ(dist.k.size(), std::size_t(kLattice)); // bins 1..N/2 of the 2N mesh
  for (std::size_t b = 0; b < dist.k.size(); ++b) {
    EXPECT_EQ(dist.modes[b], serial.modes[b]) << "bin " << b;
    // Mode sums in double: the same to double rounding whatever T.
    EXPECT_NEAR(dist.k[b], serial.k[b], 1e-13 * serial.k[b]) << "bin " << b;
    EXPECT_GT(serial.power[b], 0.0) << "bin " << b;
    EXPECT_NEAR(dist.power[b], serial.power[b], tolerance<T>() * serial.power[b])
        << "bin " << b << " k = " << serial.k[b];
  }
}

TYPED_TEST(SerialReference, LptDisplacementModesEqualSerial) {
  // psi1 and psi2 back in Fourier space: each rank compares its y-slab of modes with the same
  // modes of the serial solution (global indices address the single-rank field directly).
  using T = TypeParam;
  const int n = kLattice;
  auto dw = std::make_shared<const Decomposition>(MPI_COMM_WORLD, n, kBox);
  auto ds = std::make_shared<const Decomposition>(MPI_COMM_SELF, n, kBox);
  const FFT<T> fw(dw), fs(ds);
  const LptFields<T> w = lptDisplacements(linearDensity<T>(dw), fw, 2);
  const LptFields<T> s = lptDisplacements(linearDensity<T>(ds), fs, 2);
  for (int order = 1; order <= 2; ++order)
    for (int c = 0; c < 3; ++c) {
      Field<T>& a = order == 1 ? *w.psi1[c] : *w.psi2[c];
      Field<T>& b = order == 1 ? *s.psi1[c] : *s.psi2[c];
      fw.forward(a);
      fs.forward(b);
      auto ca = a.complex(), cb = b.complex();
      // Scale: the rms mode amplitude of the serial solution.
      double power = 0;
      ds->reduceModes(
          "test::power",
          KOKKOS_LAMBDA(const MeshMode& m, double& acc) {
            const double re = cb(m.index).real(), im = cb(m.index).imag();
            acc += m.weight * (re * re + im * im);
          },
          power);
      const double limit = tolerance<T>() * std::sqrt(power / (double(n) * n * n));
      ASSERT_GT(limit, 0.0);
      double bad = 0, checked = 0;
      dw->reduceModes(
          "test::compare",
          KOKKOS_LAMBDA(const MeshMode& m, double& acc) {
            const auto u = ca(m.index);
            const auto v = cb(Field<T>::complexIndex(m.iy, m.ix, m.iz, n));
            const double dr = double(u.real()) - v.real(), di = double(u.imag()) - v.imag();
            acc += km::sqrt(dr * dr + di * di) > limit ? 1.0 : 0.0;
          },
          bad);
      dw->reduceModes(
          "test::count", KOKKOS_LAMBDA(const MeshMode&, double& acc) { acc += 1.0; }, checked);
      EXPECT_EQ(bad, 0.0) << "order " << order << " component " << c << ": modes off by more than "
                          << limit;
      EXPECT_EQ(sumAll(checked), double(n) * n * (n / 2 + 1)) << "every mode checked once";
    }
}
