#pragma once
// The PM run loop: steps through the boundaries, calls observers at events, stops cleanly at a
// step boundary when asked (signals), and reports one line per step.
#include "pm/stepping/observer.hpp"
#include "pm/stepping/stepping.hpp"

#include <functional>
#include <stdexcept>
#include <vector>

namespace caustic {

// Whether `a` is one of `outputs` (to a relative 1e-10: the values come from TOML and from step
// boundaries computed from them).
bool isOutputScaleFactor(double a, const std::vector<double>& outputs);

struct StepReport {
  int step = 0, steps_total = 0;
  double a = 0.0;
  double seconds = 0.0;     // wall time of this step (max over ranks)
  double eta_seconds = 0.0; // estimate for the remaining steps
};

struct RunResult {
  int steps_done = 0;
  double a_reached = 0.0;
  bool interrupted = false;
  int checkpoints = 0; // written by this run
};

// When to write checkpoints; `write` (collective) gets the steps done and the integrator state
// (p may be half a step ahead: the state says so, and a resume continues exactly).
struct Checkpointing {
  int every_steps = 0;        // 0: never
  double every_seconds = 0.0; // wall time between checkpoints; 0: never
  bool on_stop = false;       // when stopped (signal), before returning
  std::function<void(int step, const StepperState& state)> write;
};

// Where a resumed run starts: `step` steps done, the integrator state (particles restored by the
// caller).
struct ResumePoint {
  int step = 0;
  StepperState state;
};

// Particles with a non-finite position or momentum: the run stops before any observer sees them.
class NonFiniteState : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// `boundaries`: step boundaries (timeSteps()); `outputs`: output scale factors (each one a
// boundary). `stop_requested` is polled on every rank at each boundary; the run stops if any
// rank asks. Observers are timed into nbody.times() as "observer:<name>". After every step the
// particles are checked for NaN/Inf (NonFiniteState, on every rank). With `resume`, the run
// continues after resume->step from the restored state (no InitialConditions event).
// Collective.
template <class T>
RunResult runSimulation(NBody<T>& nbody, Particles& parts, const std::vector<double>& boundaries,
                        const std::vector<double>& outputs, Spacing spacing, SimulationState base,
                        const std::vector<Observer*>& observers,
                        const std::function<void(const StepReport&)>& report,
                        const std::function<bool()>& stop_requested,
                        const Checkpointing& checkpointing = {},
                        const ResumePoint* resume = nullptr);

} // namespace caustic
