// Loads the emulator runtime module on demand (see emulator_runtime.hpp).
#include "emulator_runtime.hpp"
#include "emulator_build_id.hpp"

#include "commands.hpp"
#include "common.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

namespace caustic {

namespace {

const EmulatorRuntime* g_runtime = nullptr;

#ifdef CAUSTIC_WITH_TORCH
const EmulatorRuntime* load(const std::string& what) {
  const std::string path = emulatorRuntimePath();
  const std::string head = what + " needs the emulator runtime (LibTorch): ";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw ParamError(head + "its module " + path +
                     " does not exist (build the target caustic_emulator_runtime, or set "
                     "CAUSTIC_EMULATOR_RUNTIME to the module's path)");
  // RTLD_NOW: an unresolved symbol fails here, with the loader's message, not in the middle of a
  // run. Never closed: LibTorch does not support being unloaded.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = dlerror();
    throw ParamError(head + "cannot load " + path + ": " + (err ? err : "unknown error"));
  }
  dlerror();
  void* sym = dlsym(handle, "caustic_emulator_runtime_v1");
  if (!sym)
    throw ParamError(head + path + " is not a Caustic emulator runtime (no entry point)");
  using Entry = const EmulatorRuntime* (*)();
  const EmulatorRuntime* rt = reinterpret_cast<Entry>(sym)();
  const std::string mine = emulatorBuildIdOfThisObject(sizeof(TrainCommandOptions));
  if (!rt || rt->interfaceVersion() != kEmulatorRuntimeInterface || rt->buildId() != mine)
    throw ParamError(head + path + " belongs to another build (module: " +
                     (rt ? rt->buildId() : std::string("none")) + "; this caustic: " + mine +
                     "); rebuild both from the same source");
  return rt;
}
#endif

} // namespace

std::string emulatorRuntimePath() {
  if (const char* env = std::getenv("CAUSTIC_EMULATOR_RUNTIME"); env && *env)
    return env;
#ifdef CAUSTIC_EMULATOR_RUNTIME_RELATIVE
  return (std::filesystem::path(selfPath()).parent_path() / CAUSTIC_EMULATOR_RUNTIME_RELATIVE)
      .lexically_normal()
      .string();
#else
  return "";
#endif
}

const EmulatorRuntime& emulatorRuntime(const std::string& what) {
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);
  if (!g_runtime) {
#ifdef CAUSTIC_WITH_TORCH
    g_runtime = load(what);
#else
    throw ParamError(what + " needs LibTorch; this caustic was built with "
                            "CAUSTIC_ENABLE_TORCH=OFF");
#endif
  }
  return *g_runtime;
}

const EmulatorRuntime& emulatorRuntimeOnEveryRank(const RunContext& ctx, const std::string& what) {
  std::string err;
  const EmulatorRuntime* rt = nullptr;
  try {
    rt = &emulatorRuntime(what);
  } catch (const ParamError& e) {
    err = e.what();
  }
  shareAnyError(ctx, err, "emulator runtime");
  return *rt;
}

bool emulatorRuntimeLoaded() {
  return g_runtime != nullptr;
}

} // namespace caustic
