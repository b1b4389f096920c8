#pragma once
// Field and finite-difference helpers shared by the gradient tests (keyed on the global mesh
// point, so that every rank count sees the same field).
#include "pm/mesh/mesh.hpp"

#include <Kokkos_Core.hpp>
#include <mpi.h>

#include <cstdint>
#include <functional>

namespace caustic::test {

// A hash of (key, seed) uniform in [-1, 1).
KOKKOS_INLINE_FUNCTION double hashUniform(std::uint64_t key, std::uint64_t seed) {
  std::uint64_t z =
      key * 0x9e3779b97f4a7c15ull + seed * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return double(z >> 11) / 4503599627370496.0 - 1.0; // [-1, 1)
}

// v summed over MPI_COMM_WORLD.
inline double allSum(double v) {
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return v;
}

// Centred difference of L(t) at t = 0.
inline double centred(const std::function<double(double)>& L, double eps) {
  return (L(eps) - L(-eps)) / (2 * eps);
}

// f <- offset + amp * (uniform in [-1, 1)), keyed on the global point.
inline void randomField(Field<double>& f, std::uint64_t seed, double offset = 0.0, double amp = 1.0) {
  const auto& d = f.decomp();
  const int n = d.n(), x0 = d.xStart();
  auto r = f.real();
  if (d.localNx() > 0)
    Kokkos::parallel_for(
        "test::randomField", Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {d.localNx(), n, n}),
        KOKKOS_LAMBDA(int lx, int y, int z) {
          const std::uint64_t g = (std::uint64_t(x0 + lx) * n + y) * n + z;
          r(Field<double>::realIndex(lx, y, z, n)) = offset + amp * hashUniform(g, seed);
        });
  Kokkos::fence();
}

// sum over all points and ranks of a b.
inline double fieldDot(const Field<double>& a, const Field<double>& b) {
  const auto& d = a.decomp();
  const int n = d.n();
  auto ra = a.real(), rb = b.real();
  double v = 0.0;
  if (d.localNx() > 0)
    Kokkos::parallel_reduce(
        "test::fieldDot", Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {d.localNx(), n, n}),
        KOKKOS_LAMBDA(int lx, int y, int z, double& acc) {
          const std::size_t i = Field<double>::realIndex(lx, y, z, n);
          acc += ra(i) * rb(i);
        },
        v);
  return allSum(v);
}

// out <- f + t v
inline void fieldAxpy(Field<double>& out, const Field<double>& f, double t, const Field<double>& v) {
  auto o = out.real(), a = f.real(), b = v.real();
  Kokkos::parallel_for(
      "test::axpy", o.extent(0), KOKKOS_LAMBDA(std::size_t i) { o(i) = a(i) + t * b(i); });
  Kokkos::fence();
}

} // namespace caustic::test
