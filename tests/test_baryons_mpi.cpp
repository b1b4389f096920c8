// Baryonification (pm/baryons): the tabulated profiles against closed forms and independent
// quadratures, the enclosed mass of a displaced isolated halo against the BCM components, mass
// conservation, and the same displaced particles and components at any rank count.
#include "helpers.hpp"
#include "pm/baryons/baryonify.hpp"
#include "pm/particles/migrate.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

using namespace caustic;
using namespace caustic::test;

namespace {

constexpr double kPi = 3.14159265358979323846;

// Truncated NFW (rho ~ 1 / [x (1 + x)^2 (1 + x^2 / t^2)^2]) enclosed-mass shape in closed form
// (Baltz, Marshall & Oguri 2009, n = 2), independent of the code's quadrature.
double bmoShape(double x, double t) {
  const double t2 = t * t, t4 = t2 * t2, t6 = t4 * t2;
  const double pre = t2 / (2 * std::pow(1 + t2, 3));
  const double a = x / ((1 + x) * (t2 + x * x)) *
                   (x - 2 * t6 + t4 * x * (1 - 3 * x) + x * x + 2 * t2 * (1 + x - x * x));
  const double b = t * ((6 * t2 - 2) * std::atan(x / t) +
                        t * (t2 - 3) * std::log(t2 * (1 + x) * (1 + x) / (t2 + x * x)));
  return pre * (a + b);
}
double bmoTotal(double t) {
  const double t2 = t * t;
  return t2 / (2 * std::pow(1 + t2, 3)) *
         ((3 * t2 - 1) * (kPi * t - t2 - 1) + 2 * t2 * (t2 - 3) * std::log(t));
}

// The BCM model of one halo computed independently of BcmHaloProfile: closed-form NFW, gas by
// Simpson's rule in ln r on a fine grid, the central galaxy's erf, relaxation by bisection.
struct Reference {
  BcmParameters p;
  BcmBackground bg;
  double m, c, r200, rs, t, mtot, fstar, fcga, fgas, fclm, beta, gas_norm;
  Reference(const BcmParameters& p_, const BcmBackground& bg_, double m_, double c_)
      : p(p_), bg(bg_), m(m_), c(c_) {
    const double rho = 200 * kRhoCrit0 * bg.e_of_a * bg.e_of_a * std::pow(bg.a, 3);
    r200 = std::cbrt(3 * m / (4 * kPi * rho));
    rs = r200 / c;
    t = p.eps_trunc * c;
    mtot = m * bmoTotal(t) / bmoShape(c, t);
    const double fb = bg.omega_b / bg.omega_m;
    fstar = std::min(fb, p.star_amplitude * std::pow(p.star_pivot / m, p.eta));
    fcga = std::min(fstar, p.star_amplitude * std::pow(p.star_pivot / m, p.eta + p.delta_eta));
    fgas = fb - fstar;
    fclm = (bg.omega_m - bg.omega_b) / bg.omega_m + fstar - fcga;
    const double xm = std::pow(m / std::pow(10.0, p.log10_mc), p.mu);
    beta = 3 * xm / (1 + xm);
    gas_norm = 1.0;
    tabulateGas();
    gas_norm = fgas * mtot / gas_table.back();
  }
  double nfw(double r) const { return m * bmoShape(r / rs, t) / bmoShape(c, t); }
  // The gas profile's enclosed-mass shape on a fine table (trapezoid in ln r from 1e-7 r200c to
  // 1e6 r200c, 2^17 intervals), interpolated linearly in ln r.
  std::vector<double> gas_table;
  double gas_lo = 0, gas_h = 0;
  void tabulateGas() {
    const int n = 1 << 17;
    gas_lo = std::log(1e-7 * r200);
    gas_h = (std::log(1e6 * r200) - gas_lo) / n;
    auto f = [&](double lnr) {
      const double x = std::exp(lnr), u = x / (p.theta_co * r200), v = x / (p.theta_ej * r200);
      return 4 * kPi * x * x * x /
             (std::pow(1 + u, beta) * std::pow(1 + std::pow(v, p.gamma), (p.delta - beta) / p.gamma));
    };
    gas_table.assign(n + 1, 0.0);
    double f0 = f(gas_lo);
    gas_table[0] = f0 / 3; // the inner core: constant density, mass 4 pi r^3 rho / 3
    for (int i = 1; i <= n; ++i) {
      const double f1 = f(gas_lo + i * gas_h);
      gas_table[i] = gas_table[i - 1] + 0.5 * gas_h * (f0 + f1);
      f0 = f1;
    }
  }
  double gasShapeMass(double r) const {
    const double t = (std::log(r) - gas_lo) / gas_h;
    const int i = std::max(0, std::min(static_cast<int>(gas_table.size()) - 2, static_cast<int>(t)));
    const double w = t - i;
    return (1 - w) * gas_table[i] + w * gas_table[i + 1];
  }
  double gas(double r) const { return gas_norm * gasShapeMass(r); }
  double cga(double r) const { return fcga * mtot * std::erf(r / (2 * p.r_h_factor * r200)); }
  double bg_mass(double r) const { return 4.0 / 3.0 * kPi * r * r * r * bg.rhoMean(); }
  // xi(r_i) by bisection.
  double xi(double ri) const {
    const double mi = nfw(ri);
    double lo = 0.5, hi = 3.0;
    for (int it = 0; it < 80; ++it) {
      const double x = 0.5 * (lo + hi), rf = x * ri;
      const double g = x - 1 - p.a_relax * (std::pow(mi / (fclm * mi + cga(rf) + gas(rf)), p.n_relax) - 1);
      (g > 0 ? hi : lo) = x;
    }
    return 0.5 * (lo + hi);
  }
  // M_clm(< r_f): the r_i whose shell ends at r_f, by bisection in ln r_i.
  double clm(double rf) const {
    double lo = std::log(rf / 3), hi = std::log(rf / 0.5);
    for (int it = 0; it < 60; ++it) {
      const double mid = 0.5 * (lo + hi), ri = std::exp(mid);
      (xi(ri) * ri > rf ? hi : lo) = mid;
    }
    return fclm * nfw(std::exp(0.5 * (lo + hi)));
  }
  double bcm(double r) const { return clm(r) + gas(r) + cga(r) + bg_mass(r); }
};

BcmBackground background() {
  BcmBackground bg;
  bg.omega_m = 0.3;
  bg.omega_b = 0.049;
  bg.a = 1.0;
  bg.e_of_a = 1.0;
  return bg;
}

} // namespace

