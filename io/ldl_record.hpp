#pragma once
// The record of an LDL baryon painter written by `caustic ldl-fit` (ldl.json): what the in-situ
// hook ([emulators.NAME] kind = "ldl") needs to paint, and the domain it was fitted on.
#include <string>
#include <vector>

namespace caustic {

struct LdlRecord {
  std::string field;              // the target it paints (e.g. gas_density)
  int layers = 0, mesh = 0;
  double box = 0.0, a = 0.0;      // [Mpc/h], scale factor of the training pairs
  std::vector<double> parameters; // 5 per layer, then 3
};

// Throws std::runtime_error naming the file and the key that is missing or wrong.
LdlRecord readLdlRecord(const std::string& path);

} // namespace caustic
