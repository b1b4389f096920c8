// The PM solver: readout, point-mass force, momentum conservation, linear growth, the
// Zel'dovich pancake, rank independence, and the power-spectrum estimator.
#include "helpers.hpp"
#include "pm/analysis/power_spectrum.hpp"
#include "pm/ic/initial_conditions.hpp"
#include "pm/particles/migrate.hpp"
#include "pm/stepping/stepping.hpp"

#include <gtest/gtest.h>

#include <cmath>

using namespace caustic;
using namespace caustic::test;

namespace {

double sumAll(double v) {
  double s = 0;
  MPI_Allreduce(&v, &s, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return s;
}
double maxAll(double v) {
  double s = 0;
  MPI_Allreduce(&v, &s, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return s;
}

// ICs of a run: n^3 particles in a box L at a, on `comm`, the lattice half a cell of the
// PM mesh (nmesh per side) off its points.
Particles initialParticles(MPI_Comm comm, int n, int nmesh, double L, double a, int order,
                           std::uint64_t seed, const Cosmology& cosmo, const LinearPower& power,
                           bool fixed = false) {
  auto lattice = std::make_shared<const SlabDecomposition>(comm, n, L);
  ICOptions opt;
  opt.noise = {seed, fixed, false};
  opt.lpt_order = order;
  opt.a_start = a;
  opt.lattice_offset = 0.5 * L / nmesh;
  return makeInitialConditions<double>(lattice, cosmo, power, opt);
}

} // namespace

TEST(Readout, PaintedUniformLatticeReadsUniformAndMatchesSerial) {
  const int np = 8;
  const double L = 16.0;
  Particles all(np * np * np);
  {
    auto x = Kokkos::create_mirror_view(all.x);
    for (int i = 0; i < np * np * np; ++i) {
      const int q[3] = {i / (np * np), (i / np) % np, i % np};
      for (int c = 0; c < 3; ++c)
        x(i, c) = (q[c] + 0.25) * L / np;
    }
    Kokkos::deep_copy(all.x, x);
  }
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, np, L);
  Particles mine = share(all, worldRank(), worldSize());
  migrate(mine, *d);
  for (Window win : {Window::CIC, Window::TSC}) {
    Painter<double> painter(d, win);
    Field<double> f(d, "f");
    painter.paint(f, mine.x, mine.size(), 1.0);
    Kokkos::View<double* [3]> out("out", mine.size());
    painter.readout(f, mine.x, mine.size(), out, 1, 1.0, false);
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out);
    for (std::size_t i = 0; i < mine.size(); ++i)
      EXPECT_NEAR(h(i, 1), 1.0, 1e-12) << windowName(win);
  }
  // Readout of a non-trivial field at random points: distributed equals serial.
  const auto probes_all = randomParticles(500, L, 11);
  Particles probes = share(probes_all, worldRank(), worldSize());
  migrate(probes, *d);
  auto ds = std::make_shared<SlabDecomposition>(MPI_COMM_SELF, np, L);
  Field<double> fw(d, "fw"), fs(ds, "fs");
  for (auto* f : {&fw, &fs}) {
    auto r = f->real();
    f->decomp().forEachPoint(
        "test::fill", KOKKOS_LAMBDA(const MeshPoint& p) {
          r(p.index) = km::sin(p.x + 0.3 * p.y) * km::cos(0.7 * p.z);
        });
  }
  Kokkos::View<double*[3]> ow("ow", probes.size()), os("os", probes_all.size());
  Painter<double>(d, Window::TSC).readout(fw, probes.x, probes.size(), ow, 0, 1.0, false);
  Painter<double>(ds, Window::TSC).readout(fs, probes_all.x, probes_all.size(), os, 0, 1.0, false);
  auto hw = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ow);
  auto hs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), os);
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), probes.id);
  for (std::size_t i = 0; i < probes.size(); ++i)
    EXPECT_NEAR(hw(i, 0), hs(id(i), 0), 1e-13);
}