TEST(Baryons, ProfilesMatchClosedFormsAndIndependentQuadrature) {
  const BcmBackground bg = background();
  BcmParameters p;
  for (double m : {3e12, 1e14, 2e15}) {
    const double c = concentrationDuffy(m, bg.a);
    BcmHaloProfile h(p, bg, m, c);
    Reference ref(p, bg, m, c);
    SCOPED_TRACE("M200c = " + std::to_string(m));
    EXPECT_NEAR(h.r200c(), ref.r200, 1e-12 * ref.r200);
    EXPECT_NEAR(h.mTot(), ref.mtot, 1e-6 * ref.mtot);
    // The fractions add up to one.
    EXPECT_NEAR(h.fClm() + h.fGas() + h.fCga(), 1.0, 1e-14);
    EXPECT_NEAR(h.fClm(), ref.fclm, 1e-14);
    for (double x : {1e-3, 0.01, 0.1, 0.5, 1.0, 3.0, 10.0, 100.0}) {
      const double r = x * ref.r200;
      SCOPED_TRACE("r / r200c = " + std::to_string(x));
      // Between grid points the tables are linear in ln M - ln r: 1e-4.
      EXPECT_NEAR(h.massNfw(r), ref.nfw(r), 1e-4 * ref.nfw(r));
      EXPECT_NEAR(h.massGas(r), ref.gas(r), 2e-4 * ref.gas(r));
      EXPECT_NEAR(h.massCga(r), ref.cga(r), 1e-6 * ref.cga(r)); // M_tot by quadrature
      if (x >= 0.01 && x <= 10) {
        const double clm = ref.clm(r);
        EXPECT_NEAR(h.massClm(r), clm, 1e-4 * clm);
        // The displacement matches the enclosed masses: M_dmo(r) = M_bcm(r + d(r)).
        const double rf = r + h.displacement(r);
        const double mdmo = ref.nfw(r) + ref.bg_mass(r);
        EXPECT_NEAR(ref.bcm(rf), mdmo, 1e-3 * mdmo);
      }
    }
    // All the mass is accounted for: the components at 1e3 r200c hold M_tot (up to their tails
    // beyond, below 1e-8).
    const double rhi = 999.0 * ref.r200;
    EXPECT_NEAR(h.massClm(rhi) + h.massGas(rhi) + h.massCga(rhi), h.mTot(), 1e-8 * h.mTot());
    EXPECT_NEAR(h.massBcm(rhi), h.massDmo(rhi), 1e-10 * h.massDmo(rhi));
    // Hydrostatic pressure: positive, decreasing outwards; -dP/dr = G M rho_gas / r^2 at r200c.
    const double r1 = 0.99 * ref.r200, r2 = 1.01 * ref.r200;
    EXPECT_GT(h.pressure(r1), h.pressure(r2));
    const double dpdr = (h.pressure(r2) - h.pressure(r1)) / (r2 - r1);
    const double hse = 4.300917e-9 * (h.massBcm(ref.r200) - h.massBackground(ref.r200)) *
                       h.densityGas(ref.r200) / (ref.r200 * ref.r200);
    EXPECT_NEAR(-dpdr, hse, 0.02 * hse);
  }
}

