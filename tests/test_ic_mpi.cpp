// White noise, LPT and initial conditions: rank independence against serial references,
// resolution independence, analytic 2LPT solutions, and the power of fixed-amplitude ICs.
#include "helpers.hpp"
#include "pm/analysis/power_spectrum.hpp"
#include "pm/ic/initial_conditions.hpp"
#include "pm/particles/migrate.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

using namespace caustic;

namespace {

using test::addCosine;
using test::planck;
using HostComplex = Kokkos::View<Kokkos::complex<double>*, Kokkos::HostSpace>;

HostComplex hostModes(const Field<double>& f) {
  return Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f.complex());
}

bool sameBits(const Kokkos::complex<double>& a, const Kokkos::complex<double>& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

} // namespace

TEST(WhiteNoise, BitIdenticalAtAnyRankCount) {
  const int n = 32;
  auto dw = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, 100.0);
  auto ds = std::make_shared<SlabDecomposition>(MPI_COMM_SELF, n, 100.0);
  Field<double> w(dw, "w"), s(ds, "s");
  const NoiseOptions opt{12345, false, false};
  fillWhiteNoise(w, opt);
  fillWhiteNoise(s, opt);
  auto hw = hostModes(w), hs = hostModes(s);
  long mismatches = 0, checked = 0;
  for (int ly = 0; ly < dw->localNy(); ++ly)
    for (int x = 0; x < n; ++x)
      for (int z = 0; z < dw->nzComplex(); ++z) {
        ++checked;
        if (!sameBits(hw(Field<double>::complexIndex(ly, x, z, n)),
                      hs(Field<double>::complexIndex(dw->yStart() + ly, x, z, n))))
          ++mismatches;
      }
  EXPECT_EQ(mismatches, 0) << "of " << checked;
}

TEST(WhiteNoise, ModeValuesIndependentOfMeshSize) {
  // Every non-Nyquist mode of a 32^3 mesh has the same value on a distributed 64^3 mesh.
  auto d64 = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, 64, 100.0);
  auto d32 = std::make_shared<SlabDecomposition>(MPI_COMM_SELF, 32, 100.0);
  Field<double> f64(d64, "f64"), f32(d32, "f32");
  const NoiseOptions opt{777, false, false};
  fillWhiteNoise(f64, opt);
  fillWhiteNoise(f32, opt);
  auto h64 = hostModes(f64), h32 = hostModes(f32);
  long compared = 0, mismatches = 0;
  for (int ly = 0; ly < d64->localNy(); ++ly)
    for (int x = 0; x < 64; ++x)
      for (int z = 0; z < 16; ++z) {
        const int mx = SlabDecomposition::signedIndex(x, 64);
        const int my = SlabDecomposition::signedIndex(d64->yStart() + ly, 64);
        if (std::abs(mx) >= 16 || std::abs(my) >= 16)
          continue;
        const int x32 = (mx + 32) % 32, y32 = (my + 32) % 32;
        ++compared;
        if (!sameBits(h64(Field<double>::complexIndex(ly, x, z, 64)),
                      h32(Field<double>::complexIndex(y32, x32, z, 32))))
          ++mismatches;
      }
  EXPECT_EQ(mismatches, 0) << "of " << compared;
  long total = 0;
  MPI_Allreduce(&compared, &total, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(total, 31L * 31 * 16); // mx, my in (-16, 16), mz in [0, 16)
}

TEST(WhiteNoise, HermitianUnitVarianceAndOptions) {
  const int n = 32;
  auto ds = std::make_shared<SlabDecomposition>(MPI_COMM_SELF, n, 100.0);
  Field<double> f(ds, "f"), fixed(ds, "fixed"), paired(ds, "paired");
  fillWhiteNoise(f, {5, false, false});
  fillWhiteNoise(fixed, {5, true, false});
  fillWhiteNoise(paired, {5, false, true});
  auto h = hostModes(f), hf = hostModes(fixed), hp = hostModes(paired);
  double sum2 = 0;
  long count = 0;
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x)
      for (int z = 0; z <= n / 2; ++z) {
        const auto i = Field<double>::complexIndex(y, x, z, n);
        const int mx = SlabDecomposition::signedIndex(x, n),
                  my = SlabDecomposition::signedIndex(y, n);
        const bool nyq = std::abs(mx) == n / 2 || std::abs(my) == n / 2 || z == n / 2;
        if (nyq || (mx == 0 && my == 0 && z == 0)) {
          EXPECT_EQ(Kokkos::abs(h(i)), 0.0);
          continue;
        }
        sum2 += h(i).real() * h(i).real() + h(i).imag() * h(i).imag();
        ++count;
        EXPECT_NEAR(Kokkos::abs(hf(i)), 1.0, 1e-14);
        EXPECT_NEAR(std::arg(std::complex<double>(hf(i).real(), hf(i).imag())),
                    std::arg(std::complex<double>(h(i).real(), h(i).imag())), 1e-12);
        EXPECT_EQ(hp(i).real(), -h(i).real());
        EXPECT_EQ(hp(i).imag(), -h(i).imag());
        if (z == 0) { // both members of the pair stored: exact conjugates
          const auto j = Field<double>::complexIndex((n - y) % n, (n - x) % n, 0, n);
          EXPECT_EQ(h(j).real(), h(i).real());
          EXPECT_EQ(h(j).imag(), -h(i).imag());
        }
      }
  // <|xi|^2> = 1 with ~16000 modes: 5 sigma is 4%.
  EXPECT_NEAR(sum2 / count, 1.0, 0.04);
}

