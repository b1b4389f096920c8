#pragma once
// A small valid parameter text for tests that need a Params (headers, hashes), not a run.
#include <string>

namespace caustic::test {

inline std::string smallParamsToml(double box, int particles, int mesh, int steps) {
  return R"(
[cosmology]
Omega_m = 0.3
Omega_b = 0.05
h = 0.7
n_s = 0.96
sigma8 = 0.8
[simulation]
box = )" +
         std::to_string(box) + "\nparticles = " + std::to_string(particles) +
         "\nmesh = " + std::to_string(mesh) +
         "\na_start = 0.1\na_end = 1.0\nsteps = " + std::to_string(steps) + R"(
seed = 1
[output]
directory = "unused"
a = [1.0]
)";
}

} // namespace caustic::test