TEST(Baryons, RejectsInvalidParametersNamingThem) {
  BcmParameters p;
  p.delta = 2.5;
  EXPECT_NE(p.check().find("delta = 2.5"), std::string::npos) << p.check();
  EXPECT_THROW(BcmHaloProfile(p, background(), 1e14, 5.0), std::invalid_argument);
  p = BcmParameters();
  p.theta_ej = 0.05;
  EXPECT_NE(p.check().find("theta_ej"), std::string::npos);
  EXPECT_EQ(BcmParameters().check(), "");
}

TEST(Baryons, FofMassConversion) {
  // m200cFromFof inverts the NFW M200c -> M200m map: an NFW halo of M200c and Duffy's c has
  // M200m found here by direct bisection on its mean enclosed density.
  const BcmBackground bg = background();
  for (double m200c : {1e12, 1e14, 1e15}) {
    const double c = concentrationDuffy(m200c, bg.a);
    const double r2 = r200c(m200c, bg), rs = r2 / c;
    auto shape = [](double x) { return std::log(1 + x) - x / (1 + x); };
    double lo = r2, hi = 10 * r2;
    for (int it = 0; it < 200; ++it) {
      const double r = 0.5 * (lo + hi);
      const double mean = m200c * shape(r / rs) / shape(c) / (4.0 / 3.0 * kPi * r * r * r);
      (mean > 200 * bg.rhoMean() ? lo : hi) = r;
    }
    const double m200m = m200c * shape(0.5 * (lo + hi) / rs) / shape(c);
    EXPECT_GT(m200m, m200c);
    EXPECT_NEAR(m200cFromFof(m200m, bg), m200c, 1e-8 * m200c);
  }
}