TEST(Gravity, PointMassForceMatchesNewton) {
  // One source of the whole box mass: delta = V delta_D(x - x0) - 1, so with
  // lap phi = 3/2 Omega_m delta the periodic (Ewald) force averaged over directions is
  //   F_r = 3/2 Omega_m [-V / (4 pi r^2) + r / 3]
  // (the r/3 term is the neutralising background; the cubic-harmonic terms of the images
  // average to zero over directions).
  const int n = 128;
  const double L = 128.0, om = 0.3;
  auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, L);
  Gravity<double> gravity(d, om, GravityOptions{});
  const double x0[3] = {40.3, 70.6, 55.2};
  Particles src(d->ownerOfPosition(x0[0]) == worldRank() ? 1 : 0);
  if (src.size()) {
    auto h = Kokkos::create_mirror_view(src.x);
    for (int c = 0; c < 3; ++c)
      h(0, c) = x0[c];
    Kokkos::deep_copy(src.x, h);
  }
  // Probes on shells from 4.5 to 16.5 cells (an eighth of the box), random directions.
  const int nprobe = 6000;
  Particles all(nprobe);
  {
    std::mt19937_64 rng(5);
    std::normal_distribution<double> g;
    std::uniform_real_distribution<double> u(4.5, 16.5);
    auto h = Kokkos::create_mirror_view(all.x);
    auto id = Kokkos::create_mirror_view(all.id);
    for (int i = 0; i < nprobe; ++i) {
      double v[3] = {g(rng), g(rng), g(rng)};
      const double norm = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]), r = u(rng);
      for (int c = 0; c < 3; ++c)
        h(i, c) = periodicWrap(x0[c] + r * v[c] / norm, L);
      id(i) = i;
    }
    Kokkos::deep_copy(all.x, h);
    Kokkos::deep_copy(all.id, id);
  }
  Particles probes = share(all, worldRank(), worldSize());
  migrate(probes, *d);
  Kokkos::View<double* [3]> acc("acc", probes.size());
  gravity.force(src.x, src.size(), 1.0, probes.x, probes.size(), acc, 1.0);
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), probes.x);
  auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), acc);
  const int nb = 12; // bins of one cell from 4.5
  std::vector<double> sum(nb, 0.0), cnt(nb, 0.0), ref(nb, 0.0);
  for (std::size_t i = 0; i < probes.size(); ++i) {
    double dx[3], r2 = 0;
    for (int c = 0; c < 3; ++c) {
      dx[c] = periodicDiff(hx(i, c), x0[c], L);
      r2 += dx[c] * dx[c];
    }
    const double r = std::sqrt(r2);
    const int b = std::min(nb - 1, int(r - 4.5));
    double fr = 0;
    for (int c = 0; c < 3; ++c)
      fr += ha(i, c) * dx[c] / r;
    sum[b] += fr;
    cnt[b] += 1;
    ref[b] += 1.5 * om * (-L * L * L / (4 * M_PI * r2) + r / 3.0);
  }
  for (int b = 0; b < nb; ++b) {
    const double s = sumAll(sum[b]), c = sumAll(cnt[b]), rf = sumAll(ref[b]);
    ASSERT_GT(c, 100);
    EXPECT_NEAR(s / rf, 1.0, 0.03) << "shell r = " << 4.5 + b << ".." << 5.5 + b << " cells";
  }
}

TEST(NBody, TotalMomentumIsConserved) {
  const auto cp = planck();
  const Cosmology cosmo(cp);
  const LinearPower power = LinearPower::eisensteinHu(cp);
  const int n = 16;
  const double L = 64.0;
  Particles parts = initialParticles(MPI_COMM_WORLD, n, 2 * n, L, 0.05, 2, 17, cosmo, power);
  auto mesh = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 2 * n, L);
  NBody<double> nbody(mesh, cosmo, GravityOptions{}, double(n) * n * n);
  nbody.start(parts, 0.05);
  const auto steps = timeSteps(0.05, 1.0, 10, Spacing::Linear);
  nbody.run(parts, steps, Spacing::Linear);
  auto p = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
  double tot[3] = {0, 0, 0}, absum = 0;
  for (std::size_t i = 0; i < parts.size(); ++i)
    for (int c = 0; c < 3; ++c) {
      tot[c] += p(i, c);
      absum += std::abs(p(i, c));
    }
  absum = sumAll(absum);
  ASSERT_GT(absum, 0.0);
  for (int c = 0; c < 3; ++c)
    EXPECT_LT(std::abs(sumAll(tot[c])), 1e-10 * absum) << "component " << c;
}

