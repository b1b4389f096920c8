#pragma once
// What every command shares: the communicator, a rank-0 logger, phase timers, the run summary.
#include "pm/core/comm.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace caustic {

class RunContext {
public:
  explicit RunContext(const Comm& comm);
  const Comm& comm() const { return _comm; }
  bool root() const { return _comm.rank() == 0; }
  // Prints on rank 0 with the elapsed wall time.
  void log(const std::string& msg) const;
  // Accumulates wall seconds of a phase (max over ranks in the summary).
  void addTime(const std::string& phase, double seconds);
  void addOutput(const std::string& kind, const std::string& path);
  double elapsed() const;
  // Summary JSON (collective: reduces timings and peak memory over ranks).
  nlohmann::json summary(const std::string& command, const std::string& params_hash) const;

private:
  Comm _comm;
  std::chrono::steady_clock::time_point _start;
  std::map<std::string, double> _times;
  std::vector<std::pair<std::string, std::string>> _outputs;
};

// RAII timer adding to a RunContext phase.
class PhaseTimer {
public:
  PhaseTimer(RunContext& ctx, std::string phase);
  ~PhaseTimer();

private:
  RunContext& _ctx;
  std::string _phase;
  std::chrono::steady_clock::time_point _t0;
};

// Versions of Caustic (with its git commit) and of the libraries it runs with: Kokkos, MPI
// (standard and library), FFTW, HDF5, LibTorch.
nlohmann::json libraryVersions();

// Peak resident set size of this process [bytes].
double peakMemoryBytes();

} // namespace caustic
