#include "run_context.hpp"

#include "pm/core/memory.hpp"

#include <Kokkos_Core.hpp>
#include <cstdio>

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

nlohmann::json RunContext::summary(const std::string& command,
                                   const std::string& params_hash) const {
  nlohmann::json j;
  j["command"] = command;
  j["parameter_hash"] = params_hash;
  j["ranks"] = _comm.size();
  j["versions"] = {{"caustic", CAUSTIC_VERSION},
                   {"kokkos", std::to_string(KOKKOS_VERSION)},
                   {"mpi", std::to_string(MPI_VERSION) + "." + std::to_string(MPI_SUBVERSION)}};
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
  j["wall_seconds"] = elapsed();
  nlohmann::json outs = nlohmann::json::array();
  for (const auto& [kind, path] : _outputs)
    outs.push_back({{"kind", kind}, {"path", path}});
  j["outputs"] = outs;
  return j;
}

PhaseTimer::PhaseTimer(RunContext& ctx, std::string phase)
    : _ctx(ctx), _phase(std::move(phase)), _t0(std::chrono::steady_clock::now()) {}

PhaseTimer::~PhaseTimer() {
  _ctx.addTime(_phase,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - _t0).count());
}

} // namespace caustic