TEST(NBody, LinearGrowthOfTheLargestScales) {
  // 1 Gpc/h, 10 steps from a = 0.1: the power of the three lowest k-bins grows as D1^2.
  const auto cp = planck();
  const Cosmology cosmo(cp);
  const LinearPower power = LinearPower::eisensteinHu(cp);
  const int n = 32;
  const double L = 1000.0, a0 = 0.1;
  Particles parts = initialParticles(MPI_COMM_WORLD, n, 2 * n, L, a0, 2, 4, cosmo, power);
  auto mesh = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 2 * n, L);
  NBody<double> nbody(mesh, cosmo,
                      GravityOptions{Window::CIC, GravityKernel::FiniteDifference, false},
                      double(n) * n * n);
  nbody.start(parts, a0);
  const PowerSpectrum p0 =
      measurePower<double>(parts, double(n) * n * n, mesh, nbody.gravity().fft(), {});
  nbody.run(parts, timeSteps(a0, 1.0, 10, Spacing::Linear), Spacing::Linear);
  migrate(parts, *mesh);
  const PowerSpectrum p1 =
      measurePower<double>(parts, double(n) * n * n, mesh, nbody.gravity().fft(), {});
  const double g = cosmo.D1(1.0) / cosmo.D1(a0);
  for (int b = 0; b < 3; ++b)
    EXPECT_NEAR(p1.power[b] / p0.power[b] / (g * g), 1.0, 0.005) << "k = " << p1.k[b];
}

TEST(NBody, ZeldovichPancakeFollowsTheAnalyticSolution) {
  // delta_L = A cos(k q) with A D1(1) = 1: shell crossing at a = 1. Before it the Zel'dovich
  // solution is exact: x = q + D1(a) psi(q), p = G_p(a) psi(q), psi = -A sin(k q) / k.
  // 64 sheets per wavelength, TSC and finite-difference kernels on a 64^3 mesh (with CIC or the
  // spectral kernels the largest error at a = 0.5 is 1-3% of the amplitude: Gibbs ringing of
  // the truncated 1/k^2 and the CIC kinks; see the issue note).
  const auto cp = planck();
  const Cosmology cosmo(cp);
  const FastPMFactors fac(cosmo);
  const int n = 64;
  const double L = 128.0, a0 = 0.05, a1 = 0.5, offset = 0.5 * L / n;
  const double A = 1.0 / cosmo.D1(1.0), k = 2 * M_PI / L;
  auto lattice = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, L);
  FFT<double> fft(lattice);
  Field<double> delta(lattice, "delta");
  delta.setZero();
  addCosine(delta, 1, 0, 0, A);
  Particles parts = lptParticles(lptDisplacements(delta, fft, 1), cosmo, a0, offset);
  NBody<double> nbody(lattice, cosmo,
                      GravityOptions{Window::TSC, GravityKernel::FiniteDifference, false},
                      double(n) * n * n);
  nbody.start(parts, a0);
  nbody.run(parts, timeSteps(a0, a1, 10, Spacing::Linear), Spacing::Linear);
  auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  auto p = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  const double dx_amp = cosmo.D1(a1) * A / k, dp_amp = fac.Gp(a1) * A / k;
  double ex = 0, ep = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const double q = double(id(i) / (n * n)) * L / n;
    const double psi = -A * std::sin(k * q) / k;
    ex = std::max(ex, std::abs(periodicDiff(x(i, 0), q + offset + cosmo.D1(a1) * psi, L)));
    ep = std::max(ep, std::abs(p(i, 0) - fac.Gp(a1) * psi));
    ep = std::max(ep, std::abs(p(i, 1)) + std::abs(p(i, 2)));
  }
  ex = maxAll(ex);
  ep = maxAll(ep);
  EXPECT_LT(ex, 0.005 * dx_amp) << "position error " << ex << " Mpc/h of amplitude " << dx_amp;
  EXPECT_LT(ep, 0.005 * dp_amp) << "momentum error " << ep << " of amplitude " << dp_amp;
}

