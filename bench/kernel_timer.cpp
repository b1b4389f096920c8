// libcaustic-kernel-timer.so: a Kokkos Tools library that times every labelled kernel and
// profiling region (ScopedRegion) by its place in the region stack, per process.
//
//   export KOKKOS_PROFILE_LIBRARY=build/bench/libcaustic-kernel-timer.so
//   CAUSTIC_KERNEL_TIMES=/tmp/times bash jobs/mpirun.sh 2 build/bench/caustic-adjoint-bench ...
//
// writes /tmp/times.rank<R>.txt (R from the launcher's rank variable, else the process ID) at
// Kokkos::finalize: one line per path, "seconds calls path", slowest first. A path is the chain of
// enclosing regions' short names and "R:" (a region) or "K:" (a kernel) with the full label, e.g.
//   gradient/reverse/kickReverse/R:caustic::Trajectory::forceVJP
// Times are wall-clock and inclusive; a kernel's time includes its fence (Serial: the kernel).
// Serial host code only (no device timers); it adds about a microsecond per kernel.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Totals {
  double seconds = 0.0;
  long calls = 0;
};

struct State {
  std::map<std::string, Totals> totals;
  std::vector<std::pair<std::string, Clock::time_point>> regions; // open regions, outermost first
  std::map<std::uint64_t, std::pair<std::string, Clock::time_point>> kernels; // running kernels
  std::uint64_t next = 1;
};

State& state() {
  static State s;
  return s;
}

// "caustic::Trajectory::forceVJP" -> "forceVJP".
std::string shortName(const std::string& label) {
  const auto p = label.rfind("::");
  return p == std::string::npos ? label : label.substr(p + 2);
}

std::string prefix() {
  std::string s;
  for (const auto& r : state().regions)
    s += shortName(r.first) + "/";
  return s;
}

void add(const std::string& path, Clock::time_point start) {
  Totals& t = state().totals[path];
  t.seconds += std::chrono::duration<double>(Clock::now() - start).count();
  ++t.calls;
}

void beginKernel(const char* label, std::uint64_t* id) {
  *id = state().next++;
  state().kernels[*id] = {prefix() + "K:" + label, Clock::now()};
}

void endKernel(std::uint64_t id) {
  auto it = state().kernels.find(id);
  if (it == state().kernels.end())
    return;
  add(it->second.first, it->second.second);
  state().kernels.erase(it);
}

std::string rankTag() {
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"})
    if (const char* v = std::getenv(var))
      return "rank" + std::string(v);
  return "pid" + std::to_string(static_cast<long>(getpid()));
}

} // namespace

extern "C" {

void kokkosp_init_library(int, std::uint64_t, std::uint32_t, void*) {}

void kokkosp_finalize_library() {
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [path, t] : state().totals) {
    char line[64];
    std::snprintf(line, sizeof line, "%10.4f %8ld ", t.seconds, t.calls);
    rows.emplace_back(t.seconds, line + path);
  }
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  const char* base = std::getenv("CAUSTIC_KERNEL_TIMES");
  const std::string path =
      std::string(base ? base : "caustic-kernel-times") + "." + rankTag() + ".txt";
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "caustic-kernel-timer: cannot write %s\n", path.c_str());
    return;
  }
  std::fprintf(f, "# seconds calls path (inclusive wall-clock, slowest first)\n");
  for (const auto& r : rows)
    std::fprintf(f, "%s\n", r.second.c_str());
  std::fclose(f);
}

void kokkosp_begin_parallel_for(const char* label, std::uint32_t, std::uint64_t* id) {
  beginKernel(label, id);
}
void kokkosp_end_parallel_for(std::uint64_t id) {
  endKernel(id);
}
void kokkosp_begin_parallel_reduce(const char* label, std::uint32_t, std::uint64_t* id) {
  beginKernel(label, id);
}
void kokkosp_end_parallel_reduce(std::uint64_t id) {
  endKernel(id);
}
void kokkosp_begin_parallel_scan(const char* label, std::uint32_t, std::uint64_t* id) {
  beginKernel(label, id);
}
void kokkosp_end_parallel_scan(std::uint64_t id) {
  endKernel(id);
}

void kokkosp_push_profile_region(const char* label) {
  state().regions.emplace_back(label, Clock::now());
}

void kokkosp_pop_profile_region() {
  if (state().regions.empty())
    return;
  const auto [label, start] = state().regions.back();
  state().regions.pop_back();
  add(prefix() + "R:" + label, start);
}

} // extern "C"
