#pragma once
// The run handlers a command attaches to RunLoop (simulation.hpp): each policy of the run loop
// in its own class.
#include "pm/stepping/simulation.hpp"

#include <chrono>
#include <functional>
#include <stdexcept>

namespace caustic {

// Stops the run at the next step boundary when `requested()` says so on any rank (signals).
class StopRequest : public RunHandler {
public:
  explicit StopRequest(std::function<bool()> requested) : _requested(std::move(requested)) {}
  std::string name() const override { return "stop_request"; }
  bool stopBefore(int) override { return _requested && _requested(); }

private:
  std::function<bool()> _requested;
};

// Particles with a non-finite position or momentum: the run stops before any observer sees them.
class NonFiniteState : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Throws NonFiniteState on every rank when any particle has a NaN or Inf after a step.
class NonFiniteCheck : public RunHandler {
public:
  std::string name() const override { return "non_finite_check"; }
  void afterStep(const StepInfo& info) override;
};

struct StepReport {
  int step = 0, steps_total = 0;
  double a = 0.0;
  double seconds = 0.0;     // wall time of this step with its observers (max over ranks)
  double eta_seconds = 0.0; // estimate for the remaining steps
};

// Wall time of every step (the step and its observers; max over ranks) and the ETA.
class StepTimer : public RunHandler {
public:
  std::string name() const override { return "step_timer"; }
  void beforeStep(int) override { _t0 = std::chrono::steady_clock::now(); }
  void endOfStep(const StepInfo& info) override;
  const StepReport& last() const { return _last; }

private:
  std::chrono::steady_clock::time_point _t0;
  double _spent = 0.0;
  StepReport _last;
};

// Calls `report` after every step with the timer's figures (attach it after the timer and
// after anything whose time should not count in the step, e.g. checkpoints).
class StepReporter : public RunHandler {
public:
  StepReporter(const StepTimer& timer, std::function<void(const StepReport&)> report)
      : _timer(timer), _report(std::move(report)) {}
  std::string name() const override { return "step_reporter"; }
  void endOfStep(const StepInfo&) override {
    if (_report)
      _report(_timer.last());
  }

private:
  const StepTimer& _timer;
  std::function<void(const StepReport&)> _report;
};

// When to write checkpoints; `write` (collective) gets the steps done and the integrator state
// (p may be half a step ahead: the state says so, and a resume continues exactly).
struct Checkpointing {
  int every_steps = 0;        // 0: never
  double every_seconds = 0.0; // wall time between checkpoints; 0: never
  bool on_stop = false;       // when stopped (signal), before returning
  std::function<void(int step, const StepperState& state)> write;
};

// Writes checkpoints every N steps or M seconds (one collective decision: clocks differ between
// ranks; never after the last step), and on a stop after at least one step of this run.
class CheckpointWriter : public RunHandler {
public:
  explicit CheckpointWriter(Checkpointing c)
      : _c(std::move(c)), _last(std::chrono::steady_clock::now()) {}
  std::string name() const override { return "checkpoints"; }
  void endOfStep(const StepInfo& info) override;
  bool onStop(const StepInfo& info) override;
  int written() const { return _written; }

private:
  void write(const StepInfo& info);
  Checkpointing _c;
  std::chrono::steady_clock::time_point _last;
  int _written = 0;
};

} // namespace caustic
