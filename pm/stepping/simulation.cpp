#include "pm/stepping/simulation.hpp"

#include "pm/core/profiling.hpp"

#include <chrono>
#include <cmath>

namespace caustic {

bool isOutputScaleFactor(double a, const std::vector<double>& outputs) {
  for (double o : outputs)
    if (std::abs(a - o) <= 1e-10 * a)
      return true;
  return false;
}

namespace {

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

// Number of particles with a non-finite coordinate or momentum on this rank.
std::size_t countNonFinite(const Particles& parts) {
  auto x = parts.x;
  auto p = parts.p;
  std::size_t bad = 0;
  Kokkos::parallel_reduce(
      "caustic::runSimulation::finiteCheck", Kokkos::RangePolicy<>(0, parts.size()),
      KOKKOS_LAMBDA(const std::size_t i, std::size_t& b) {
        bool ok = true;
        for (int c = 0; c < 3; ++c)
          ok = ok && km::isfinite(x(i, c)) && km::isfinite(p(i, c));
        b += ok ? 0 : 1;
      },
      bad);
  return bad;
}

} // namespace

template <class T>
RunResult runSimulation(NBody<T>& nbody, Particles& parts, const std::vector<double>& boundaries,
                        const std::vector<double>& outputs, Spacing spacing, SimulationState base,
                        const std::vector<Observer*>& observers,
                        const std::function<void(const StepReport&)>& report,
                        const std::function<bool()>& stop_requested,
                        const Checkpointing& checkpointing, const ResumePoint* resume) {
  ScopedRegion region("caustic::runSimulation");
  const MPI_Comm comm = base.mesh->comm().get();
  const int steps = static_cast<int>(boundaries.size()) - 1;
  RunResult result;
  int first = 1;
  if (resume) {
    nbody.restore(parts, resume->state);
    first = resume->step + 1;
  } else {
    nbody.start(parts, boundaries.front());
  }
  auto state = [&](int step) {
    SimulationState s = base;
    s.a = nbody.a();
    s.step = step;
    s.steps_total = steps;
    s.particles = &parts;
    return s;
  };
  if (!resume) {
    notify(nbody, observers, Event::InitialConditions, state(0));
    if (isOutputScaleFactor(nbody.a(), outputs))
      notify(nbody, observers, Event::Output, state(0));
  }
  result.a_reached = nbody.a();
  double spent = 0.0;
  bool every_step = false;
  for (Observer* o : observers)
    every_step = every_step || o->wants(Event::Step);
  auto last_checkpoint = std::chrono::steady_clock::now();
  auto write_checkpoint = [&](int s) {
    checkpointing.write(s, nbody.state());
    ++result.checkpoints;
    last_checkpoint = std::chrono::steady_clock::now();
  };
  result.steps_done = first - 1;
  for (int s = first; s <= steps; ++s) {
    int local = stop_requested && stop_requested() ? 1 : 0, any = 0;
    mpiCheck(MPI_Allreduce(&local, &any, 1, MPI_INT, MPI_MAX, comm), "runSimulation");
    if (any) {
      // Stopped: the checkpoint keeps the state as it is (p possibly ahead), so that a resume
      // repeats the uninterrupted run; without one, leave the particles synchronised.
      if (checkpointing.on_stop && checkpointing.write && s > first)
        write_checkpoint(s - 1);
      else
        nbody.synchronise(parts);
      result.interrupted = true;
      break;
    }
    const auto t0 = std::chrono::steady_clock::now();
    // End synchronised where observers look; elsewhere fuse the half-kicks of two steps.
    const bool sync = every_step || s == steps || isOutputScaleFactor(boundaries[s], outputs);
    nbody.step(parts, boundaries[s], spacing, sync ? 0.0 : boundaries[s + 1]);
    std::size_t bad = countNonFinite(parts), anybad = 0;
    mpiCheck(MPI_Allreduce(&bad, &anybad, 1, MPI_UINT64_T, MPI_SUM, comm), "runSimulation");
    if (anybad)
      throw NonFiniteState(std::to_string(anybad) +
                           " particle(s) with a non-finite position or momentum after step " +
                           std::to_string(s) + " (a = " + std::to_string(nbody.a()) + ")");
    notify(nbody, observers, Event::Step, state(s));
    if (isOutputScaleFactor(nbody.a(), outputs))
      notify(nbody, observers, Event::Output, state(s));
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
           dtmax = 0;
    mpiCheck(MPI_Allreduce(&dt, &dtmax, 1, MPI_DOUBLE, MPI_MAX, comm), "runSimulation");
    spent += dtmax;
    result.steps_done = s;
    result.a_reached = nbody.a();
    if (checkpointing.write && s < steps) {
      int due = checkpointing.every_steps > 0 && s % checkpointing.every_steps == 0;
      if (checkpointing.every_seconds > 0 &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - last_checkpoint)
                  .count() >= checkpointing.every_seconds)
        due = 1;
      int anydue = 0; // clocks differ between ranks: one decision for all
      mpiCheck(MPI_Allreduce(&due, &anydue, 1, MPI_INT, MPI_MAX, comm), "runSimulation");
      if (anydue)
        write_checkpoint(s);
    }
    if (report)
      report({s, steps, nbody.a(), dtmax, spent / (s - first + 1) * (steps - s)});
  }
  return result;
}

template RunResult runSimulation<float>(NBody<float>&, Particles&, const std::vector<double>&,
                                        const std::vector<double>&, Spacing, SimulationState,
                                        const std::vector<Observer*>&,
                                        const std::function<void(const StepReport&)>&,
                                        const std::function<bool()>&, const Checkpointing&,
                                        const ResumePoint*);
template RunResult runSimulation<double>(NBody<double>&, Particles&, const std::vector<double>&,
                                         const std::vector<double>&, Spacing, SimulationState,
                                         const std::vector<Observer*>&,
                                         const std::function<void(const StepReport&)>&,
                                         const std::function<bool()>&, const Checkpointing&,
                                         const ResumePoint*);

} // namespace caustic
