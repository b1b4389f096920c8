#pragma once
// A small valid parameter text for tests that need a Params (headers, hashes), not a run: the
// shared test cosmology (tests/data/cosmology.toml, CAUSTIC_TEST_DATA_DIR) and a small box.
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace caustic::test {

inline std::string sharedCosmologyToml() {
  const std::string path = std::string(CAUSTIC_TEST_DATA_DIR) + "/cosmology.toml";
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("test data: cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string smallParamsToml(double box, int particles, int mesh, int steps) {
  return sharedCosmologyToml() + "[simulation]\nbox = " + std::to_string(box) +
         "\nparticles = " + std::to_string(particles) + "\nmesh = " + std::to_string(mesh) +
         "\na_start = 0.1\na_end = 1.0\nsteps = " + std::to_string(steps) + R"(
seed = 1
[output]
directory = "unused"
a = [1.0]
)";
}

} // namespace caustic::test
