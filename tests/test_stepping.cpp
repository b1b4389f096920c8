// Time-step schedule and FastPM factors.
#include "pm/stepping/schedule.hpp"
#include "pm/stepping/stepping.hpp"

#include "helpers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
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

TEST(Schedule, FusedKicksAndSynchronisedBoundaries) {
  const Cosmology c(planck());
  const FastPMFactors f(c);
  const auto a = timeSteps(0.1, 1.0, 4, Spacing::Linear); // 0.1, 0.325, 0.55, 0.775, 1
  // Step 2 ends synchronised (an output there), the others fuse their half-kicks.
  const Schedule sched(f, a, Spacing::Linear, {false, false, true, false, false});
  ASSERT_EQ(sched.size(), 4);
  using K = Operation::Kind;
  const auto& ops = sched.operations();
  // kick drift kick | drift kick(sync) | kick drift kick | drift kick(end)
  const std::vector<K> kinds = {K::Kick, K::Drift, K::Kick, K::Drift, K::Kick,
                                K::Kick, K::Drift, K::Kick, K::Drift, K::Kick};
  ASSERT_EQ(ops.size(), kinds.size());
  for (std::size_t i = 0; i < ops.size(); ++i)
    EXPECT_EQ(ops[i].kind, kinds[i]) << "operation " << i;
  auto mid = [](double x, double y) { return 0.5 * (x + y); };
  // The first kick: a_0 -> midpoint of step 1, force at a_0.
  EXPECT_DOUBLE_EQ(ops[0].factor, f.kick(a[0], mid(a[0], a[1]), a[0]));
  EXPECT_EQ(ops[0].a, a[0]);
  // A fused kick at a_1: closing half of step 1 plus opening half of step 2.
  EXPECT_DOUBLE_EQ(ops[2].factor,
                   f.kick(mid(a[0], a[1]), a[1], a[1]) + f.kick(a[1], mid(a[1], a[2]), a[1]));
  // Synchronised at a_2: the closing half alone, then step 3 opens with its own kick at a_2.
  EXPECT_DOUBLE_EQ(ops[4].factor, f.kick(mid(a[1], a[2]), a[2], a[2]));
  EXPECT_EQ(ops[5].a, a[2]);
  EXPECT_DOUBLE_EQ(ops[5].factor, f.kick(a[2], mid(a[2], a[3]), a[2]));
  EXPECT_TRUE(sched.at(3).open);
  EXPECT_FALSE(sched.at(2).open);
  EXPECT_EQ(sched.at(2).ahead, 0.0);
  EXPECT_GT(sched.at(1).ahead, 0.0);
  // Drifts: D1 difference over G_p at the midpoint.
  EXPECT_DOUBLE_EQ(ops[1].factor, f.drift(a[0], a[1], mid(a[0], a[1])));
  // The sum of all kick factors equals the kick over the whole run for a constant force only
  // approximately, but the kicks of one step's two halves add up to that step's factor pair.
  double total = 0.0;
  for (const auto& op : ops)
    if (op.kind == K::Kick)
      total += op.factor;
  double halves = 0.0;
  for (int s = 1; s <= 4; ++s)
    halves +=
        f.kick(a[s - 1], mid(a[s - 1], a[s]), a[s - 1]) + f.kick(mid(a[s - 1], a[s]), a[s], a[s]);
  EXPECT_NEAR(total, halves, 1e-12 * std::abs(halves));
  EXPECT_THROW(Schedule(f, {0.5}, Spacing::Linear), std::invalid_argument);
}
