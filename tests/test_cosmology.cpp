// Background, growth and linear power against independent computations.
#include "pm/cosmology/cosmology.hpp"
#include "pm/cosmology/linear_power.hpp"

#include "io/snapshot.hpp"

#include "helpers.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>

using namespace caustic;
using test::planck;
using test::simpson;

namespace {

// LCDM growing mode D1 ∝ E(a) int_0^a da' / (a' E(a'))^3, with a' = t^2 to make the
// integrand smooth at 0 (it behaves as a'^(3/2)).
double analyticD1(const Cosmology& c, double a) {
  auto integral = [&](double x) {
    return simpson(
        [&](double t) {
          if (t == 0.0)
            return 0.0;
          const double ap = t * t;
          const double e = c.E(ap);
          return 2.0 * t / std::pow(ap * e, 3);
        },
        0.0, std::sqrt(x), 20000);
  };
  return c.E(a) * integral(a) / (c.E(1.0) * integral(1.0));
}

} // namespace

// The cosmic time of snapshots (Header Time_GYR) against the closed forms of Einstein-de Sitter,
// t = 2/3 a^1.5 / H0, and flat LCDM, t = 2 / (3 H0 sqrt(OL)) asinh(sqrt(OL / Om) a^1.5);
// 1/H0 = 9.7779222 Gyr / h (with 1 Mpc = 3.0856776e24 cm; the snapshots' UnitLength_in_cm,
// 3.085678e24, is 1.4e-7 larger).
TEST(Cosmology, CosmicTimeMatchesClosedForms) {
  CosmologyParams p = planck();
  const double hubble_time = 9.7779222 / p.h;
  for (double a : {0.02, 0.5, 1.0}) {
    const double ol = 1.0 - p.Omega_m;
    const double lcdm =
        2.0 / (3.0 * std::sqrt(ol)) * std::asinh(std::sqrt(ol / p.Omega_m) * std::pow(a, 1.5));
    EXPECT_NEAR(cosmicTimeGyr(p, a) / (hubble_time * lcdm), 1.0, 1e-6) << "a = " << a;
  }
  EXPECT_NEAR(cosmicTimeGyr(p, 1.0), 13.80, 0.01); // Planck 2015 (without radiation)
  p.Omega_m = 1.0;
  EXPECT_NEAR(cosmicTimeGyr(p, 0.5) / (hubble_time * 2.0 / 3.0 * std::pow(0.5, 1.5)), 1.0, 1e-6);
}

TEST(Cosmology, EofAIsOneToday) {
  Cosmology c(planck());
  EXPECT_NEAR(c.E(1.0), 1.0, 1e-14);
  // Matter domination: E^2 -> Omega_m a^-3.
  EXPECT_NEAR(c.E(1e-3) / std::sqrt(0.3089 * 1e9), 1.0, 1e-6);
}

TEST(Cosmology, DlnEMatchesFiniteDifference) {
  CosmologyParams p = planck();
  p.w0 = -0.9;
  p.wa = 0.2;
  Cosmology c(p);
  for (double a : {0.05, 0.3, 0.7, 1.0}) {
    const double h = 1e-5;
    const double fd = (std::log(c.E(a * std::exp(h))) - std::log(c.E(a * std::exp(-h)))) / (2 * h);
    EXPECT_NEAR(c.dlnE_dlna(a), fd, 1e-8) << "a = " << a;
  }
}

TEST(Cosmology, GrowthD1MatchesLCDMIntegral) {
  for (double om : {0.25, 0.3089, 0.5, 1.0}) {
    CosmologyParams p = planck();
    p.Omega_m = om;
    Cosmology c(p);
    EXPECT_NEAR(c.D1(1.0), 1.0, 1e-12);
    for (double a : {0.01, 0.02, 0.1, 0.25, 0.5, 0.8, 1.0, 1.5}) {
      const double ref = analyticD1(c, a);
      EXPECT_NEAR(c.D1(a) / ref, 1.0, 1e-6) << "Omega_m = " << om << ", a = " << a;
    }
  }
}

TEST(Cosmology, GrowthRateMatchesFiniteDifference) {
  Cosmology c(planck());
  for (double a : {0.02, 0.2, 0.6, 1.0}) {
    const double h = 1e-4;
    const double fd1 =
        (std::log(c.D1(a * std::exp(h))) - std::log(c.D1(a * std::exp(-h)))) / (2 * h);
    const double fd2 =
        (std::log(-c.D2(a * std::exp(h))) - std::log(-c.D2(a * std::exp(-h)))) / (2 * h);
    EXPECT_NEAR(c.f1(a), fd1, 1e-7) << "a = " << a;
    EXPECT_NEAR(c.f2(a), fd2, 1e-7) << "a = " << a;
    // f1 ~ Omega_m(a)^0.55 (Linder 2005) to better than 1% in LCDM.
    EXPECT_NEAR(c.f1(a) / std::pow(c.Omega_m_a(a), 0.55), 1.0, 1e-2);
  }
}

