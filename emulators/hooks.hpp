#pragma once
// In-situ emulator hooks: [emulators.NAME] sections become observers that, at their output scale
// factors, paint the model's input field on the PM mesh, check the model's validity domain,
// apply it distributed, and write the result with the model's metadata.
#include "emulators/distributed_inference.hpp"
#include "io/observers.hpp"
#include "io/params.hpp"

#include <memory>

namespace caustic {

class EmulatorHook : public Observer {
public:
  // Loads the model; throws std::runtime_error naming the file on failure.
  EmulatorHook(const Params& params, const EmulatorHookParams& hook, OutputCallback cb);
  std::string name() const override { return "emulator:" + _hook.name; }
  void observe(Event e, const SimulationState& s) override;

private:
  const Params& _params;
  EmulatorHookParams _hook;
  Model _model;
  OutputCallback _cb;
};

} // namespace caustic
