#pragma once
// The emulator runtime: everything of `caustic` that needs LibTorch (in-situ emulator hooks,
// neural_spline force corrections, `caustic train`) lives in a module loaded on demand
// (libcaustic_emulator_runtime.so, built from emulators/ and src/emulator_module.cpp), so that a
// run without an emulator neither maps LibTorch (about 170 MB per rank) nor pays its start-up.
//
// The module is found relative to the binary, as the MPI launcher is: <tree>/bin/caustic ->
// <tree>/<libdir>/caustic/libcaustic_emulator_runtime.so (build tree: <build>/src/caustic ->
// <build>/<libdir>/caustic/...); the environment variable CAUSTIC_EMULATOR_RUNTIME names another
// file. The module resolves the engine's symbols against the binary that loads it (which exports
// them), so there is one copy of every piece of engine state; it must come from the same build:
// the loader checks an interface version, the Caustic version and git commit, and the size of
// the parameter structures, and refuses a module that differs.
#include "io/force_correction_record.hpp"
#include "io/observers.hpp"
#include "io/params.hpp"
#include "pm/force/force_correction.hpp"
#include "pm/stepping/observer.hpp"

#include <cstddef>
#include <memory>
#include <string>

namespace caustic {

class RunContext;
struct TrainCommandOptions;

// Bumped whenever this class changes.
inline constexpr int kEmulatorRuntimeInterface = 1;

class EmulatorRuntime {
public:
  virtual ~EmulatorRuntime() = default;
  // What the loader checks against its own build before using anything else.
  virtual int interfaceVersion() const = 0;
  virtual std::string buildId() const = 0;
  // The LibTorch version the module runs with.
  virtual std::string libtorchVersion() const = 0;
  // An in-situ hook for [emulators.NAME] (loads the model, checks its domain; throws
  // std::runtime_error naming the file, ValidityError outside the domain unless forced).
  virtual std::unique_ptr<Observer> makeHook(const Params& params, const EmulatorHookParams& hook,
                                             OutputCallback cb) const = 0;
  // The potential correction of a neural_spline record (throws ParamError when malformed).
  virtual std::shared_ptr<const PotentialCorrection<float>>
  neuralSplineFloat(const ForceCorrectionRecord& r) const = 0;
  virtual std::shared_ptr<const PotentialCorrection<double>>
  neuralSplineDouble(const ForceCorrectionRecord& r) const = 0;
  // `caustic train` (both kinds: U-Net emulators and force corrections). Returns the exit code.
  virtual int train(RunContext& ctx, const TrainCommandOptions& opt) const = 0;
};

// The runtime, loaded on first use. `what` names the setting that needs it (for the error).
// Throws ParamError when this caustic was built without LibTorch or the module cannot be loaded
// or belongs to another build, naming the file and the reason. Collective in effect: every rank
// loads it for the same setting.
const EmulatorRuntime& emulatorRuntime(const std::string& what);

// emulatorRuntime on every rank of ctx's communicator together: when it cannot be loaded on
// some rank, every rank throws the ParamError of the lowest such rank. Collective.
const EmulatorRuntime& emulatorRuntimeOnEveryRank(const RunContext& ctx, const std::string& what);

// Whether the runtime was loaded in this process (recorded in the run summary).
bool emulatorRuntimeLoaded();

// The module's file this binary looks for (CAUSTIC_EMULATOR_RUNTIME or beside the binary).
std::string emulatorRuntimePath();

} // namespace caustic

// The module's one entry point (C linkage, looked up by name with dlsym).
extern "C" const caustic::EmulatorRuntime* caustic_emulator_runtime_v1();