TEST(NBody, FinalPositionsIndependentOfRankCount) {
  const auto cp = planck();
  const Cosmology cosmo(cp);
  const LinearPower power = LinearPower::eisensteinHu(cp);
  const int n = 16;
  const double L = 32.0; // small box: strongly non-linear by a = 1
  auto run = [&](MPI_Comm comm) {
    Particles parts = initialParticles(comm, n, 2 * n, L, 0.05, 2, 8, cosmo, power);
    auto mesh = std::make_shared<const SlabDecomposition>(comm, 2 * n, L);
    NBody<double> nbody(mesh, cosmo,
                        GravityOptions{Window::CIC, GravityKernel::FiniteDifference, false},
                        double(n) * n * n);
    nbody.start(parts, 0.05);
    nbody.run(parts, timeSteps(0.05, 1.0, 10, Spacing::Log), Spacing::Log);
    return gatherById(parts, comm);
  };
  const auto w = run(MPI_COMM_WORLD);
  const auto s = run(MPI_COMM_SELF);
  ASSERT_EQ(w.size(), s.size());
  double worst = 0, moved = 0;
  for (const auto& [id, ws] : w) {
    const auto& ss = s.at(id);
    for (int c = 0; c < 3; ++c) {
      worst = std::max(worst, std::abs(periodicDiff(ws[c], ss[c], L)));
      moved = std::max(moved, std::abs(ws[3 + c]));
    }
  }
  EXPECT_GT(moved, 0.0);
  EXPECT_LT(worst, 1e-6 * L / n) << "largest position difference " << worst << " Mpc/h";
}

TEST(NBody, SinglePrecisionParticlesFollowDoubleOnes) {
  // The same ICs stepped with x and p stored as double and as float (single-precision mesh for
  // both): the float storage rounds every drift and kick to 24 bits; by a = 1 in a mildly
  // non-linear box the positions agree to a small fraction of a cell, and stay in [0, L).
  const auto cp = planck();
  const Cosmology cosmo(cp);
  const LinearPower power = LinearPower::eisensteinHu(cp);
  const int n = 16;
  const double L = 128.0, a0 = 0.05, cell = L / (2 * n);
  Particles parts = initialParticles(MPI_COMM_WORLD, n, 2 * n, L, a0, 2, 8, cosmo, power);
  SingleParticles single = convertParticles<float>(parts);
  auto mesh = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 2 * n, L);
  const GravityOptions go{Window::CIC, GravityKernel::FiniteDifference, false};
  NBody<float> a(mesh, cosmo, go, double(n) * n * n), b(mesh, cosmo, go, double(n) * n * n);
  const auto steps = timeSteps(a0, 1.0, 10, Spacing::Linear);
  a.start(parts, a0);
  a.run(parts, steps, Spacing::Linear);
  b.start(single, a0);
  b.run(single, steps, Spacing::Linear);
  const auto d = gatherById(parts, MPI_COMM_WORLD);
  const auto f = gatherById(single, MPI_COMM_WORLD);
  ASSERT_EQ(d.size(), f.size());
  double worst_x = 0, worst_p = 0, moved = 0, pmax = 0, lo = L, hi = 0;
  for (const auto& [id, dv] : d) {
    const auto& fv = f.at(id);
    for (int c = 0; c < 3; ++c) {
      worst_x = std::max(worst_x, std::abs(periodicDiff(dv[c], fv[c], L)));
      worst_p = std::max(worst_p, std::abs(dv[3 + c] - fv[3 + c]));
      pmax = std::max(pmax, std::abs(dv[3 + c]));
      lo = std::min(lo, fv[c]);
      hi = std::max(hi, fv[c]);
    }
    moved = std::max(moved, std::abs(periodicDiff(dv[0], double(id / (n * n)) * L / n, L)));
  }
  EXPECT_GT(moved, 0.5 * cell); // the particles did move
  EXPECT_GT(worst_x, 0.0);      // and the storages differ
  EXPECT_LT(worst_x, 1e-4 * cell) << "largest position difference " << worst_x << " Mpc/h";
  EXPECT_LT(worst_p, 1e-4 * pmax) << "largest momentum difference " << worst_p;
  EXPECT_GE(lo, 0.0);
  EXPECT_LT(hi, L);
}

