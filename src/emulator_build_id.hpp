#pragma once
// The build identity the emulator runtime's loader and module compare (emulator_runtime.hpp).
// Included only by the two sides (it changes with every commit).
#include "emulator_runtime.hpp"
#include "git_commit.hpp"

#include <cstddef>
#include <string>

namespace caustic {

// What the binary and the module must share: version, git commit and the layout of what crosses
// the boundary. `static`: each side computes it from its own compilation (an external function
// would resolve to the binary's copy in both). Needs CAUSTIC_VERSION and git_commit.hpp.
static inline std::string emulatorBuildIdOfThisObject(std::size_t train_options_size) {
  return std::string(CAUSTIC_VERSION) + " " + CAUSTIC_GIT_COMMIT + " interface " +
         std::to_string(kEmulatorRuntimeInterface) + " layout " + std::to_string(sizeof(Params)) +
         "/" + std::to_string(sizeof(EmulatorHookParams)) + "/" +
         std::to_string(sizeof(ForceCorrectionRecord)) + "/" + std::to_string(train_options_size);
}

} // namespace caustic
