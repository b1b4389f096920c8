#pragma once
// The PM run loop, FastPM-style: it walks the schedule (schedule.hpp) and emits events; what
// happens at them is attached by the command. Observers (observer.hpp) look at the state at
// InitialConditions, BeforeForce/AfterForce, Step and Output events; run handlers
// (run_handlers.hpp: stop signals, the NaN check, step timing and reports, checkpoints) are
// called at fixed points of every step:
//   for each step s:  stopBefore(s) [any rank, any handler: stop here] -> beforeStep(s) ->
//                     the step -> afterStep(s) -> Step/Output observers -> endOfStep(s)
//   on a stop:        onStop(steps done) [a handler may keep the state as it is, e.g. in a
//                     checkpoint; otherwise the loop synchronises the particles]
#include "pm/stepping/observer.hpp"
#include "pm/stepping/schedule.hpp"
#include "pm/stepping/stepping.hpp"

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace caustic {

// Whether `a` is one of `outputs` (to a relative 1e-10: the values come from TOML and from step
// boundaries computed from them).
bool isOutputScaleFactor(double a, const std::vector<double>& outputs);

struct RunResult {
  int steps_done = 0;
  double a_reached = 0.0;
  bool interrupted = false;
};

// Where a resumed run starts: `step` steps done, the integrator state (particles restored by the
// caller).
struct ResumePoint {
  int step = 0;
  StepperState state;
};

// What a handler sees after a step.
struct StepInfo {
  int step = 0, steps_total = 0;
  int first = 1;      // the first step of this run (after a resume: the one after it)
  double a = 0.0;     // the particles' scale factor
  StepperState state; // the integrator (p may be ahead of x)
  ParticlesRef particles;
  MPI_Comm comm = MPI_COMM_NULL;
};

class RunHandler {
public:
  virtual ~RunHandler() = default;
  virtual std::string name() const = 0;
  // Before step s: true asks the run to stop at this boundary (the loop stops if any rank's
  // handler asks). Every rank is called.
  virtual bool stopBefore(int s) {
    (void)s;
    return false;
  }
  virtual void beforeStep(int s) { (void)s; }
  // Right after the step, before the observers; may throw to end the run.
  virtual void afterStep(const StepInfo& info) { (void)info; }
  // After the observers of the step.
  virtual void endOfStep(const StepInfo& info) { (void)info; }
  // The run stops with `info.step` steps done. Returns true if the handler kept the state as it
  // is (p possibly ahead); if none does, the loop leaves the particles synchronised.
  virtual bool onStop(const StepInfo& info) {
    (void)info;
    return false;
  }
};

// T: the mesh precision; R: the particles' (double, or float with a float mesh).
template <class T, class R = double> class RunLoop {
public:
  // `boundaries`: step boundaries (timeSteps()); `outputs`: output scale factors (each one a
  // boundary); `base`: the state handed to observers (mesh, cosmology, particle set facts).
  RunLoop(NBody<T>& nbody, BasicParticles<R>& parts, std::vector<double> boundaries,
          std::vector<double> outputs, Spacing spacing, SimulationState base);
  void observe(Observer* o) { _observers.push_back(o); }
  void attach(RunHandler* h) { _handlers.push_back(h); }
  // Runs to the end or to a stop; with `resume`, continues after resume->step from the restored
  // state (no InitialConditions event). Observers are timed into nbody.times() as
  // "observer:<name>". Collective.
  RunResult run(const ResumePoint* resume = nullptr);

private:
  void notify(Event e, const SimulationState& s);
  SimulationState state(int step) const;
  StepInfo info(int step, int first) const;

  NBody<T>& _nbody;
  BasicParticles<R>& _parts;
  std::vector<double> _boundaries, _outputs;
  Spacing _spacing;
  SimulationState _base;
  std::vector<Observer*> _observers;
  std::vector<RunHandler*> _handlers;
  int _step = 0; // steps done, for the force events
};

extern template class RunLoop<float, double>;
extern template class RunLoop<double, double>;
extern template class RunLoop<float, float>;

} // namespace caustic