TEST(Particles, StoredCoordinateStaysInTheBox) {
  // Doubles just below L round up to L in float: stored as 0 (the periodic image).
  const double L = 256.0;
  const double below = std::nextafter(L, 0.0);
  EXPECT_EQ(storedCoordinate<float>(below, L), 0.0f);
  EXPECT_EQ(storedCoordinate<double>(below, L), below);
  EXPECT_EQ(storedCoordinate<float>(12.5, L), 12.5f);
  Kokkos::View<float*[3]> x("x", 1), p("p", 1);
  auto hx = Kokkos::create_mirror_view(x), hp = Kokkos::create_mirror_view(p);
  for (int c = 0; c < 3; ++c) {
    hx(0, c) = 255.99999f;
    hp(0, c) = 1.0f;
  }
  Kokkos::deep_copy(x, hx);
  Kokkos::deep_copy(p, hp);
  driftParticle(x, p, 0, 1e-5, L); // 255.99999 + 1e-5 < 256 in double, 256 in float
  Kokkos::deep_copy(hx, x);
  for (int c = 0; c < 3; ++c) {
    EXPECT_GE(hx(0, c), 0.0f);
    EXPECT_LT(hx(0, c), float(L));
  }
}

TEST(PowerSpectrum, SingleModeGivesItsAmplitude) {
  const int n = 32;
  const double L = 200.0, A = 0.37;
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, L);
  Field<double> f(d, "f");
  f.setZero();
  addCosine(f, 3, -2, 1, A); // |m| = sqrt(14) = 3.74: bin 4
  const PowerSpectrum ps = binPower(f);
  // The pair +-m carries V A^2 / 4 each; the bin mean divides by the bin's mode count.
  const double V = L * L * L;
  for (std::size_t i = 0; i < ps.k.size(); ++i) {
    const int b = int(std::floor(ps.k[i] / d->kFundamental() + 0.5));
    const double expect = b == 4 ? 2 * V * A * A / 4 / ps.modes[i] : 0.0;
    EXPECT_NEAR(ps.power[i], expect, 1e-10 * V * A * A) << "bin " << b;
  }
  // Mode counts: bin b holds the integer vectors with b - 1/2 <= |m| < b + 1/2 (6 + 12 in bin 1).
  EXPECT_EQ(ps.modes[0], 18);
}

TEST(PowerSpectrum, PoissonRandomsGiveTheAliasedShotNoise) {
  // Uniform randoms: P(k) = (V/N) sum_n W^2(k + 2 pi n / H) / W^2(k) for a compensated,
  // non-interlaced CIC estimate; for CIC the alias sum is prod_i (1 - 2/3 sin^2(k_i H/2))
  // (Jing 2005). Averaged over all bins (1.4e5 modes): 1% is ~4 sigma.
  const int n = 64;
  const double L = 100.0;
  const std::size_t N = 300000;
  auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, L);
  FFT<double> fft(d);
  const auto all = randomParticles(N, L, 99);
  Particles mine = share(all, worldRank(), worldSize());
  migrate(mine, *d);
  PowerOptions opt;
  opt.interlace = false;
  const PowerSpectrum ps = measurePower<double>(mine, double(N), d, fft, opt);
  // Expected, mode-averaged per bin.
  std::vector<double> expect(n / 2 + 1, 0.0), cnt(n / 2 + 1, 0.0);
  for (int mx = -n / 2 + 1; mx <= n / 2; ++mx)
    for (int my = -n / 2 + 1; my <= n / 2; ++my)
      for (int mz = -n / 2 + 1; mz <= n / 2; ++mz) {
        const int b = int(std::floor(std::sqrt(double(mx * mx + my * my + mz * mz)) + 0.5));
        if (b == 0 || b > n / 2)
          continue;
        double v = 1.0;
        for (int m : {mx, my, mz}) {
          const double s = M_PI * m / n, sinc = m == 0 ? 1.0 : std::sin(s) / s;
          v *= (1.0 - 2.0 / 3.0 * std::sin(s) * std::sin(s)) / std::pow(sinc, 4);
        }
        expect[b] += v;
        cnt[b] += 1;
      }
  double meas = 0, ref = 0;
  for (std::size_t i = 0; i < ps.k.size(); ++i) {
    const int b = int(std::floor(ps.k[i] / d->kFundamental() + 0.5));
    meas += ps.power[i] * ps.modes[i];
    ref += L * L * L / N * expect[b] / cnt[b] * ps.modes[i];
  }
  EXPECT_NEAR(meas / ref, 1.0, 0.01);
}

