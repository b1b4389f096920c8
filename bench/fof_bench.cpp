// caustic-fof-bench: the cost of friends-of-friends against one PM step on the same particles.
//
//   mpirun -n 2 caustic-fof-bench SNAPSHOT [--mesh M] [--repeats R] [--b 0.2]
//
// Reads a snapshot (Gadget-4 layout, e.g. a run's snapshot_a1.0000.hdf5), runs FoF R times on
// the slabs `caustic fof` uses (catalogue included: linking, label agreement, group sums) and R
// PM steps of the same particles on a mesh of M^3 (default: twice the particle grid; single
// precision, FFTW_MEASURE; one untimed step first), FoF and step alternating, and prints
// both times (the slowest rank's, minimum and median over the repeats), FoF / step (the median
// of the paired ratios) and the peak memory per rank (FoF's copy of the particles and the PM
// step's meshes are held together).
#include "bench_common.hpp"
#include "io/snapshot.hpp"
#include "pm/analysis/fof.hpp"
#include "pm/core/memory.hpp"
#include "pm/particles/migrate.hpp"
#include "pm/stepping/stepping.hpp"

#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

using namespace caustic;
using caustic::bench::maxOver;
using caustic::bench::median;

namespace {

template <class F> std::vector<double> timed(int repeats, MPI_Comm comm, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    MPI_Barrier(comm);
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(maxOver(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), comm));
  }
  std::sort(t.begin(), t.end());
  return t;
}

int run(const std::string& path, int mesh_n, int repeats, double b) {
  MPI_Comm comm = MPI_COMM_WORLD;
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  Comm c(comm);
  SnapshotHeader h;
  Particles parts = readSnapshot(path, c, h);
  const double side = std::cbrt(double(h.total_particles));
  const int grid = static_cast<int>(std::lround(side));
  const double sep = h.box / side;
  // The slabs of `caustic fof`: about one per mean separation, even, at least one per rank.
  int n = std::max(2, 2 * static_cast<int>(std::lround(side / 2)));
  n = std::max(n, size + (size % 2));
  auto fof_decomp = std::make_shared<const SlabDecomposition>(comm, n, h.box);
  Particles fof_parts = copyParticles(parts);
  migrate(fof_parts, *fof_decomp);
  FofOptions fo;
  fo.b = b;
  std::size_t groups = 0;

  if (mesh_n <= 0)
    mesh_n = 2 * grid;
  auto mesh = std::make_shared<const SlabDecomposition>(comm, mesh_n, h.box);
  migrate(parts, *mesh);
  CosmologyParams cp;
  cp.Omega_m = h.omega_m > 0 ? h.omega_m : cp.Omega_m;
  const Cosmology cosmo(cp);
  NBody<float> nbody(mesh, cosmo, GravityOptions{}, double(h.total_particles), FFTW_MEASURE);
  const auto a = timeSteps(h.a, h.a * (1 + 0.01 * (repeats + 2)), repeats + 2, Spacing::Linear);
  nbody.start(parts, h.a);
  nbody.step(parts, a[1], Spacing::Linear, a[2]); // untimed: the force at its start too
  // FoF and the step alternate, so that both see the same machine (its speed drifts over
  // minutes on shared hosts): each repeat gives one FoF / step ratio.
  std::size_t s = 2;
  std::vector<double> fof_t, step_t, ratio;
  for (int r = 0; r < repeats; ++r) {
    fof_t.push_back(timed(1, comm, [&] {
      const HaloCatalogue cat = findHalos(fof_parts, *fof_decomp, sep, fo);
      groups = cat.size();
    })[0]);
    step_t.push_back(timed(1, comm, [&] {
      nbody.step(parts, a[s], Spacing::Linear, s + 1 < a.size() ? a[s + 1] : 0.0);
      ++s;
    })[0]);
    ratio.push_back(fof_t.back() / step_t.back());
  }
  std::sort(fof_t.begin(), fof_t.end());
  std::sort(step_t.begin(), step_t.end());
  std::sort(ratio.begin(), ratio.end());
  const double peak = peakResidentBytes();
  const double peak_max = maxOver(peak, comm);
  if (rank == 0) {
    std::printf("caustic-fof-bench: %s, %.0f^3 particles, box %g Mpc/h, a = %.4f, %d ranks\n",
                path.c_str(), side, h.box, h.a, size);
    std::printf("  fof (b = %g, %zu groups of >= %d)  min %.4f s  median %.4f s  (%d runs)\n", b,
                groups, fo.min_particles, fof_t.front(), median(fof_t), repeats);
    std::printf("  PM step (%d^3 mesh, single)     min %.4f s  median %.4f s\n", mesh_n,
                step_t.front(), median(step_t));
    std::printf("  fof / step                     %.2f (median of the %d paired ratios; "
                "ratio of the medians %.2f)\n",
                median(ratio), repeats, median(fof_t) / median(step_t));
    std::printf("  peak RSS per rank              %.1f MB (max)\n", peak_max / 1e6);
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::string path;
  int mesh_n = 0, repeats = 5;
  double b = 0.2;
  return bench::benchMain(
      argc, argv, "caustic-fof-bench", "friends-of-friends against one PM step",
      [&](CLI::App& app) {
        app.add_option("snapshot", path, "Snapshot (Gadget-4 HDF5 layout)")->required();
        app.add_option("--mesh", mesh_n, "PM mesh per side (default: twice the particle grid)");
        app.add_option("--repeats", repeats, "Timed repeats of each")->check(CLI::Range(1, 1000));
        app.add_option("--b", b, "Linking length in mean separations")
            ->check(CLI::Range(1e-3, 0.999));
        return [&] { return run(path, mesh_n, repeats, b); };
      });
}