TEST(Cosmology, SecondOrderGrowthMatchesBouchetApproximation) {
  for (double om : {0.2, 0.3089, 0.6}) {
    CosmologyParams p = planck();
    p.Omega_m = om;
    Cosmology c(p);
    for (double a : {0.01, 0.1, 0.5, 1.0}) {
      const double d1 = c.D1(a);
      const double approx = -3.0 / 7.0 * d1 * d1 * std::pow(c.Omega_m_a(a), -1.0 / 143.0);
      EXPECT_NEAR(c.D2(a) / approx, 1.0, 1e-2) << "Omega_m = " << om << ", a = " << a;
    }
  }
}

TEST(Cosmology, EinsteinDeSitterIsExact) {
  CosmologyParams p = planck();
  p.Omega_m = 1.0;
  Cosmology c(p);
  for (double a : {0.01, 0.3, 1.0}) {
    EXPECT_NEAR(c.D1(a), a, 1e-9);
    EXPECT_NEAR(c.D2(a), -3.0 / 7.0 * a * a, 1e-9);
    EXPECT_NEAR(c.f1(a), 1.0, 1e-8);
    EXPECT_NEAR(c.f2(a), 2.0, 1e-8);
  }
}

TEST(Cosmology, OutOfRangeScaleFactorThrows) {
  Cosmology c(planck());
  EXPECT_THROW(c.D1(1e-6), std::domain_error);
  EXPECT_THROW(c.D1(10.0), std::domain_error);
}

TEST(LinearPower, SigmaEightIsNormalised) {
  const auto p = planck();
  const LinearPower lp = LinearPower::eisensteinHu(p);
  // Independent quadrature: Simpson in ln k on another grid and range.
  const double lo = std::log(1e-6), hi = std::log(1e4);
  const double s2 = simpson(
      [&](double lk) {
        const double k = std::exp(lk);
        const double w = tophatWindow(8.0 * k);
        return k * k * k * lp(k) * w * w;
      },
      lo, hi, 200000);
  const double sigma8 = std::sqrt(s2 / (2.0 * M_PI * M_PI));
  EXPECT_NEAR(sigma8 / p.sigma8, 1.0, 1e-4);
  EXPECT_NEAR(lp.sigma(8.0) / p.sigma8, 1.0, 1e-6);
}

TEST(LinearPower, EisensteinHuLimitsAndShape) {
  const auto p = planck();
  EisensteinHu eh(p);
  EXPECT_NEAR(eh.transfer(1e-5), 1.0, 1e-3);
  // Sound horizon at the drag epoch for Planck-like parameters is ~150 Mpc (EH98 fit).
  EXPECT_GT(eh.soundHorizon(), 140.0);
  EXPECT_LT(eh.soundHorizon(), 160.0);
  // Transfer function decreasing overall; at k = 1 h/Mpc of order 5e-3 (BBKS with Gamma = 0.2 gives
  // 6e-3).
  EXPECT_LT(eh.transfer(1.0), 0.02);
  EXPECT_GT(eh.transfer(1.0), 0.002);
  // P(k) peaks near k_eq ~ 0.015-0.02 h/Mpc.
  const LinearPower lp = LinearPower::eisensteinHu(p);
  double kpeak = 0, pmax = 0;
  for (double lk = -4; lk < 0; lk += 0.001) {
    const double k = std::pow(10.0, lk);
    if (lp(k) > pmax) {
      pmax = lp(k);
      kpeak = k;
    }
  }
  EXPECT_GT(kpeak, 0.01);
  EXPECT_LT(kpeak, 0.03);
}

TEST(LinearPower, TabulatedInterpolatesAndRefusesOutsideRange) {
  const auto p = planck();
  const LinearPower eh = LinearPower::eisensteinHu(p);
  const std::string path = ::testing::TempDir() + "caustic_pk_table.dat";
  {
    std::ofstream out(path);
    out << "# k [h/Mpc]   P [(Mpc/h)^3]  (CLASS-like header)\n";
    for (int i = 0; i <= 3000; ++i) {
      const double k = std::pow(10.0, -5.0 + 8.0 * i / 3000.0);
      char line[96];
      std::snprintf(line, sizeof line, "%.12e %.12e\n", k, eh(k));
      out << line;
    }
  }
  const LinearPower tab = LinearPower::fromTable(path, p, false);
  for (double k : {1e-3, 0.0123, 0.1, 0.37, 2.0})
    EXPECT_NEAR(tab(k) / eh(k), 1.0, 2e-4) << "k = " << k;
  EXPECT_THROW(tab(1e-6), std::domain_error);
  EXPECT_THROW(tab(1e4), std::domain_error);
  EXPECT_THROW(tab.requireRange(1e-6, 1.0, "power.file"), std::runtime_error);
  // Renormalised table: sigma8 as asked.
  CosmologyParams q = p;
  q.sigma8 = 0.7;
  const LinearPower ren = LinearPower::fromTable(path, q, true);
  EXPECT_NEAR(ren.sigma(8.0), 0.7, 1e-4);
  EXPECT_NEAR(ren(0.1) / tab(0.1), (0.7 / 0.8159) * (0.7 / 0.8159), 1e-3);
}
