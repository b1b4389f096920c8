#pragma once
// Pieces shared by the commands.
#include "io/format.hpp"
#include "io/params.hpp"
#include "io/run_lock.hpp"
#include "pm/cosmology/cosmology.hpp"
#include "pm/cosmology/linear_power.hpp"
#include "pm/grad/diff_config.hpp"
#include "pm/particles/particles.hpp"
#include "run_context.hpp"

#include <string>

namespace caustic {

LinearPower makeLinearPower(const Params& params);
// The differentiable model of a run's parameters (the same lattice, mesh, steps, window, LPT
// order and linear spectrum as `caustic run`) on `comm`.
DiffConfig diffConfig(const Params& params, MPI_Comm comm);
// The path of this binary (/proc/self/exe), or "caustic" when it cannot be read.
std::string selfPath();
// A duration for a log line: "42 s", "3.5 min" or "1.2 h".
std::string durationText(double seconds);
// Rank 0's error message, if it has one (`err` non-empty there), thrown as a ParamError on every
// rank: checks made by rank 0 alone end every rank together (collective).
void shareError(const RunContext& ctx, const std::string& err, const char* where);
// The error of the lowest rank that has one (`err` non-empty there), thrown as a ParamError on
// every rank (collective): for failures that may concern some ranks only (a file one node
// cannot read), which would otherwise leave the other ranks waiting in the next collective.
void shareAnyError(const RunContext& ctx, const std::string& err, const char* where);
// The text of file `path` as rank 0 reads it, on every rank; "" where rank 0 finds no file
// (checkpoint states: one reader, every rank decides alike). Collective.
std::string readOnRoot(const RunContext& ctx, const std::string& path, const char* where);
// f(T{}, R{}) for the run's precisions: T of the meshes (simulation.precision), R of the
// particles (simulation.particle_precision; float only with a float mesh). Returns what f does.
template <class F> int withPrecisions(const SimulationParams& sim, F&& f) {
  if (sim.double_precision)
    return f(double{}, double{});
  return sim.single_particles ? f(float{}, float{}) : f(float{}, double{});
}

// The run's initial conditions (timed as "initial_conditions"): the particle lattice half a PM
// cell off the mesh points, at a_start. Collective. T: the meshes' precision; R: the particles'.
template <class T, class R = double>
BasicParticles<R> makeRunInitialConditions(RunContext& ctx, const Params& params,
                                           const Cosmology& cosmo, const LinearPower& power);

} // namespace caustic

namespace caustic {

// Outputs of an earlier run or `caustic ic` in `dir` (what --overwrite is for).
bool hasRunOutputs(const std::string& dir);

// Paths the command will write to that exist but are not directories (output.directory,
// checkpoint.directory): ParamError naming the setting. Collective (rank 0 looks).
void checkOutputPaths(const RunContext& ctx, const Params& params);

// Memory a run needs per rank, from the sizes (calibrated on peak RSS of runs on this code:
// see README "Memory"): the process as it is now plus bytes per particle and per mesh cell.
struct MemoryEstimate {
  double base = 0.0, particles = 0.0, mesh = 0.0;
  double perRank() const { return base + particles + mesh; }
};
MemoryEstimate estimateMemory(const Params& params, int nranks, double base_bytes);
// Logs the estimate; ParamError (on every rank) if the ranks on a node need more than the
// node's available memory, with the estimate and what to change. Returns the per-rank estimate.
double checkMemory(const RunContext& ctx, const Params& params);

// The per-user FFTW wisdom cache file for this run's mesh, rank count and precision:
// $CAUSTIC_CACHE_DIR, else $XDG_CACHE_HOME/caustic, else $HOME/.cache/caustic, then
// fftw/n<mesh>_r<ranks>_<single|double>.wisdom. Collective; "" (and a log line) when no cache
// directory can be made.
std::string wisdomCachePath(const RunContext& ctx, const Params& params);

// The output directory claimed for a command: its lock (rank 0 holds it), released at the end;
// the directory is removed again if the command created it and left it empty.
class OutputClaim {
public:
  OutputClaim() = default;
  OutputClaim(OutputClaim&&) = default;
  OutputClaim& operator=(OutputClaim&&) = default;
  ~OutputClaim();
  DirectoryLock lock;
  std::string directory;
  bool created = false;
};
// Collective: creates and locks `dir` (ParamError on every rank if another live command holds
// it or it cannot be written).
OutputClaim claimOutputDirectory(const RunContext& ctx, const std::string& dir,
                                 const std::string& command);

} // namespace caustic
