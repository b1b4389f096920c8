#pragma once
// Helpers shared by the MPI tests.
#include "pm/cosmology/cosmology.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/particles/particles.hpp"

#include <mpi.h>

#include <functional>
#include <map>
#include <random>
#include <vector>

namespace caustic::test {

inline CosmologyParams planck() {
  CosmologyParams p;
  p.Omega_m = 0.3089;
  p.Omega_b = 0.0486;
  p.h = 0.6774;
  p.n_s = 0.9667;
  p.sigma8 = 0.8159;
  return p;
}

// Composite Simpson rule on [a, b] with n (even) intervals.
inline double simpson(const std::function<double(double)>& f, double a, double b, int n) {
  const double h = (b - a) / n;
  double s = f(a) + f(b);
  for (int i = 1; i < n; ++i)
    s += (i % 2 ? 4.0 : 2.0) * f(a + i * h);
  return s * h / 3.0;
}

inline int worldRank() {
  int r;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
inline int worldSize() {
  int s;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

// The same `count` random particles on every rank (positions in [0, L)), ids 0..count-1.
inline Particles randomParticles(std::size_t count, double L, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, L);
  Particles p(count);
  auto x = Kokkos::create_mirror_view(p.x);
  auto id = Kokkos::create_mirror_view(p.id);
  for (std::size_t i = 0; i < count; ++i) {
    for (int c = 0; c < 3; ++c)
      x(i, c) = u(rng);
    id(i) = i;
  }
  Kokkos::deep_copy(p.x, x);
  Kokkos::deep_copy(p.id, id);
  return p;
}

// This rank's round-robin share of `all` (not yet on the owning ranks).
inline Particles share(const Particles& all, int rank, int size) {
  auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.x);
  auto p = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.p);
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.id);
  std::vector<std::size_t> mine;
  for (std::size_t i = rank; i < all.size(); i += size)
    mine.push_back(i);
  Particles out(mine.size());
  auto ox = Kokkos::create_mirror_view(out.x);
  auto op = Kokkos::create_mirror_view(out.p);
  auto oid = Kokkos::create_mirror_view(out.id);
  for (std::size_t j = 0; j < mine.size(); ++j) {
    for (int c = 0; c < 3; ++c) {
      ox(j, c) = x(mine[j], c);
      op(j, c) = p(mine[j], c);
    }
    oid(j) = id(mine[j]);
  }
  Kokkos::deep_copy(out.x, ox);
  Kokkos::deep_copy(out.p, op);
  Kokkos::deep_copy(out.id, oid);
  return out;
}

// All particles of all ranks, indexed by id (x then p, 6 doubles per id), on every rank.
template <class R>
std::map<std::uint64_t, std::array<double, 6>> gatherById(const BasicParticles<R>& parts,
                                                          MPI_Comm comm) {
  auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  auto p = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  int size;
  MPI_Comm_size(comm, &size);
  const int n = static_cast<int>(parts.size());
  std::vector<int> counts(size), displ(size, 0), c7(size), d7(size);
  MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm);
  for (int r = 1; r < size; ++r)
    displ[r] = displ[r - 1] + counts[r - 1];
  for (int r = 0; r < size; ++r) {
    c7[r] = 7 * counts[r];
    d7[r] = 7 * displ[r];
  }
  std::vector<double> mine(7 * n);
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < 3; ++c) {
      mine[7 * i + c] = x(i, c);
      mine[7 * i + 3 + c] = p(i, c);
    }
    mine[7 * i + 6] = static_cast<double>(id(i)); // exact below 2^53
  }
  std::vector<double> all(7 * (displ[size - 1] + counts[size - 1]));
  MPI_Allgatherv(mine.data(), 7 * n, MPI_DOUBLE, all.data(), c7.data(), d7.data(), MPI_DOUBLE,
                 comm);
  std::map<std::uint64_t, std::array<double, 6>> out;
  for (std::size_t i = 0; i < all.size() / 7; ++i)
    out[static_cast<std::uint64_t>(all[7 * i + 6])] = {
        all[7 * i], all[7 * i + 1], all[7 * i + 2], all[7 * i + 3], all[7 * i + 4], all[7 * i + 5]};
  return out;
}

// Adds delta(m) for both members of +-m present in the half-complex layout, so that the field
// gains amplitude cos(2 pi m.x / N) in real space.
inline void addCosine(Field<double>& f, int mx, int my, int mz, double amplitude) {
  const int n = f.decomp().n();
  const double v = amplitude * double(n) * n * n / 2;
  auto c = f.complex();
  f.decomp().forEachMode(
      "test::addCosine", KOKKOS_LAMBDA(const MeshMode& m) {
        for (int sgn = 1; sgn >= -1; sgn -= 2) {
          const int x = ((sgn * mx) % n + n) % n, y = ((sgn * my) % n + n) % n, z = sgn * mz;
          if (m.ix == x && m.iy == y && m.iz == z)
            c(m.index) += Kokkos::complex<double>(v, 0);
        }
      });
}

// Minimum-image difference a - b in a periodic box of side L.
inline double periodicDiff(double a, double b, double L) {
  double d = a - b;
  d -= L * std::round(d / L);
  return d;
}

} // namespace caustic::test
