#include "common.hpp"

#include "io/atomic_file.hpp"
#include "io/snapshot.hpp"
#include "pm/ic/initial_conditions.hpp"
#include "pm/force/painter.hpp"

#include "pm/core/memory.hpp"

#include <cerrno>
#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <cstdlib>
#include <unistd.h>

namespace caustic {

std::string selfPath() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("caustic") : p.string();
}

std::string durationText(double seconds) {
  char b[32];
  if (seconds >= 3600)
    std::snprintf(b, sizeof b, "%.1f h", seconds / 3600);
  else if (seconds >= 60)
    std::snprintf(b, sizeof b, "%.1f min", seconds / 60);
  else
    std::snprintf(b, sizeof b, "%.0f s", seconds);
  return b;
}

void shareError(const RunContext& ctx, const std::string& err, const char* where) {
  const std::string e = broadcastString(ctx.comm().get(), err, 0, where);
  if (!e.empty())
    throw ParamError(e);
}

std::string readOnRoot(const RunContext& ctx, const std::string& path, const char* where) {
  std::string text;
  if (ctx.root() && std::filesystem::exists(path)) {
    std::ifstream f(path);
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  return broadcastString(ctx.comm().get(), text, 0, where);
}

void shareAnyError(const RunContext& ctx, const std::string& err, const char* where) {
  const auto [first, text] = firstError(ctx.comm(), err, where);
  if (first < 0)
    return;
  throw ParamError(first == 0 ? text : text + " (on rank " + std::to_string(first) + ")");
}

LinearPower makeLinearPower(const Params& params) {
  if (params.power.type == PowerParams::Type::Tabulated)
    return LinearPower::fromTable(params.power.file, params.cosmology, params.power.normalize);
  return LinearPower::eisensteinHu(params.cosmology);
}

DiffConfig diffConfig(const Params& p, MPI_Comm comm) {
  const auto& sim = p.simulation;
  DiffConfig cfg;
  cfg.lattice = std::make_shared<const SlabDecomposition>(comm, sim.particles, sim.box);
  cfg.mesh = std::make_shared<const SlabDecomposition>(comm, sim.mesh, sim.box);
  cfg.a_start = sim.a_start;
  cfg.a_end = sim.a_end;
  cfg.steps = sim.steps;
  cfg.spacing = stepSpacing(sim);
  cfg.lpt_order = sim.lpt_order;
  cfg.window = windowFromName(p.gravity.window);
  cfg.lattice_offset = latticeOffset(p);
  if (p.power.type == PowerParams::Type::Tabulated)
    cfg.power = PowerModel::table(makeLinearPower(p), p.cosmology, p.power.normalize);
  return cfg;
}

template <class T, class R>
BasicParticles<R> makeRunInitialConditions(RunContext& ctx, const Params& params,
                                           const Cosmology& cosmo, const LinearPower& power) {
  const auto& sim = params.simulation;
  auto lattice =
      std::make_shared<const SlabDecomposition>(ctx.comm().get(), sim.particles, sim.box);
  ICOptions ico;
  ico.noise = {sim.seed, sim.fixed_amplitude, sim.paired};
  ico.lpt_order = sim.lpt_order;
  ico.a_start = sim.a_start;
  ico.lattice_offset = latticeOffset(params);
  PhaseTimer t(ctx, "initial_conditions");
  return makeInitialConditions<T, R>(lattice, cosmo, power, ico);
}

template Particles makeRunInitialConditions<float>(RunContext&, const Params&, const Cosmology&,
                                                   const LinearPower&);
template SingleParticles makeRunInitialConditions<float, float>(RunContext&, const Params&,
                                                                const Cosmology&,
                                                                const LinearPower&);
template Particles makeRunInitialConditions<double>(RunContext&, const Params&, const Cosmology&,
                                                    const LinearPower&);

bool hasRunOutputs(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return false;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n == "run_summary.json" || n == "ic_summary.json" || n == "ic.hdf5" ||
        n == "linear_power.txt" || n == "power_ic.txt" || n.rfind("snapshot_a", 0) == 0 ||
        n.rfind("power_a", 0) == 0)
      return true;
  }
  return false;
}


