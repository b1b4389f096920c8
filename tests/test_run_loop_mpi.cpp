// The run loop: events at the right places (force events once per force computation of the
// schedule, outputs at output boundaries), handlers that stop a run, and the loop's result equal
// to stepping by hand through the same schedule.
#include "helpers.hpp"
#include "pm/ic/initial_conditions.hpp"
#include "pm/stepping/run_handlers.hpp"
#include "pm/stepping/simulation.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace caustic;
using test::planck;

namespace {

struct Recorder : Observer {
  std::vector<std::pair<Event, double>> seen;
  std::string name() const override { return "recorder"; }
  bool wants(Event e) const override { return e != Event::Step; }
  void observe(Event e, const SimulationState& s) override { seen.emplace_back(e, s.a); }
  int count(Event e) const {
    int c = 0;
    for (const auto& [ev, a] : seen)
      c += ev == e ? 1 : 0;
    return c;
  }
};

struct StopAt : RunHandler {
  int at;
  int stops = 0;
  explicit StopAt(int s) : at(s) {}
  std::string name() const override { return "stop_at"; }
  bool stopBefore(int s) override { return s == at && test::worldRank() == 0; }
  bool onStop(const StepInfo&) override {
    ++stops;
    return false;
  }
};

struct RunSetup {
  CosmologyParams cp = planck();
  Cosmology cosmo{cp};
  LinearPower power = LinearPower::eisensteinHu(cp);
  int n = 8;
  double L = 32.0;
  std::shared_ptr<const SlabDecomposition> lattice =
      std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, L);
  std::shared_ptr<const SlabDecomposition> mesh =
      std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 2 * n, L);
  Particles particles() const {
    ICOptions opt;
    opt.noise.seed = 3;
    opt.a_start = 0.1;
    opt.lattice_offset = 0.5 * L / (2 * n);
    return makeInitialConditions<double>(lattice, cosmo, power, opt);
  }
  SimulationState base() const {
    SimulationState s;
    s.mesh = mesh;
    s.cosmology = &cosmo;
    s.total_particles = double(n) * n * n;
    return s;
  }
};

} // namespace

TEST(RunLoop, EventsFollowTheScheduleAndTheResultEqualsSteppingByHand) {
  RunSetup s;
  const std::vector<double> outputs = {0.4, 1.0};
  const auto boundaries = timeSteps(0.1, 1.0, 6, Spacing::Linear, outputs);
  Particles a = s.particles();
  NBody<double> nbody(s.mesh, s.cosmo, GravityOptions{}, double(s.n) * s.n * s.n);
  RunLoop<double> loop(nbody, a, boundaries, outputs, Spacing::Linear, s.base());
  Recorder rec;
  loop.observe(&rec);
  const RunResult r = loop.run();
  EXPECT_EQ(r.steps_done, 6);
  EXPECT_FALSE(r.interrupted);
  // One force computation per kick of the schedule (synchronised at the outputs only).
  std::vector<bool> sync(boundaries.size());
  for (std::size_t i = 1; i < boundaries.size(); ++i)
    sync[i] = isOutputScaleFactor(boundaries[i], outputs);
  const Schedule sched(nbody.factors(), boundaries, Spacing::Linear, sync);
  int kicks = 0;
  for (const auto& op : sched.operations())
    kicks += op.kind == Operation::Kind::Kick ? 1 : 0;
  EXPECT_EQ(rec.count(Event::BeforeForce), kicks);
  EXPECT_EQ(rec.count(Event::AfterForce), kicks);
  EXPECT_EQ(rec.count(Event::Output), 2);
  EXPECT_EQ(rec.count(Event::InitialConditions), 1);
  // Stepping by hand through the same schedule gives the same particles, bit for bit.
  Particles b = s.particles();
  NBody<double> hand(s.mesh, s.cosmo, GravityOptions{}, double(s.n) * s.n * s.n);
  hand.start(b, boundaries.front());
  for (const auto& st : sched.steps())
    hand.step(b, st);
  ASSERT_EQ(a.size(), b.size());
  auto xa = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a.x);
  auto xb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b.x);
  for (std::size_t i = 0; i < a.size(); ++i)
    for (int c = 0; c < 3; ++c)
      ASSERT_EQ(xa(i, c), xb(i, c));
}

TEST(RunLoop, AHandlerOnOneRankStopsEveryRankSynchronised) {
  RunSetup s;
  const auto boundaries = timeSteps(0.1, 1.0, 6, Spacing::Linear);
  Particles parts = s.particles();
  NBody<double> nbody(s.mesh, s.cosmo, GravityOptions{}, double(s.n) * s.n * s.n);
  RunLoop<double> loop(nbody, parts, boundaries, {1.0}, Spacing::Linear, s.base());
  StopAt stop(4);
  StepTimer timer;
  int reports = 0;
  StepReporter reporter(timer, [&](const StepReport& r) {
    ++reports;
    EXPECT_GE(r.seconds, 0.0);
  });
  loop.attach(&stop);
  loop.attach(&timer);
  loop.attach(&reporter);
  const RunResult r = loop.run();
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.steps_done, 3);
  EXPECT_EQ(reports, 3);
  EXPECT_EQ(stop.stops, 1); // every rank is told, the one that asked included
  EXPECT_TRUE(nbody.synchronised());
  EXPECT_DOUBLE_EQ(nbody.a(), boundaries[3]);
}
