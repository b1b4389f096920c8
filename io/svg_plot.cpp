#include "io/svg_plot.hpp"

#include "io/atomic_file.hpp"
#include "io/format.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace caustic {

namespace {
std::string escape(const std::string& s) {
  std::string o;
  for (char c : s)
    o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}
std::string num(double v) {
  return formatNumber(v, 4);
}
} // namespace

void writeSvgPlot(const std::string& path, const std::string& title, const std::string& xlabel,
                  const std::string& ylabel, const std::vector<PlotSeries>& series, bool log_y) {
  const double W = 720, H = 440, l = 80, r = 20, t = 40, b = 60; // canvas and margins [px]
  auto ok = [&](const std::pair<double, double>& p) {
    return std::isfinite(p.first) && std::isfinite(p.second) && (!log_y || p.second > 0);
  };
  auto ty = [&](double y) { return log_y ? std::log10(y) : y; };
  double x0 = std::numeric_limits<double>::max(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : series)
    for (const auto& p : s.points)
      if (ok(p)) {
        x0 = std::min(x0, p.first);
        x1 = std::max(x1, p.first);
        y0 = std::min(y0, ty(p.second));
        y1 = std::max(y1, ty(p.second));
      }
  if (x0 > x1) { // nothing to draw
    x0 = 0;
    x1 = 1;
    y0 = 0;
    y1 = 1;
  }
  if (x1 == x0)
    x1 = x0 + 1;
  if (log_y) {
    y0 = std::floor(y0);
    y1 = std::max(std::ceil(y1), y0 + 1);
  } else if (y1 == y0) {
    y1 = y0 + 1;
  }
  auto px = [&](double x) { return l + (x - x0) / (x1 - x0) * (W - l - r); };
  auto py = [&](double y) { return H - b - (ty(y) - y0) / (y1 - y0) * (H - t - b); };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">"
    << escape(title) << "</text>\n"
    << "<rect x=\"" << l << "\" y=\"" << t << "\" width=\"" << W - l - r << "\" height=\""
    << H - t - b << "\" fill=\"none\" stroke=\"black\"/>\n";
  // Ticks: 5 on x; decades (log) or 5 on y.
  for (int i = 0; i <= 4; ++i) {
    const double x = x0 + (x1 - x0) * i / 4.0;
    o << "<text x=\"" << px(x) << "\" y=\"" << H - b + 16 << "\" text-anchor=\"middle\">" << num(x)
      << "</text>\n";
  }
  const int ny = log_y ? static_cast<int>(y1 - y0) : 4;
  for (int i = 0; i <= ny; ++i) {
    const double yv = y0 + (y1 - y0) * i / ny;
    const double y = log_y ? std::pow(10.0, yv) : yv;
    o << "<line x1=\"" << l << "\" x2=\"" << W - r << "\" y1=\"" << py(y) << "\" y2=\"" << py(y)
      << "\" stroke=\"#dddddd\"/>\n<text x=\"" << l - 6 << "\" y=\"" << py(y) + 4
      << "\" text-anchor=\"end\">" << num(y) << "</text>\n";
  }
  o << "<text x=\"" << (l + W - r) / 2 << "\" y=\"" << H - 18 << "\" text-anchor=\"middle\">"
    << escape(xlabel) << "</text>\n<text x=\"18\" y=\"" << (t + H - b) / 2
    << "\" text-anchor=\"middle\" transform=\"rotate(-90 18 " << (t + H - b) / 2 << ")\">"
    << escape(ylabel) << "</text>\n";
  int k = 0;
  for (const auto& s : series) {
    o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"1.5\" points=\"";
    for (const auto& p : s.points)
      if (ok(p))
        o << px(p.first) << "," << py(p.second) << " ";
    o << "\"/>\n<text x=\"" << W - r - 10 << "\" y=\"" << t + 18 + 16 * k
      << "\" text-anchor=\"end\" fill=\"" << s.color << "\">" << escape(s.label) << "</text>\n";
    ++k;
  }
  o << "</svg>\n";
  writeTextFile(path, o.str());
}

} // namespace caustic