TEST(Gravity, PotentialCorrectionActsOnTheForce) {
  // A correction multiplying phi(k) by s(|k|) = 1 + k^2 R^2 changes the force of every mode k by
  // that factor; for the pancake's single mode k it scales the force by s(k) exactly.
  struct Scale : PotentialCorrection<double> {
    double R2;
    explicit Scale(double r2) : R2(r2) {}
    std::string name() const override { return "scale"; }
    std::vector<double> parameters() const override { return {}; }
    void apply(Field<double>& phi, double) const override {
      const double kf = phi.decomp().kFundamental(), r2 = R2;
      auto c = phi.complex();
      phi.decomp().forEachMode(
          "test::correction",
          KOKKOS_LAMBDA(const MeshMode& m) { c(m.index) *= 1.0 + kf * kf * m.m2() * r2; });
    }
    void vjpPotential(Field<double>& phibar, double a) const override { apply(phibar, a); }
    void vjpParameters(const Field<double>&, const Field<double>&, double,
                       std::vector<double>&) const override {}
  };
  const int n = 16;
  const double L = 64.0, R2 = 9.0, k = 2 * M_PI / L;
  auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, L);
  // Particles of a plane wave: the painted density has one dominant mode along x.
  auto lattice = d;
  FFT<double> fft(lattice);
  Field<double> delta(lattice, "delta");
  delta.setZero();
  addCosine(delta, 1, 0, 0, 0.01);
  Particles parts =
      lptParticles(lptDisplacements(delta, fft, 1), Cosmology(planck()), 1.0, 0.5 * L / n);
  migrate(parts, *d);
  Gravity<double> plain(d, 0.3, GravityOptions{}), filtered(d, 0.3, GravityOptions{});
  filtered.setPotentialCorrection(std::make_shared<Scale>(R2));
  Kokkos::View<double*[3]> a0("a0", parts.size()), a1("a1", parts.size());
  const double ntot = double(n) * n * n;
  plain.force(parts.x, parts.size(), ntot, parts.x, parts.size(), a0, 1.0);
  filtered.force(parts.x, parts.size(), ntot, parts.x, parts.size(), a1, 1.0);
  auto h0 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a0);
  auto h1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a1);
  double worst = 0, scale = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    worst = std::max(worst, std::abs(h1(i, 0) - (1 + k * k * R2) * h0(i, 0)));
    scale = std::max(scale, std::abs(h0(i, 0)));
  }
  EXPECT_GT(maxAll(scale), 0.0);
  EXPECT_LT(maxAll(worst), 1e-3 * maxAll(scale));
}

