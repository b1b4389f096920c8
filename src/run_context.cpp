#include "run_context.hpp"

#include "emulator_runtime.hpp"
#include "pm/core/memory.hpp"

#include "git_commit.hpp"

#include <Kokkos_Core.hpp>
#include <cstdint>
#include <cstdio>
#include <fftw3.h>
#include <functional>
#include <hdf5.h>
#include <vector>

namespace caustic {

RunContext::RunContext(const Comm& comm) : _comm(comm), _start(std::chrono::steady_clock::now()) {}

double RunContext::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - _start).count();
}

void RunContext::log(const std::string& msg) const {
  if (!root())
    return;
  std::printf("[caustic %8.2fs] %s\n", elapsed(), msg.c_str());
  std::fflush(stdout);
}

void RunContext::addTime(const std::string& phase, double seconds) {
  _times[phase] += seconds;
}

void RunContext::addOutput(const std::string& kind, const std::string& path) {
  _outputs.emplace_back(kind, path);
}

double peakMemoryBytes() {
  return peakResidentBytes();
}

namespace {

// The peak of every memory phase, max over ranks; empty unless every rank measured the same
// phases (they are collective, but a rank whose /proc refused the reset has none).
nlohmann::json memoryPeaksByPhase(const Comm& comm) {
  const auto& peaks = memoryPhasePeaks();
  std::string names;
  for (const auto& [phase, bytes] : peaks)
    names += phase + '\n';
  const std::uint64_t h = std::hash<std::string>{}(names);
  std::uint64_t lo = h, hi = h;
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, comm.get()), "memoryPeaks");
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, comm.get()), "memoryPeaks");
  nlohmann::json j = nlohmann::json::object();
  if (lo != hi || peaks.empty())
    return j;
  std::vector<double> v;
  for (const auto& [phase, bytes] : peaks)
    v.push_back(bytes);
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_MAX,
                         comm.get()),
           "memoryPeaks");
  std::size_t i = 0;
  for (const auto& [phase, bytes] : peaks)
    j[phase] = v[i++];
  return j;
}

} // namespace

nlohmann::json libraryVersions() {
  char mpi_lib[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  MPI_Get_library_version(mpi_lib, &len);
  std::string mpi(mpi_lib, static_cast<std::size_t>(len));
  mpi = mpi.substr(0, mpi.find_first_of(",\n")); // "Open MPI v4.1.4"
  unsigned h5_major = 0, h5_minor = 0, h5_release = 0;
  H5get_libversion(&h5_major, &h5_minor, &h5_release);
  nlohmann::json v = {
      {"caustic", CAUSTIC_VERSION},
      {"git_commit", CAUSTIC_GIT_COMMIT},
      {"kokkos", std::to_string(KOKKOS_VERSION / 10000) + "." +
                     std::to_string(KOKKOS_VERSION / 100 % 100) + "." +
                     std::to_string(KOKKOS_VERSION % 100)},
      {"mpi_standard", std::to_string(MPI_VERSION) + "." + std::to_string(MPI_SUBVERSION)},
      {"mpi_library", mpi},
      {"fftw", std::string(fftw_version)},
      {"hdf5", std::to_string(h5_major) + "." + std::to_string(h5_minor) + "." +
                   std::to_string(h5_release)}};
  // LibTorch is loaded only by runs that use it (src/emulator_runtime.hpp).
#ifdef CAUSTIC_WITH_TORCH
  v["libtorch"] = emulatorRuntimeLoaded() ? emulatorRuntime("libtorch").libtorchVersion()
                                          : std::string("not loaded");
#else
  v["libtorch"] = "not built";
#endif
  return v;
}

nlohmann::json RunContext::summary(const std::string& command,
                                   const std::string& params_hash) const {
  nlohmann::json j;
  j["command"] = command;
  j["parameter_hash"] = params_hash;
  j["ranks"] = _comm.size();
  j["versions"] = libraryVersions();
  nlohmann::json t;
  for (const auto& [phase, s] : _times) {
    double mx = 0;
    mpiCheck(MPI_Allreduce(&s, &mx, 1, MPI_DOUBLE, MPI_MAX, _comm.get()), "RunContext::summary");
    t[phase] = mx;
  }
  j["timings_seconds_max_over_ranks"] = t;
  const double mem = peakMemoryBytes();
  std::vector<double> all(_comm.size());
  mpiCheck(MPI_Allgather(&mem, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, _comm.get()),
           "RunContext::summary");
  j["peak_memory_bytes_per_rank"] = all;
  if (auto phases = memoryPeaksByPhase(_comm); !phases.empty())
    j["peak_memory_bytes_by_phase_max_over_ranks"] = phases;
  j["wall_seconds"] = elapsed();
  nlohmann::json outs = nlohmann::json::array();
  for (const auto& [kind, path] : _outputs)
    outs.push_back({{"kind", kind}, {"path", path}});
  j["outputs"] = outs;
  return j;
}

PhaseTimer::PhaseTimer(RunContext& ctx, std::string phase) : _ctx(ctx), _phase(std::move(phase)) {
  enterMemoryPhase(_phase);
  _t0 = std::chrono::steady_clock::now();
}

PhaseTimer::~PhaseTimer() {
  _ctx.addTime(_phase,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - _t0).count());
  leaveMemoryPhase(_phase);
}

} // namespace caustic
