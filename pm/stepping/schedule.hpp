#pragma once
// The kick/drift/force schedule of a run, built once from its parameters: the forward stepper
// (NBody) and the reverse pass (grad/trajectory.hpp) both walk it, one forwards and one
// backwards, so that the order of operations and every factor exist in one place.
//
// A step a_i -> a_f (midpoint a_h in the stepping variable, a or ln a) is FastPM's
// kick-drift-kick (stepping.hpp):
//   open   p += F(x at a_i) kick(a_i, a_h, a_i)        only when p is synchronised at a_i
//   drift  x += p drift(a_i, a_f, a_h)
//   close  p += F(x at a_f) [kick(a_h, a_f, a_f) + kick(a_f, a'_h, a_f)]
// where the second term, the opening half-kick of the next step (a'_h its midpoint), is fused
// in unless the step ends synchronised (at outputs, at the end, or wherever observers look).
// Then p runs `ahead` of x by that half-kick and the next step has no opening kick.
#include "pm/stepping/stepping.hpp"

#include <vector>

namespace caustic {

struct ScheduledStep {
  double ai = 0.0, af = 0.0, ah = 0.0; // start, end, midpoint
  Spacing spacing = Spacing::Linear;   // of the midpoints
  bool open = false;                   // starts with its own opening kick (p synchronised at ai)
  double open_factor = 0.0;            // kick(ai, ah, ai), when open
  double drift_factor = 0.0;           // drift(ai, af, ah)
  double close_factor = 0.0;           // kick(ah, af, af) [+ ahead]: the force at af
  double ahead = 0.0; // the next step's opening half-kick fused into close_factor (0: ends synced)
  double next = 0.0;  // end of the next step when ahead != 0
};

// One operation of the flat schedule: p += factor F(x at a) (Kick), or x += factor p (Drift).
struct Operation {
  enum class Kind { Kick, Drift };
  Kind kind;
  double a;      // Kick: the force's scale factor; Drift: the end of the drift
  double factor; // kick or drift factor
  int step;      // the step (1-based) this operation belongs to
};

class Schedule {
public:
  Schedule() = default;
  // Steps through `boundaries` (timeSteps()); step s (1-based) ends synchronised if
  // synchronised_after[s] (index 0 unused; a missing entry means false) and always at the end.
  Schedule(const FastPMFactors& factors, const std::vector<double>& boundaries, Spacing spacing,
           const std::vector<bool>& synchronised_after = {});
  // One step a_i -> a_f; `open`: p is synchronised at a_i; a_next > af: fuse the next step's
  // opening half-kick (that step ends at a_next), otherwise end synchronised.
  static ScheduledStep step(const FastPMFactors& factors, double ai, double af, Spacing spacing,
                            bool open, double a_next);

  int size() const { return static_cast<int>(_steps.size()); }
  // Step s, 1-based as the run counts them.
  const ScheduledStep& at(int s) const { return _steps.at(static_cast<std::size_t>(s - 1)); }
  const std::vector<ScheduledStep>& steps() const { return _steps; }
  const std::vector<double>& boundaries() const { return _boundaries; }
  Spacing spacing() const { return _spacing; }
  // The flat operation list in forward order (kick, drift, kick, ...): a synchronised
  // boundary inside the run has two kicks (the closing one, then the next opening one).
  const std::vector<Operation>& operations() const { return _ops; }

private:
  std::vector<double> _boundaries;
  Spacing _spacing = Spacing::Linear;
  std::vector<ScheduledStep> _steps;
  std::vector<Operation> _ops;
};

} // namespace caustic
