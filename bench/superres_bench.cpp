// caustic-superres-bench: the cost of in-situ particle super-resolution (issue 16).
//
//   mpirun -n 2 caustic-superres-bench MODEL SNAPSHOT [--repeats R] [--tile-planes T]
//
// Reads a low-resolution snapshot (e.g. a run's snapshot_a1.0000.hdf5, the run's lattice offset
// from its /Parameters), then applies the particle super-resolution model R times as the
// in-situ hook does (particles to the Lagrangian lattice, distributed U-Net with ghost planes,
// the high-resolution particles made; one untimed application first) and prints the slowest
// rank's minimum and median time, the LR lattice voxels the network processes per second per
// core (one core per rank), the HR particles made per second, and the peak memory per rank.
#include "bench_common.hpp"
#include "emulators/inference/superres.hpp"
#include "io/params.hpp"
#include "io/snapshot.hpp"
#include "pm/core/memory.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

using namespace caustic;
using caustic::bench::maxOver;

namespace {

int run(const std::string& model_path, const std::string& path, int repeats, int tile) {
  MPI_Comm comm = MPI_COMM_WORLD;
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  torch::set_num_threads(1); // as the emulator runtime: the ranks carry the parallelism
  const Comm c(comm);
  SnapshotHeader h;
  const Particles parts = readSnapshot(path, c, h);
  const int n = static_cast<int>(std::lround(std::cbrt(double(h.total_particles))));
  const double offset = parseParams(h.parameters, {}, size).simulation.lattice_offset;
  const Model model = Model::load(model_path);
  if (!model.metadata().super_resolution)
    throw std::runtime_error(model_path + ": not a particle super-resolution model");
  const int f = model.metadata().super_resolution->factor;
  auto lattice = std::make_shared<const SlabDecomposition>(comm, n, h.box);
  const InferenceOptions opt{model.metadata().receptive_field, tile};
  std::size_t made = superResolveParticles(model, parts, lattice, offset, opt).size();
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    MPI_Barrier(comm);
    const auto t0 = std::chrono::steady_clock::now();
    made = superResolveParticles(model, parts, lattice, offset, opt).size();
    t.push_back(maxOver(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), comm));
  }
  std::sort(t.begin(), t.end());
  const double med = t[t.size() / 2];
  const double total_made = caustic::bench::sumOver(double(made), comm);
  const double peak = maxOver(peakResidentBytes(), comm);
  if (rank == 0) {
    std::printf("caustic-superres-bench: %s on %s\n", model_path.c_str(), path.c_str());
    std::printf("  %d^3 LR particles -> %.0f HR particles (x%d per side), %d rank(s), tiles of "
                "%d planes, ghost radius %d\n",
                n, total_made, f, size, tile, opt.radius);
    std::printf("  time per application: min %.3f s, median %.3f s (%d repeats)\n", t.front(), med,
                repeats);
    std::printf("  LR lattice voxels per second per core: %.3g\n", double(n) * n * n / med / size);
    std::printf("  HR particles made per second: %.3g\n", total_made / med);
    std::printf("  peak memory per rank: %.0f MB (%.0f B per HR particle in total)\n",
                peak / 1048576.0, peak * size / total_made);
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  return caustic::bench::benchMain(
      argc, argv, "caustic-superres-bench", "cost of in-situ particle super-resolution",
      [](CLI::App& app) {
        auto model = std::make_shared<std::string>();
        auto snap = std::make_shared<std::string>();
        auto repeats = std::make_shared<int>(3);
        auto tile = std::make_shared<int>(32);
        app.add_option("model", *model, "particle super-resolution model (model.pt)")->required();
        app.add_option("snapshot", *snap, "low-resolution snapshot")->required();
        app.add_option("--repeats", *repeats, "timed applications")->check(CLI::Range(1, 1000));
        app.add_option("--tile-planes", *tile, "x-planes per tile")->check(CLI::Range(1, 100000));
        return [=] { return run(*model, *snap, *repeats, *tile); };
      });
}