// An isolated halo of particles whose enclosed mass follows M_dmo (radii at the mass quantiles,
// random directions) across the periodic x boundary: after baryonification the enclosed mass
// follows the BCM components computed independently, to 1%.
TEST(Baryons, IsolatedHaloFollowsTheBcmProfile) {
  const int rank = worldRank(), size = worldSize();
  const BcmBackground bg = background();
  BcmParameters p;
  const double L = 100.0, m = 1e14, c = concentrationDuffy(m, bg.a);
  Reference ref(p, bg, m, c);
  const double rout = 18.0 * ref.r200;
  const std::size_t n = 120000;
  const double centre[3] = {0.4, 50.0, 49.0};
  auto mdmo = [&](double r) { return ref.nfw(r) + ref.bg_mass(r); };
  const double mp = mdmo(rout) / n;
  Particles all(n);
  {
    auto x = Kokkos::create_mirror_view(all.x);
    auto id = Kokkos::create_mirror_view(all.id);
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> u(-1.0, 1.0), ph(0.0, 2 * kPi);
    double r = 1e-6 * ref.r200;
    for (std::size_t k = 0; k < n; ++k) {
      const double target = (k + 0.5) * mp;
      double lo = std::log(1e-8 * ref.r200), hi = std::log(rout);
      for (int it = 0; it < 60; ++it) {
        const double mid = 0.5 * (lo + hi);
        (mdmo(std::exp(mid)) > target ? hi : lo) = mid;
      }
      r = std::exp(0.5 * (lo + hi));
      const double cz = u(rng), phi = ph(rng), sz = std::sqrt(1 - cz * cz);
      const double d[3] = {sz * std::cos(phi), sz * std::sin(phi), cz};
      for (int a = 0; a < 3; ++a)
        x(k, a) = periodicWrap(centre[a] + r * d[a], L);
      id(k) = k;
    }
    Kokkos::deep_copy(all.x, x);
    Kokkos::deep_copy(all.id, id);
  }
  Particles parts = share(all, rank, size);
  SlabDecomposition decomp(MPI_COMM_WORLD, 20, L);
  migrate(parts, decomp);
  BcmHalo halo;
  for (int a = 0; a < 3; ++a)
    halo.pos[a] = centre[a];
  halo.m200c = m;
  halo.c200c = c;
  const BaryonifyStats st = baryonify(parts, {halo}, p, bg, L);
  double dmax = st.max_displacement; // (a rank's slab may hold none of the halo's particles)
  MPI_Allreduce(MPI_IN_PLACE, &dmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  EXPECT_GT(dmax, 0.0);
  auto moved = gatherById(parts, MPI_COMM_WORLD);
  ASSERT_EQ(moved.size(), n); // no particle lost or made
  std::vector<double> radii;
  for (const auto& kv : moved) {
    double r2 = 0;
    for (int a = 0; a < 3; ++a) {
      ASSERT_GE(kv.second[a], 0.0);
      ASSERT_LT(kv.second[a], L);
      const double d = periodicDiff(kv.second[a], centre[a], L);
      r2 += d * d;
    }
    radii.push_back(std::sqrt(r2));
  }
  std::sort(radii.begin(), radii.end());
  for (double x : {0.05, 0.1, 0.3, 1.0, 2.0, 4.0, 8.0}) {
    const double r = x * ref.r200;
    const double count = std::lower_bound(radii.begin(), radii.end(), r) - radii.begin();
    const double want = ref.bcm(r);
    SCOPED_TRACE("r / r200c = " + std::to_string(x));
    EXPECT_NEAR(count * mp, want, 0.01 * want);
    // and not the DMO profile where the two differ by more than 3%
    if (std::abs(mdmo(r) / want - 1) > 0.03) {
      EXPECT_GT(std::abs(count * mp / mdmo(r) - 1), 0.02);
    }
  }
}

// Many haloes (masses 1e12-1e15 Msun/h, some on the box faces) on a particle lattice: every rank
// count gives the serial result bit for bit, displacement and components.
TEST(Baryons, RankIndependent) {
  const int rank = worldRank(), size = worldSize();
  const BcmBackground bg = background();
  BcmParameters p;
  const double L = 48.0;
  const int np = 24;
  Particles all(np * np * np);
  {
    auto x = Kokkos::create_mirror_view(all.x);
    auto id = Kokkos::create_mirror_view(all.id);
    std::mt19937_64 rng(3);
    std::normal_distribution<double> g(0.0, 0.3);
    for (int i = 0; i < np; ++i)
      for (int j = 0; j < np; ++j)
        for (int k = 0; k < np; ++k) {
          const std::size_t q = (static_cast<std::size_t>(i) * np + j) * np + k;
          const int idx[3] = {i, j, k};
          for (int a = 0; a < 3; ++a)
            x(q, a) = periodicWrap((idx[a] + 0.5) * L / np + g(rng), L);
          id(q) = q;
        }
    Kokkos::deep_copy(all.x, x);
    Kokkos::deep_copy(all.id, id);
  }
  std::vector<BcmHalo> haloes;
  {
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> u(0.0, L), lm(12.0, 15.0);
    for (int h = 0; h < 40; ++h) {
      BcmHalo hl;
      for (int a = 0; a < 3; ++a)
        hl.pos[a] = u(rng);
      if (h < 4)
        hl.pos[h % 3] = h < 3 ? 0.01 : L - 0.01; // on the faces
      hl.m200c = std::pow(10.0, lm(rng));
      hl.c200c = concentrationDuffy(hl.m200c, bg.a);
      haloes.push_back(hl);
    }
  }
  // Serial reference on every rank.
  Particles serial(all.size());
  Kokkos::deep_copy(serial.x, all.x);
  Kokkos::deep_copy(serial.id, all.id);
  const BaryonifyStats sst = baryonify(serial, haloes, p, bg, L);
  EXPECT_EQ(sst.local_haloes, haloes.size());
  const BaryonComponents scomp = baryonComponents(serial, haloes, p, bg, L, MPI_COMM_SELF);
  auto sx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), serial.x);
  // Distributed.
  Particles parts = share(all, rank, size);
  SlabDecomposition decomp(MPI_COMM_WORLD, 12, L);
  migrate(parts, decomp);
  const BaryonifyStats st = baryonify(parts, haloes, p, bg, L);
  if (size > 1) {
    EXPECT_LT(st.local_haloes, haloes.size()); // only the haloes that reach the slab
  }
  const BaryonComponents comp = baryonComponents(parts, haloes, p, bg, L, MPI_COMM_WORLD);
  auto px = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  auto pid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::size_t q = pid(i);
    for (int a = 0; a < 3; ++a)
      bad += px(i, a) != sx(q, a);
    bad += comp.gas_fraction[i] != scomp.gas_fraction[q];
    bad += comp.star_fraction[i] != scomp.star_fraction[q];
    bad += comp.pressure[i] != scomp.pressure[q];
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(sst.displaced, all.size() / 2); // haloes of up to 1e15 Msun/h reach far
  std::size_t total = parts.size();
  MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_UNSIGNED_LONG, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(total, all.size());
  // Components: fractions in range; far from every halo the gas is the cosmic fraction.
  const double fb = bg.omega_b / bg.omega_m;
  for (std::size_t q = 0; q < all.size(); ++q) {
    ASSERT_GT(scomp.gas_fraction[q], 0.0);
    ASSERT_LE(scomp.gas_fraction[q], 1.0);
    ASSERT_GE(scomp.star_fraction[q], 0.0);
    ASSERT_LT(scomp.gas_fraction[q] + scomp.star_fraction[q], 1.0);
    ASSERT_GT(scomp.pressure[q], 0.0);
  }
  // The baryons add up to f_b of the mass, and the diffuse gas fraction is the same everywhere.
  double baryons = 0;
  for (std::size_t q = 0; q < all.size(); ++q)
    baryons += scomp.gas_fraction[q] + scomp.star_fraction[q];
  EXPECT_NEAR(baryons / all.size(), fb, 1e-6);
  EXPECT_EQ(comp.diffuse_gas_fraction, scomp.diffuse_gas_fraction);
  EXPECT_GT(scomp.diffuse_gas_fraction, 0.0);
  Particles far(1);
  {
    auto x = Kokkos::create_mirror_view(far.x);
    x(0, 0) = x(0, 1) = x(0, 2) = 1.0;
    Kokkos::deep_copy(far.x, x);
  }
  BcmHalo one;
  one.pos[0] = one.pos[1] = one.pos[2] = 30.0;
  one.m200c = 1e12;
  one.c200c = 8.0;
  const BaryonComponents fc = baryonComponents(far, {one}, p, bg, L, MPI_COMM_SELF);
  // one particle, outside the halo: all its baryons are diffuse gas
  EXPECT_NEAR(fc.gas_fraction[0], fb, 1e-7);
  EXPECT_EQ(fc.star_fraction[0], 0.0);
}