namespace {

// The spectrum a density tap measures from the force's painted density at the end of a run
// (interlaced with a shifted paint of its own, and plain) against measurePower of the same
// particles: the same estimator from an independent paint and FFT.
template <class T> void tappedSpectrumMatchesMeasurePower(double rtol) {
  const auto cp = planck();
  const Cosmology cosmo(cp);
  const LinearPower power = LinearPower::eisensteinHu(cp);
  const int n = 32, nm = 64;
  const double L = 200.0, N = double(n) * n * n;
  Particles parts = initialParticles(MPI_COMM_WORLD, n, nm, L, 0.2, 2, 11, cosmo, power);
  auto mesh = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, nm, L);
  NBody<T> nbody(mesh, cosmo, GravityOptions{}, N);
  Gravity<T>& g = nbody.gravity();
  PowerSpectrum interlaced, plain, interlaced_kept, plain_kept;
  std::size_t kept_modes = 0;
  std::vector<double> seen;
  g.setDensityTap("tap", [&](const Field<T>& rho_k, double total, double a) {
    seen.push_back(a);
    const auto shifted = g.workspace().lease("shifted");
    // The sources of the run's forces: the particles, on their slabs.
    g.painter().paint(*shifted, parts.x, parts.size(), double(nm) * nm * nm / total, 0.5);
    g.workspace().fft().forward(*shifted);
    interlaced = binCompensatedPower(rho_k, &*shifted, Window::CIC);
    plain = binCompensatedPower<T>(rho_k, nullptr, Window::CIC);
    // The same from the binned modes alone (what the run's output keeps): bit for bit.
    const BinnedModes<T> kept(rho_k);
    kept_modes = kept.size();
    interlaced_kept = binCompensatedPower(kept, &*shifted, Window::CIC);
    plain_kept = binCompensatedPower<T>(kept, nullptr, Window::CIC);
  });
  nbody.start(parts, 0.2);
  nbody.run(parts, {0.2, 0.35, 0.5}, Spacing::Linear);
  g.setDensityTap("", nullptr);
  // Forces at 0.2 (opening), 0.35 (fused) and 0.5 (closing): the last tap saw the final x.
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_DOUBLE_EQ(seen.back(), 0.5);
  // The binned modes: |m|^2 <= (N/2)^2 + N/2 among this rank's modes, counted here on the host.
  std::size_t expect_kept = 0;
  const long lim = long(nm / 2) * (nm / 2) + nm / 2;
  for (int y = mesh->yStart(); y < mesh->yStart() + mesh->localNy(); ++y)
    for (int x = 0; x < nm; ++x)
      for (int z = 0; z <= nm / 2; ++z) {
        const long mx = SlabDecomposition::signedIndex(x, nm);
        const long my = SlabDecomposition::signedIndex(y, nm);
        expect_kept += mx * mx + my * my + long(z) * z <= lim;
      }
  EXPECT_EQ(kept_modes, expect_kept);
  EXPECT_EQ(BinnedModes<T>::limit(nm), lim);
  for (auto [full, kept] : {std::pair{&interlaced, &interlaced_kept}, {&plain, &plain_kept}}) {
    ASSERT_EQ(kept->power.size(), full->power.size());
    for (std::size_t b = 0; b < full->power.size(); ++b) {
      EXPECT_EQ(kept->power[b], full->power[b]) << "bin " << b;
      EXPECT_EQ(kept->k[b], full->k[b]) << "bin " << b;
      EXPECT_EQ(kept->modes[b], full->modes[b]) << "bin " << b;
    }
  }
  PowerOptions po;
  const PowerSpectrum ref_i = measurePower<T>(parts, N, mesh, g.fft(), po);
  po.interlace = false;
  const PowerSpectrum ref_p = measurePower<T>(parts, N, mesh, g.fft(), po);
  // measurePower (one mesh and the binned modes) against densityContrastK and binPower on two
  // meshes: bit for bit.
  for (const bool il : {true, false}) {
    po.interlace = il;
    Field<T> delta(mesh, "delta"), work(mesh, "work");
    densityContrastK(delta, work, g.fft(), parts, N, po);
    const PowerSpectrum two = binPower(delta);
    const PowerSpectrum& one = il ? ref_i : ref_p;
    ASSERT_EQ(one.power.size(), two.power.size());
    for (std::size_t b = 0; b < two.power.size(); ++b)
      EXPECT_EQ(one.power[b], two.power[b]) << "bin " << b << (il ? " interlaced" : " plain");
  }
  ASSERT_EQ(interlaced.power.size(), ref_i.power.size());
  ASSERT_EQ(plain.power.size(), ref_p.power.size());
  for (std::size_t b = 0; b < ref_i.power.size(); ++b) {
    EXPECT_EQ(interlaced.modes[b], ref_i.modes[b]);
    EXPECT_DOUBLE_EQ(interlaced.k[b], ref_i.k[b]);
    EXPECT_NEAR(interlaced.power[b] / ref_i.power[b], 1.0, rtol) << "bin " << b;
    EXPECT_NEAR(plain.power[b] / ref_p.power[b], 1.0, rtol) << "bin " << b;
  }
  // The interlacing matters near the Nyquist frequency: the two estimates differ there, so the
  // comparison above can tell them apart.
  EXPECT_GT(std::abs(plain.power.back() / interlaced.power.back() - 1.0), 100 * rtol);
}

} // namespace

TEST(PowerSpectrum, DensityTapOfTheForceMatchesMeasurePowerFloat) {
  tappedSpectrumMatchesMeasurePower<float>(2e-5);
}

TEST(PowerSpectrum, DensityTapOfTheForceMatchesMeasurePowerDouble) {
  tappedSpectrumMatchesMeasurePower<double>(1e-10);
}
