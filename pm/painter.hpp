#pragma once
// Mass assignment windows (CIC, TSC) for painting particles onto a distributed mesh.
//
// A particle at x contributes mass m W(x - x_i) to mesh points x_i = i H (H the cell size); the
// painted field is a mass per cell. Particles must be on the rank owning their x-plane
// (migrate.hpp); contributions to planes of other ranks go through ghost planes that are
// summed onto their owners, across several ranks when a slab is thinner than the window.
#include "pm/mesh.hpp"
#include "pm/particles.hpp"

#include <string>

namespace caustic {

enum class Window { CIC = 2, TSC = 3 };

// Order p of the window: its Fourier transform is prod_i sinc(k_i H / 2)^p.
inline int windowOrder(Window w) {
  return static_cast<int>(w);
}
Window windowFromName(const std::string& name); // "cic" | "tsc", throws std::invalid_argument
std::string windowName(Window w);

// Weights of the (up to) 3 mesh points touched along one axis by a particle at u (in cells):
// first index i0 and weights w[0..order-1] for points i0, i0 + 1, ...
KOKKOS_INLINE_FUNCTION void windowWeights(Window win, double u, int& i0, double w[3]) {
  if (win == Window::CIC) {
    const double f = km::floor(u);
    const double d = u - f;
    i0 = static_cast<int>(f);
    w[0] = 1.0 - d;
    w[1] = d;
    w[2] = 0.0;
  } else {
    const double r = km::floor(u + 0.5);
    const double d = u - r;
    i0 = static_cast<int>(r) - 1;
    w[0] = 0.5 * (0.5 - d) * (0.5 - d);
    w[1] = 0.75 - d * d;
    w[2] = 0.5 * (0.5 + d) * (0.5 + d);
  }
}

// Paints every particle with mass `mass` at x + shift (shift in cells, same on all axes; 0.5 for
// the interlaced copy) into `rho` (real space; overwritten). Collective.
template <class T>
void paint(Field<T>& rho, const Particles& parts, Window win, double mass, double shift = 0.0);

} // namespace caustic
