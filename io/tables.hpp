#pragma once
// Plain-text tables (power spectra), written by one rank, atomically.
#include "pm/analysis/power_spectrum.hpp"

#include <functional>
#include <string>
#include <vector>

namespace caustic {

// Columns: k [h/Mpc], P(k) [(Mpc/h)^3], modes, and P_lin(k) [(Mpc/h)^3] if `linear` is given
// (evaluated at the bin's mean k). `header` lines are written as '#' comments first.
void writePowerTable(const std::string& path, const PowerSpectrum& ps,
                     const std::vector<std::string>& header,
                     const std::function<double(double)>& linear = nullptr);

} // namespace caustic