void checkOutputPaths(const RunContext& ctx, const Params& params) {
  std::string err;
  if (ctx.root()) {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& [key, dir] :
         {std::pair<std::string, std::string>{"output.directory", params.output.directory},
          {"checkpoint.directory", params.checkpoint.directory}}) {
      // The directory, or the first of its parents that exists, must be a directory.
      fs::path p(dir);
      while (!p.empty() && !fs::exists(p, ec) && p.has_parent_path() && p.parent_path() != p)
        p = p.parent_path();
      if (!p.empty() && fs::exists(p, ec) && !fs::is_directory(p, ec)) {
        err = key + " = \"" + dir + "\": " + p.string() +
              " exists and is not a directory; allowed: a directory path";
        break;
      }
    }
  }
  shareError(ctx, err, "checkOutputPaths");
}

MemoryEstimate estimateMemory(const Params& params, int nranks, double base_bytes) {
  // Peak resident memory of `caustic run` measured on this code (1 rank; single precision:
  // 82 B per particle and 5.6 B per mesh cell above the process's start; double: 101 and 12),
  // with a margin for migration buffers and outputs (at 2 ranks, 256^3 particles on a 512^3
  // mesh peaked at 1.43 GB per rank: these give 1.45).
  const auto& sim = params.simulation;
  const bool dbl = sim.double_precision;
  // Single-precision particles store x and p in 24 B instead of 48 (25 with the spare room).
  const double per_particle = dbl                    ? 115.0
                              : sim.single_particles ? 70.0
                                                     : 95.0,
               per_cell = dbl ? 15.0 : 7.0;
  // The fullest slab: the decomposition gives some ranks one plane more.
  const double pp = std::ceil(double(sim.particles) / nranks) * double(sim.particles) * sim.particles;
  const double mp = std::ceil(double(sim.mesh) / nranks) * double(sim.mesh) * sim.mesh;
  double extra_particles = 0.0, extra_cells = 0.0;
  if (params.baryons.enabled) {
    // In-situ baryons: a copy of the particles, the displacement, the components and their
    // columns (about 190 B per particle), a double mesh and its binned modes for P(k) (1.53
    // meshes) and five meshes for the fields (gas, temperature, pressure, matter,
    // dark-matter-only density).
    const auto& b = params.baryons;
    const double m = b.mesh > 0 ? b.mesh : 2.0 * sim.particles;
    const double f = b.field_mesh > 0 ? b.field_mesh : double(sim.particles);
    extra_particles = 190.0 * pp;
    extra_cells = 12.5 * std::ceil(m / nranks) * m * m + 40.0 * std::ceil(f / nranks) * f * f;
  }
  const auto& out = params.output;
  if (out.density && out.density_mesh > 0 && out.density_mesh != sim.mesh) {
    // The density on its own mesh: a scratch copy of the particles (60 B per particle with its
    // migration room) and the mesh, not at the same time as the baryons' copy.
    const double d = out.density_mesh;
    extra_particles = std::max(extra_particles, 60.0 * pp);
    extra_cells += (dbl ? 8.0 : 4.0) * std::ceil(d / nranks) * d * d;
  }
  return {base_bytes, per_particle * pp + extra_particles, per_cell * mp + extra_cells};
}