TEST(LPT, DisplacementsIndependentOfRankCount) {
  const int n = 32;
  const Cosmology cosmo(planck());
  const LinearPower power = LinearPower::eisensteinHu(planck());
  auto run = [&](MPI_Comm comm) {
    auto d = std::make_shared<SlabDecomposition>(comm, n, 64.0);
    FFT<double> fft(d);
    Field<double> delta(d, "delta");
    fillWhiteNoise(delta, {99, false, false});
    applyLinearPower(delta, power);
    return lptDisplacements(delta, fft, 2);
  };
  const auto w = run(MPI_COMM_WORLD);
  const auto s = run(MPI_COMM_SELF);
  const auto& dw = w.psi1[0]->decomp();
  for (int order = 1; order <= 2; ++order)
    for (int c = 0; c < 3; ++c) {
      const auto& fw = order == 1 ? *w.psi1[c] : *w.psi2[c];
      const auto& fs = order == 1 ? *s.psi1[c] : *s.psi2[c];
      auto hs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), fs.real());
      double maxval = 0;
      for (std::size_t i = 0; i < hs.extent(0); ++i) // padding included: it holds zeros
        maxval = std::max(maxval, std::abs(hs(i)));
      EXPECT_GT(maxval, 0.0);
      // Each rank's points against the same global points of the single-rank solution.
      const double tol = 1e-12 * maxval;
      auto rw = fw.real(), rs = fs.real();
      double off = 0;
      dw.reducePoints(
          "test::compare",
          KOKKOS_LAMBDA(const MeshPoint& p, double& acc) {
            const double d = rw(p.index) - rs(Field<double>::realIndex(p.x, p.y, p.z, n));
            acc += km::fabs(d) < tol ? 0.0 : 1.0;
          },
          off);
      EXPECT_EQ(off, 0.0) << "order " << order << " component " << c << ": points off by " << tol
                          << " or more";
    }
}

TEST(LPT, SecondOrderVanishesForAPlaneWave) {
  const int n = 16;
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, 50.0);
  FFT<double> fft(d);
  Field<double> delta(d, "delta");
  delta.setZero();
  addCosine(delta, 2, 1, 0, 0.3); // a single plane wave along (2, 1, 0)
  const auto lpt = lptDisplacements(delta, fft, 2);
  double max1 = 0, max2 = 0;
  for (int c = 0; c < 3; ++c) {
    auto h1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lpt.psi1[c]->real());
    auto h2 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lpt.psi2[c]->real());
    for (int lx = 0; lx < d->localNx(); ++lx)
      for (int y = 0; y < n; ++y)
        for (int z = 0; z < n; ++z) {
          const auto i = Field<double>::realIndex(lx, y, z, n);
          max1 = std::max(max1, std::abs(h1(i)));
          max2 = std::max(max2, std::abs(h2(i)));
        }
  }
  double g1 = 0, g2 = 0;
  MPI_Allreduce(&max1, &g1, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(&max2, &g2, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  EXPECT_GT(g1, 0.1);
  EXPECT_LT(g2, 1e-13 * g1);
}

TEST(LPT, CrossedPlaneWavesMatchAnalyticSecondOrder) {
  // delta = A cos(k1 x) + B cos(k2 y):
  //   psi1 = (-A sin(k1 x)/k1, -B sin(k2 y)/k2, 0)
  //   psi2 = A B / (k1^2 + k2^2) (k1 sin(k1 x) cos(k2 y), k2 cos(k1 x) sin(k2 y), 0)
  const int n = 16;
  const double L = 40.0, A = 0.4, B = 0.25;
  const int m1 = 2, m2 = 3;
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, L);
  FFT<double> fft(d);
  Field<double> delta(d, "delta");
  delta.setZero();
  addCosine(delta, m1, 0, 0, A);
  addCosine(delta, 0, m2, 0, B);
  const auto lpt = lptDisplacements(delta, fft, 2);
  const double k1 = 2 * M_PI * m1 / L, k2 = 2 * M_PI * m2 / L, H = L / n;
  std::array<
      decltype(Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lpt.psi1[0]->real())), 3>
      p1, p2;
  for (int c = 0; c < 3; ++c) {
    p1[c] = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lpt.psi1[c]->real());
    p2[c] = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), lpt.psi2[c]->real());
  }
  const double s2 = A * B / (k1 * k1 + k2 * k2);
  for (int lx = 0; lx < d->localNx(); ++lx)
    for (int y = 0; y < n; ++y)
      for (int z = 0; z < n; ++z) {
        const double X = (d->xStart() + lx) * H, Y = y * H;
        const auto i = Field<double>::realIndex(lx, y, z, n);
        EXPECT_NEAR(p1[0](i), -A * std::sin(k1 * X) / k1, 1e-12);
        EXPECT_NEAR(p1[1](i), -B * std::sin(k2 * Y) / k2, 1e-12);
        EXPECT_NEAR(p1[2](i), 0.0, 1e-12);
        EXPECT_NEAR(p2[0](i), s2 * k1 * std::sin(k1 * X) * std::cos(k2 * Y), 1e-12);
        EXPECT_NEAR(p2[1](i), s2 * k2 * std::cos(k1 * X) * std::sin(k2 * Y), 1e-12);
        EXPECT_NEAR(p2[2](i), 0.0, 1e-12);
      }
}

