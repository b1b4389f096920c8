#include "pm/simulation.hpp"

#include "pm/profiling.hpp"

#include <chrono>
#include <cmath>

namespace caustic {

namespace {

bool isOutput(double a, const std::vector<double>& outputs) {
  for (double o : outputs)
    if (std::abs(a - o) <= 1e-10 * a)
      return true;
  return false;
}

template <class T>
void notify(NBody<T>& nbody, const std::vector<Observer*>& observers, Event e,
            const SimulationState& s) {
  for (Observer* o : observers) {
    if (!o->wants(e))
      continue;
    ScopedPhase t(nbody.times(), "observer:" + o->name());
    o->observe(e, s);
  }
}

} // namespace

template <class T>
RunResult runSimulation(NBody<T>& nbody, Particles& parts, const std::vector<double>& boundaries,
                        const std::vector<double>& outputs, Spacing spacing, SimulationState base,
                        const std::vector<Observer*>& observers,
                        const std::function<void(const StepReport&)>& report,
                        const std::function<bool()>& stop_requested) {
  ScopedRegion region("caustic::runSimulation");
  const MPI_Comm comm = base.mesh->comm().get();
  const int steps = static_cast<int>(boundaries.size()) - 1;
  RunResult result;
  nbody.start(parts, boundaries.front());
  auto state = [&](int step) {
    SimulationState s = base;
    s.a = nbody.a();
    s.step = step;
    s.steps_total = steps;
    s.particles = &parts;
    return s;
  };
  notify(nbody, observers, Event::InitialConditions, state(0));
  if (isOutput(nbody.a(), outputs))
    notify(nbody, observers, Event::Output, state(0));
  result.a_reached = nbody.a();
  double spent = 0.0;
  bool every_step = false;
  for (Observer* o : observers)
    every_step = every_step || o->wants(Event::Step);
  for (int s = 1; s <= steps; ++s) {
    int local = stop_requested && stop_requested() ? 1 : 0, any = 0;
    mpiCheck(MPI_Allreduce(&local, &any, 1, MPI_INT, MPI_MAX, comm), "runSimulation");
    if (any) {
      nbody.synchronise(parts);
      result.interrupted = true;
      break;
    }
    const auto t0 = std::chrono::steady_clock::now();
    // End synchronised where observers look; elsewhere fuse the half-kicks of two steps.
    const bool sync = every_step || s == steps || isOutput(boundaries[s], outputs);
    nbody.step(parts, boundaries[s], spacing, sync ? 0.0 : boundaries[s + 1]);
    notify(nbody, observers, Event::Step, state(s));
    if (isOutput(nbody.a(), outputs))
      notify(nbody, observers, Event::Output, state(s));
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
           dtmax = 0;
    mpiCheck(MPI_Allreduce(&dt, &dtmax, 1, MPI_DOUBLE, MPI_MAX, comm), "runSimulation");
    spent += dtmax;
    result.steps_done = s;
    result.a_reached = nbody.a();
    if (report)
      report({s, steps, nbody.a(), dtmax, spent / s * (steps - s)});
  }
  return result;
}

template RunResult runSimulation<float>(NBody<float>&, Particles&, const std::vector<double>&,
                                        const std::vector<double>&, Spacing, SimulationState,
                                        const std::vector<Observer*>&,
                                        const std::function<void(const StepReport&)>&,
                                        const std::function<bool()>&);
template RunResult runSimulation<double>(NBody<double>&, Particles&, const std::vector<double>&,
                                         const std::vector<double>&, Spacing, SimulationState,
                                         const std::vector<Observer*>&,
                                         const std::function<void(const StepReport&)>&,
                                         const std::function<bool()>&);

} // namespace caustic