double checkMemory(const RunContext& ctx, const Params& params) {
  MPI_Comm world = ctx.comm().get();
  const MemoryEstimate est = estimateMemory(params, ctx.comm().size(), residentBytes());
  // The ranks sharing a node share its memory.
  MPI_Comm node = MPI_COMM_NULL;
  mpiCheck(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
           "checkMemory: node communicator");
  // MemAvailable already leaves out what the ranks hold now (est.base): the node must find
  // room for the rest.
  double mine = est.particles + est.mesh, on_node = 0.0;
  int node_ranks = 1, node_rank = 0;
  MPI_Comm_size(node, &node_ranks);
  MPI_Comm_rank(node, &node_rank);
  mpiCheck(MPI_Allreduce(&mine, &on_node, 1, MPI_DOUBLE, MPI_SUM, node), "checkMemory");
  double available = -1.0;
  if (node_rank == 0) {
    std::ifstream in("/proc/meminfo");
    std::string key;
    double kb = 0;
    std::string unit;
    while (in >> key >> kb >> unit)
      if (key == "MemAvailable:") {
        available = kb * 1024.0;
        break;
      }
    // A cgroup v2 limit (SLURM's cgroup plugin, containers) below that: its room left.
    std::ifstream mx("/sys/fs/cgroup/memory.max"), cur("/sys/fs/cgroup/memory.current");
    std::string max_text;
    double used = 0;
    if (mx >> max_text && max_text != "max" && cur >> used) {
      const double room = std::atof(max_text.c_str()) - used;
      if (available < 0 || room < available)
        available = std::max(room, 0.0);
    }
  }
  MPI_Comm_free(&node);
  // The worst node decides: the largest shortfall (need - available) over the nodes.
  double shortfall = (available >= 0.0) ? on_node - available : -1e300, worst = 0.0;
  mpiCheck(MPI_Allreduce(&shortfall, &worst, 1, MPI_DOUBLE, MPI_MAX, world), "checkMemory");
  double info[3] = {on_node, available, double(node_ranks)};
  // Rank 0 reports its own node (and the worst shortfall).
  ctx.log(format("memory estimate: %.2f GB per rank (%.2f GB more for the %d rank(s) on this "
                 "node; %.1f GB available)",
                 est.perRank() / 1e9, info[0] / 1e9, node_ranks, info[1] / 1e9));
  if (worst > 0.0) {
    const auto& sim = params.simulation;
    throw ParamError(format(
        "simulation.particles = %d, simulation.mesh = %d: needs about %.1f GB per rank "
        "(%.1f GB for the particles, %.1f GB for the mesh, %.2f GB the program itself), "
        "%.1f GB more than a node has available; use more nodes (ranks spread over them), "
        "precision = \"single\", or a smaller mesh or particle grid",
        sim.particles, sim.mesh, est.perRank() / 1e9, est.particles / 1e9, est.mesh / 1e9,
        est.base / 1e9, worst / 1e9));
  }
  return est.perRank();
}

std::string wisdomCachePath(const RunContext& ctx, const Params& params) {
  std::string path, why;
  if (ctx.root()) {
    namespace fs = std::filesystem;
    const char* own = std::getenv("CAUSTIC_CACHE_DIR");
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    fs::path dir = own && *own   ? fs::path(own)
                   : xdg && *xdg ? fs::path(xdg) / "caustic"
                   : home && *home ? fs::path(home) / ".cache" / "caustic"
                                   : fs::path();
    if (dir.empty()) {
      why = "no CAUSTIC_CACHE_DIR, XDG_CACHE_HOME or HOME";
    } else {
      dir /= "fftw";
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec || access(dir.c_str(), W_OK) != 0)
        why = dir.string() + " cannot be written";
      else
        path = (dir / format("n%d_r%d_%s.wisdom", params.simulation.mesh, ctx.comm().size(),
                             params.simulation.double_precision ? "double" : "single"))
                   .string();
    }
  }
  path = broadcastString(ctx.comm().get(), path, 0, "wisdomCachePath");
  if (path.empty())
    ctx.log("FFT wisdom cache: none (" + why + "); plans are measured afresh");
  return path;
}

OutputClaim::~OutputClaim() {
  if (!lock.held())
    return;
  lock.release();
  std::error_code ec;
  if (created && std::filesystem::is_empty(directory, ec))
    std::filesystem::remove(directory, ec);
}

OutputClaim claimOutputDirectory(const RunContext& ctx, const std::string& dir,
                                 const std::string& command) {
  OutputClaim claim;
  claim.directory = dir;
  std::string err, note;
  if (ctx.root()) {
    try {
      std::error_code ec;
      claim.created = !std::filesystem::exists(dir, ec);
      claim.lock = DirectoryLock::acquire(dir, command, &note);
      // A read-only directory shows now, not after the first hours of a run.
      const std::string probe = temporaryName(dir + "/.caustic_write_test");
      std::FILE* f = std::fopen(probe.c_str(), "w");
      if (!f)
        throw std::runtime_error("output directory " + dir + ": cannot write (" +
                                 std::strerror(errno) + ")");
      std::fclose(f);
      std::remove(probe.c_str());
    } catch (const std::exception& e) {
      err = e.what();
    }
  }
  if (!note.empty())
    ctx.log("warning: " + dir + ": " + note);
  shareError(ctx, err, "claimOutputDirectory");
  return claim;
}

} // namespace caustic
