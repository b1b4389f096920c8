#pragma once
// Particles as structure-of-arrays Kokkos Views.
//
// x: comoving position [Mpc/h] in [0, L); p: FastPM momentum p = a^2 dx/dt [H0 Mpc/h = 100 km/s];
// id: Lagrangian lattice index (i N + j) N + k of the particle's initial lattice site.
#include "pm/kmath.hpp"

#include <cmath>
#include <cstdint>
#include <string>

namespace caustic {

struct Particles {
  Kokkos::View<double* [3]> x;
  Kokkos::View<double* [3]> p;
  Kokkos::View<std::uint64_t*> id;

  Particles() = default;
  explicit Particles(std::size_t n)
      : x("caustic::Particles::x", n), p("caustic::Particles::p", n),
        id("caustic::Particles::id", n) {}
  std::size_t size() const { return id.extent(0); }
};

// Wraps a coordinate into [0, L) (also when x + L rounds to L).
KOKKOS_INLINE_FUNCTION double periodicWrap(double x, double L) {
  x = x - L * km::floor(x / L);
  if (x >= L)
    x -= L;
  if (x < 0)
    x = 0;
  return x;
}

} // namespace caustic
