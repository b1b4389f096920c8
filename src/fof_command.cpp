#include "commands.hpp"
#include "common.hpp"

#include "io/halos.hpp"
#include "io/snapshot.hpp"
#include "pm/particles/migrate.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>

namespace caustic {

void runFofCommand(RunContext& ctx, const FofCommandOptions& opt) {
  SnapshotHeader h;
  Particles parts;
  {
    PhaseTimer t(ctx, "read_snapshot");
    parts = readSnapshot(opt.snapshot, ctx.comm(), h);
  }
  const double side = std::cbrt(double(h.total_particles));
  const double sep = h.box / side;
  // Slabs for the search: about one per mean separation, even, at least one per rank.
  int n = std::max(2, 2 * static_cast<int>(std::lround(side / 2)));
  n = std::max(n, ctx.comm().size() + (ctx.comm().size() % 2));
  auto decomp = std::make_shared<const SlabDecomposition>(ctx.comm().get(), n, h.box);
  migrate(parts, *decomp);
  ctx.log("snapshot " + opt.snapshot + ": " + std::to_string(h.total_particles) +
          " particles, box " + format("%g", h.box) + " Mpc/h, a = " + format("%.4f", h.a));
  FofOptions fo;
  fo.b = opt.b;
  fo.min_particles = opt.min_particles;
  fo.member_ids = opt.member_ids;
  const auto t0 = std::chrono::steady_clock::now();
  HaloCatalogue cat;
  {
    PhaseTimer t(ctx, "fof");
    cat = findHalos(parts, *decomp, sep, fo);
  }
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
         dtmax = 0;
  mpiCheck(MPI_Allreduce(&dt, &dtmax, 1, MPI_DOUBLE, MPI_MAX, ctx.comm().get()), "fof: timing");
  ctx.log("friends-of-friends (b = " + format("%g", opt.b) + "): " + std::to_string(cat.size()) +
          " groups of at least " + std::to_string(opt.min_particles) + " particles in " +
          format("%.3f", dtmax) + " s");
  const std::filesystem::path snap(opt.snapshot);
  const std::string stem = snap.stem().string();
  const std::string out =
      opt.output.empty() ? (snap.parent_path() / ("halos_" + stem + ".hdf5")).string() : opt.output;
  HaloMeta meta{h.a, h.box, h.particle_mass, opt.b, opt.min_particles};
  writeHaloCatalogue(out, ctx.comm().get(), cat, meta, nullptr);
  if (ctx.root()) {
    const std::string mf =
        (std::filesystem::path(out).parent_path() / ("mass_function_" + stem + ".txt")).string();
    writeMassFunction(mf, cat, meta);
    ctx.log("wrote " + out + " and " + mf);
  }
}

} // namespace caustic
