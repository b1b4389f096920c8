#pragma once
// A dependency-free line plot as SVG (loss curves written by `caustic train` without Python).
#include <string>
#include <utility>
#include <vector>

namespace caustic {

struct PlotSeries {
  std::string label;
  std::string color; // SVG colour, e.g. "#1f77b4"
  std::vector<std::pair<double, double>>
      points; // (x, y); non-finite or, with log_y, y <= 0 skipped
};

// Writes `path` atomically. With `log_y` the y axis is logarithmic (decades labelled).
void writeSvgPlot(const std::string& path, const std::string& title, const std::string& xlabel,
                  const std::string& ylabel, const std::vector<PlotSeries>& series, bool log_y);

} // namespace caustic
