#pragma once
// Small kernels on per-particle 3-vectors shared by the adjoint's pieces.
#include <Kokkos_Core.hpp>

#include <cstddef>

namespace caustic {

// sum_i a_i . b_i over the first `count` entries (local).
inline double localDot(const Kokkos::View<double* [3]>& a, const Kokkos::View<double* [3]>& b,
                       std::size_t count) {
  double s = 0.0;
  Kokkos::parallel_reduce(
      "caustic::adjoint::dot", Kokkos::RangePolicy<>(0, count),
      KOKKOS_LAMBDA(const std::size_t i, double& acc) {
        acc += a(i, 0) * b(i, 0) + a(i, 1) * b(i, 1) + a(i, 2) * b(i, 2);
      },
      s);
  return s;
}

// y_i += alpha x_i over the first `count` entries.
inline void axpyVectors(const Kokkos::View<double* [3]>& y, double alpha,
                        const Kokkos::View<double* [3]>& x, std::size_t count, const char* label) {
  Kokkos::parallel_for(
      label, Kokkos::RangePolicy<>(0, count), KOKKOS_LAMBDA(const std::size_t i) {
        for (int c = 0; c < 3; ++c)
          y(i, c) += alpha * x(i, c);
      });
  Kokkos::fence();
}

} // namespace caustic
