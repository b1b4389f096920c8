#include "pm/stepping/simulation.hpp"

#include "pm/core/profiling.hpp"

#include <cmath>

namespace caustic {

bool isOutputScaleFactor(double a, const std::vector<double>& outputs) {
  for (double o : outputs)
    if (std::abs(a - o) <= 1e-10 * a)
      return true;
  return false;
}

template <class T, class R>
RunLoop<T, R>::RunLoop(NBody<T>& nbody, BasicParticles<R>& parts, std::vector<double> boundaries,
                       std::vector<double> outputs, Spacing spacing, SimulationState base)
    : _nbody(nbody), _parts(parts), _boundaries(std::move(boundaries)),
      _outputs(std::move(outputs)), _spacing(spacing), _base(std::move(base)) {}

template <class T, class R> SimulationState RunLoop<T, R>::state(int step) const {
  SimulationState s = _base;
  s.a = _nbody.a();
  s.step = step;
  s.steps_total = static_cast<int>(_boundaries.size()) - 1;
  s.particles = ParticlesRef(_parts);
  return s;
}

template <class T, class R> StepInfo RunLoop<T, R>::info(int step, int first) const {
  StepInfo i;
  i.step = step;
  i.steps_total = static_cast<int>(_boundaries.size()) - 1;
  i.first = first;
  i.a = _nbody.a();
  i.state = _nbody.state();
  i.particles = ParticlesRef(_parts);
  i.comm = _base.mesh->comm().get();
  return i;
}

template <class T, class R> void RunLoop<T, R>::notify(Event e, const SimulationState& s) {
  for (Observer* o : _observers) {
    if (!o->wants(e))
      continue;
    ScopedPhase t(_nbody.times(), "observer:" + o->name());
    o->observe(e, s);
  }
}

template <class T, class R> RunResult RunLoop<T, R>::run(const ResumePoint* resume) {
  ScopedRegion region("caustic::RunLoop::run");
  const MPI_Comm comm = _base.mesh->comm().get();
  const int steps = static_cast<int>(_boundaries.size()) - 1;
  RunResult result;
  int first = 1;
  if (resume) {
    _nbody.restore(_parts, resume->state);
    first = resume->step + 1;
  } else {
    _nbody.start(_parts, _boundaries.front());
  }
  // The schedule, built once: steps end synchronised where observers look; elsewhere the
  // half-kicks of two steps are fused.
  bool every_step = false, force_events = false;
  for (Observer* o : _observers) {
    every_step = every_step || o->wants(Event::Step);
    force_events = force_events || o->wants(Event::BeforeForce) || o->wants(Event::AfterForce);
  }
  std::vector<bool> sync(_boundaries.size(), every_step);
  for (std::size_t s = 1; s < _boundaries.size(); ++s)
    sync[s] = every_step || isOutputScaleFactor(_boundaries[s], _outputs);
  const Schedule schedule(_nbody.factors(), _boundaries, _spacing, sync);
  if (force_events)
    _nbody.setForceHook([this](bool after, double a) {
      SimulationState s = state(_step);
      s.a = a;
      notify(after ? Event::AfterForce : Event::BeforeForce, s);
    });
  _step = first - 1;
  if (!resume) {
    notify(Event::InitialConditions, state(0));
    if (isOutputScaleFactor(_nbody.a(), _outputs))
      notify(Event::Output, state(0));
  }
  result.a_reached = _nbody.a();
  result.steps_done = first - 1;
  for (int s = first; s <= steps; ++s) {
    int local = 0, any = 0;
    for (RunHandler* h : _handlers)
      local = h->stopBefore(s) ? 1 : local;
    mpiCheck(MPI_Allreduce(&local, &any, 1, MPI_INT, MPI_MAX, comm), "RunLoop::run");
    if (any) {
      bool kept = false;
      const StepInfo stop = info(s - 1, first);
      for (RunHandler* h : _handlers)
        kept = h->onStop(stop) || kept;
      if (!kept)
        _nbody.synchronise(_parts);
      result.interrupted = true;
      break;
    }
    for (RunHandler* h : _handlers)
      h->beforeStep(s);
    _nbody.step(_parts, schedule.at(s));
    _step = s;
    const StepInfo done = info(s, first);
    for (RunHandler* h : _handlers)
      h->afterStep(done);
    notify(Event::Step, state(s));
    if (isOutputScaleFactor(_nbody.a(), _outputs))
      notify(Event::Output, state(s));
    result.steps_done = s;
    result.a_reached = _nbody.a();
    for (RunHandler* h : _handlers)
      h->endOfStep(done);
  }
  _nbody.setForceHook(nullptr);
  return result;
}

template class RunLoop<float, double>;
template class RunLoop<double, double>;
template class RunLoop<float, float>;

} // namespace caustic
