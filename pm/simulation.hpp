#pragma once
// The PM run loop: steps through the boundaries, calls observers at events, stops cleanly at a
// step boundary when asked (signals), and reports one line per step.
#include "pm/observer.hpp"
#include "pm/stepping.hpp"

#include <functional>
#include <vector>

namespace caustic {

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
};

// `boundaries`: step boundaries (timeSteps()); `outputs`: output scale factors (each one a
// boundary). `stop_requested` is polled on every rank at each boundary; the run stops if any
// rank asks. Observers are timed into nbody.times() as "observer:<name>". Collective.
template <class T>
RunResult runSimulation(NBody<T>& nbody, Particles& parts, const std::vector<double>& boundaries,
                        const std::vector<double>& outputs, Spacing spacing, SimulationState base,
                        const std::vector<Observer*>& observers,
                        const std::function<void(const StepReport&)>& report,
                        const std::function<bool()>& stop_requested);

} // namespace caustic
