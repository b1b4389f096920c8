#include "io/tables.hpp"

#include "io/atomic_file.hpp"
#include "io/format.hpp"

#include <cstdio>
#include <sstream>

namespace caustic {

void writePowerTable(const std::string& path, const PowerSpectrum& ps,
                     const std::vector<std::string>& header,
                     const std::function<double(double)>& linear) {
  std::ostringstream out;
  for (const auto& h : header)
    out << "# " << h << "\n";
  out << "# convention: delta(k) = sum_x delta(x) exp(-i k.x), P(k) = V <|delta(k)|^2> / "
         "N_cells^2\n";
  out << "# shot noise V/N = " << ps.shot_noise << " (Mpc/h)^3, "
      << (ps.subtracted ? "subtracted" : "not subtracted") << "\n";
  out << "# columns: k [h/Mpc]  P(k) [(Mpc/h)^3]  modes" << (linear ? "  P_lin(k) [(Mpc/h)^3]" : "")
      << "\n";
  for (std::size_t i = 0; i < ps.k.size(); ++i) {
    if (linear)
      out << format("%.8e %.8e %.0f %.8e\n", ps.k[i], ps.power[i], ps.modes[i], linear(ps.k[i]));
    else
      out << format("%.8e %.8e %.0f\n", ps.k[i], ps.power[i], ps.modes[i]);
  }
  writeTextFile(path, out.str());
}

} // namespace caustic