TEST(LPT, ParticlesCarryLatticeIdsAndFastPMMomenta) {
  const int n = 16;
  const double L = 80.0, a = 0.05;
  const Cosmology cosmo(planck());
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, L);
  FFT<double> fft(d);
  Field<double> delta(d, "delta");
  delta.setZero();
  addCosine(delta, 1, 0, 0, 0.5);
  const auto lpt = lptDisplacements(delta, fft, 1);
  const Particles parts = lptParticles(lpt, cosmo, a);
  auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  auto p = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  ASSERT_EQ(parts.size(), std::size_t(d->localNx()) * n * n);
  const double k = 2 * M_PI / L, H = L / n;
  const double d1 = cosmo.D1(a), v1 = a * a * cosmo.E(a) * d1 * cosmo.f1(a);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto q = id(i);
    const int qi = int(q / (n * n)), qj = int((q / n) % n), qk = int(q % n);
    const double psi = -0.5 * std::sin(k * qi * H) / k;
    EXPECT_NEAR(x(i, 0), periodicWrap(qi * H + d1 * psi, L), 1e-10);
    EXPECT_NEAR(x(i, 1), qj * H, 1e-10);
    EXPECT_NEAR(x(i, 2), qk * H, 1e-10);
    EXPECT_NEAR(p(i, 0), v1 * psi, 1e-12);
    EXPECT_NEAR(p(i, 1), 0.0, 1e-12);
  }
}

TEST(InitialConditions, FixedAmplitudePowerMatchesLinearTheory) {
  // 64^3 particles, fixed amplitude: no cosmic variance, so each bin of the painted
  // (CIC, compensated, interlaced) spectrum equals the mode-averaged linear spectrum.
  // Painted on a 128^3 mesh (B = 2, the run default): a lattice sitting on the mesh points
  // of a B = 1 mesh makes the compensated CIC estimate ~2% high near k_Nyq/2 (the linear
  // response of CIC at its kinks is not the sinc^2 window), which is an estimator effect.
  const int n = 64;
  const double L = 256.0, a = 0.02;
  const auto cp = planck();
  const Cosmology cosmo(cp);
  const LinearPower power = LinearPower::eisensteinHu(cp);
  auto lattice = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, L);
  ICOptions opt;
  opt.noise = {2024, true, false};
  opt.lpt_order = 2;
  opt.a_start = a;
  Particles parts = makeInitialConditions<double>(lattice, cosmo, power, opt);
  auto mesh = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 2 * n, L);
  FFT<double> fft(mesh);
  migrate(parts, *mesh);
  const PowerSpectrum ps =
      measurePower<double>(parts, double(n) * n * n, mesh, fft, PowerOptions{});
  // Reference: mean of D1^2 P_lin(|k|) over the modes of each bin (all m in the cube, Nyquist
  // planes excluded as in the noise).
  const double kf = 2 * M_PI / L, g2 = cosmo.D1(a) * cosmo.D1(a);
  std::map<int, std::pair<double, double>> ref;
  for (int mx = -n / 2 + 1; mx < n / 2; ++mx)
    for (int my = -n / 2 + 1; my < n / 2; ++my)
      for (int mz = -n / 2 + 1; mz < n / 2; ++mz) {
        const double m = std::sqrt(double(mx * mx + my * my + mz * mz));
        const int b = int(std::floor(m + 0.5));
        if (b == 0 || b > n / 4)
          continue;
        ref[b].first += g2 * power(kf * m);
        ref[b].second += 1;
      }
  const double khalf = 0.5 * M_PI * n / L; // half the particle Nyquist frequency
  int checked = 0;
  for (std::size_t i = 0; i < ps.k.size(); ++i) {
    if (ps.k[i] >= khalf)
      continue;
    const int b = int(std::floor(ps.k[i] / kf + 0.5));
    ASSERT_TRUE(ref.count(b));
    const double expect = ref[b].first / ref[b].second;
    EXPECT_NEAR(ps.power[i] / expect, 1.0, 0.01) << "k = " << ps.k[i];
    ++checked;
  }
  EXPECT_GE(checked, 14);
}
