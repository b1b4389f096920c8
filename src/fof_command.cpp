#include "commands.hpp"
#include "common.hpp"

#include "io/halos.hpp"
#include "io/snapshot.hpp"
#include "pm/particles/migrate.hpp"

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace caustic {

namespace {

// Whether a and b name the same file (existing: same inode; otherwise the same normalised path).
bool sameFile(const std::string& a, const std::string& b) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec))
    return fs::equivalent(a, b, ec);
  return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
}

// A particle ID held twice, over all ranks (IDs sent to rank hash(id) % size, sorted there);
// returns whether one was found and, if so, sets `dup` (collective, the same on every rank).
bool findDuplicateId(const Particles& parts, const Comm& comm, std::uint64_t& dup) {
  const int size = comm.size();
  auto ids = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  const std::size_t n = parts.size();
  auto dest = [size](std::uint64_t id) {
    std::uint64_t x = id * 0x9E3779B97F4A7C15ull; // spread consecutive IDs over the ranks
    return static_cast<int>((x >> 32) % static_cast<std::uint64_t>(size));
  };
  std::vector<int> send_counts(size, 0), recv_counts(size, 0), sdispl(size + 1, 0),
      rdispl(size + 1, 0);
  for (std::size_t i = 0; i < n; ++i)
    ++send_counts[dest(ids(i))];
  mpiCheck(MPI_Alltoall(send_counts.data(), 1, MPI_INT, recv_counts.data(), 1, MPI_INT, comm.get()),
           "fof: ID check");
  for (int r = 0; r < size; ++r) {
    sdispl[r + 1] = sdispl[r] + send_counts[r];
    rdispl[r + 1] = rdispl[r] + recv_counts[r];
  }
  std::vector<std::uint64_t> send(n), recv(rdispl[size]);
  std::vector<int> fill(sdispl.begin(), sdispl.end() - 1);
  for (std::size_t i = 0; i < n; ++i)
    send[fill[dest(ids(i))]++] = ids(i);
  mpiCheck(MPI_Alltoallv(send.data(), send_counts.data(), sdispl.data(), MPI_UINT64_T, recv.data(),
                         recv_counts.data(), rdispl.data(), MPI_UINT64_T, comm.get()),
           "fof: ID check");
  std::sort(recv.begin(), recv.end());
  std::uint64_t mine = 0;
  int found = 0;
  for (std::size_t i = 1; i < recv.size(); ++i)
    if (recv[i] == recv[i - 1]) {
      mine = recv[i];
      found = 1;
      break;
    }
  struct {
    int found;
    int rank;
  } in{found, comm.rank()}, out{0, 0};
  mpiCheck(MPI_Allreduce(&in, &out, 1, MPI_2INT, MPI_MAXLOC, comm.get()), "fof: ID check");
  if (!out.found)
    return false;
  mpiCheck(MPI_Bcast(&mine, 1, MPI_UINT64_T, out.rank, comm.get()), "fof: ID check");
  dup = mine;
  return true;
}

} // namespace

void runFofCommand(RunContext& ctx, const FofCommandOptions& opt) {
  // The outputs, checked before anything is read or written: never the input, and no existing
  // file unless --overwrite.
  const std::filesystem::path snap(opt.snapshot);
  const std::string stem = snap.stem().string();
  const std::string out =
      opt.output.empty() ? (snap.parent_path() / haloCatalogueName("halos_" + stem)).string()
                         : opt.output;
  const std::string mf =
      (std::filesystem::path(out).parent_path() / ("mass_function_" + stem + ".txt")).string();
  // Rank 0 looks (file systems may differ in what each node sees a moment apart); every rank
  // gets its verdict, so all leave here together.
  std::string err;
  if (ctx.root()) {
    std::error_code ec;
    if (sameFile(out, mf))
      err = "--output = " + out + ": the name of the mass function beside it; choose another";
    for (const std::string& o : {out, mf}) {
      if (!err.empty())
        break;
      if (sameFile(o, opt.snapshot))
        err = (o == out ? "--output = " : "the mass function ") + o + ": the snapshot itself (" +
              opt.snapshot + "); a catalogue never replaces its input";
      else if (std::filesystem::is_directory(o, ec))
        err = "--output = " + o + ": a directory; expected a file path";
      else if (!opt.overwrite && std::filesystem::exists(o, ec))
        err = o + " exists; pass --overwrite to replace it, or --output another path";
    }
  }
  shareError(ctx, err, "fof: output check");
  SnapshotHeader h;
  Particles parts;
  {
    PhaseTimer t(ctx, "read_snapshot");
    parts = readSnapshot(opt.snapshot, ctx.comm(), h);
  }
  std::uint64_t dup = 0;
  if (findDuplicateId(parts, ctx.comm(), dup))
    throw ParamError("snapshot " + opt.snapshot + ": particle ID " + std::to_string(dup) +
                     " appears more than once; FoF needs unique IDs (PartType1/ParticleIDs)");
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
  HaloMeta meta{h.a, h.box, h.particle_mass, opt.b, opt.min_particles};
  meta.omega_m = h.omega_m;
  meta.omega_lambda = h.omega_lambda;
  meta.hubble = h.hubble;
  writeHaloCatalogue(out, ctx.comm().get(), cat, meta, nullptr);
  if (ctx.root()) {
    writeMassFunction(mf, cat, meta);
    ctx.log("wrote " + out + " and " + mf);
  }
}

} // namespace caustic
