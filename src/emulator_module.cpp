// The emulator runtime module (libcaustic_emulator_runtime.so): the LibTorch side of `caustic`,
// loaded on demand by src/emulator_runtime.cpp. Its undefined symbols (the engine, the commands'
// shared code) resolve against the caustic binary that loads it.
#include "emulator_build_id.hpp"
#include "emulator_runtime.hpp"

#include "commands.hpp"
#include "emulators/force/neural_correction.hpp"
#include "emulators/hooks/group_hook.hpp"
#include "emulators/hooks/hooks.hpp"

#include <torch/version.h>

namespace caustic {

namespace {

template <class T>
std::shared_ptr<const PotentialCorrection<T>> neuralSpline(const ForceCorrectionRecord& r) {
  torch::set_num_threads(1); // parallelism comes from the MPI ranks
  try {
    const auto cfg = NeuralSplineConfig::fromJson(r.architecture, "force correction");
    const std::size_t want = NeuralSplineCorrection<T>::parameterCount(cfg);
    if (r.theta.size() != want) // (an empty theta would otherwise be a fresh network)
      throw ParamError("gravity.correction: the neural_spline record has " +
                       std::to_string(r.theta.size()) + " parameters; its architecture needs " +
                       std::to_string(want));
    return std::make_shared<const NeuralSplineCorrection<T>>(cfg, r.theta);
  } catch (const nlohmann::json::exception& e) {
    throw ParamError("gravity.correction: malformed architecture (" + std::string(e.what()) + ")");
  } catch (const std::invalid_argument& e) {
    throw ParamError("gravity.correction: " + std::string(e.what()));
  }
}

class TorchRuntime final : public EmulatorRuntime {
public:
  int interfaceVersion() const override { return kEmulatorRuntimeInterface; }
  std::string buildId() const override {
    return emulatorBuildIdOfThisObject(sizeof(TrainCommandOptions));
  }
  std::string libtorchVersion() const override { return TORCH_VERSION; }
  std::unique_ptr<Observer> makeHook(const Params& params, const EmulatorHookParams& hook,
                                     OutputCallback cb) const override {
    if (isGroupSurrogateFile(hook.model))
      return std::make_unique<GroupSurrogateHook>(params, hook, std::move(cb));
    return std::make_unique<EmulatorHook>(params, hook, std::move(cb));
  }
  std::shared_ptr<const PotentialCorrection<float>>
  neuralSplineFloat(const ForceCorrectionRecord& r) const override {
    return neuralSpline<float>(r);
  }
  std::shared_ptr<const PotentialCorrection<double>>
  neuralSplineDouble(const ForceCorrectionRecord& r) const override {
    return neuralSpline<double>(r);
  }
  int train(RunContext& ctx, const TrainCommandOptions& opt) const override {
    return runTrainCommand(ctx, opt);
  }
};

} // namespace

} // namespace caustic

extern "C" const caustic::EmulatorRuntime* caustic_emulator_runtime_v1() {
  static const caustic::TorchRuntime runtime;
  return &runtime;
}
