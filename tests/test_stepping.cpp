// Time-step schedule and FastPM factors.
#include "pm/stepping/stepping.hpp"

#include "helpers.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

using namespace caustic;
using test::planck;
using test::simpson;

TEST(TimeSteps, EqualStepsWithoutOutputs) {
  const auto lin = timeSteps(0.1, 1.0, 9, Spacing::Linear);
  ASSERT_EQ(lin.size(), 10u);
  for (int i = 0; i <= 9; ++i)
    EXPECT_NEAR(lin[i], 0.1 + 0.1 * i, 1e-14);
  const auto lg = timeSteps(0.01, 1.0, 4, Spacing::Log);
  ASSERT_EQ(lg.size(), 5u);
  for (int i = 0; i <= 4; ++i)
    EXPECT_NEAR(lg[i], std::pow(10.0, -2.0 + 0.5 * i), 1e-14);
}

TEST(TimeSteps, OutputsAreHitExactlyAndTheStepCountKept) {
  const std::vector<double> outputs = {0.33, 0.5, 0.77};
  for (Spacing sp : {Spacing::Linear, Spacing::Log}) {
    const auto a = timeSteps(0.02, 1.0, 20, sp, outputs);
    EXPECT_EQ(a.size(), 21u);
    EXPECT_EQ(a.front(), 0.02);
    EXPECT_EQ(a.back(), 1.0);
    for (double o : outputs)
      EXPECT_NE(std::find(a.begin(), a.end(), o), a.end()) << o;
    for (std::size_t i = 1; i < a.size(); ++i)
      EXPECT_GT(a[i], a[i - 1]);
  }
  // More outputs than steps: one step per segment.
  const auto a = timeSteps(0.1, 1.0, 2, Spacing::Linear, {0.2, 0.3, 0.4});
  EXPECT_EQ(a, (std::vector<double>{0.1, 0.2, 0.3, 0.4, 1.0}));
  // Outputs at the ends add nothing.
  EXPECT_EQ(timeSteps(0.1, 1.0, 3, Spacing::Linear, {0.1, 1.0}).size(), 4u);
  EXPECT_THROW(timeSteps(0.1, 1.0, 3, Spacing::Linear, {1.5}), std::invalid_argument);
}

TEST(FastPMFactors, ReduceToTheLeapfrogIntegralsForSmallSteps) {
  // drift: int da / (a^3 E), kick: int da / (a^2 E); FastPM's factors agree to O(da^3).
  const Cosmology c(planck());
  const FastPMFactors f(c);
  for (double a : {0.05, 0.3, 0.9}) {
    const double da = 1e-3 * a, ai = a - da / 2, af = a + da / 2;
    const double drift = simpson([&](double x) { return 1.0 / (x * x * x * c.E(x)); }, ai, af, 100);
    const double kick = simpson([&](double x) { return 1.0 / (x * x * c.E(x)); }, ai, af, 100);
    EXPECT_NEAR(f.drift(ai, af, a) / drift, 1.0, 1e-6) << "a = " << a;
    EXPECT_NEAR(f.kick(ai, af, a) / kick, 1.0, 1e-6) << "a = " << a;
  }
  // G_f = a^2 E dG_p/da (the growth ODE), by finite differences.
  for (double a : {0.05, 0.5, 1.0}) {
    const double h = 1e-5 * a;
    const double dGp = (f.Gp(a + h) - f.Gp(a - h)) / (2 * h);
    EXPECT_NEAR(a * a * c.E(a) * dGp / f.Gf(a), 1.0, 1e-7) << "a = " << a;
  }
}
