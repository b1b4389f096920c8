#pragma once
// Wall-clock seconds accumulated per phase of the PM step (paint, fft_forward, ...), fenced so
// that asynchronous Kokkos backends are timed correctly. A ScopedPhase is also a memory phase
// (pm/core/memory.hpp): its peak resident set is kept under the same name.
#include "pm/core/memory.hpp"

#include <Kokkos_Core.hpp>

#include <chrono>
#include <map>
#include <string>

namespace caustic {

class PhaseTimes {
public:
  void add(const std::string& phase, double seconds) { _t[phase] += seconds; }
  const std::map<std::string, double>& all() const { return _t; }
  double total() const {
    double s = 0;
    for (const auto& [k, v] : _t)
      s += v;
    return s;
  }
  void clear() { _t.clear(); }

private:
  std::map<std::string, double> _t;
};

class ScopedPhase {
public:
  ScopedPhase(PhaseTimes& t, std::string phase) : _t(t), _phase(std::move(phase)) {
    enterMemoryPhase(_phase);
    _t0 = std::chrono::steady_clock::now();
  }
  ~ScopedPhase() {
    Kokkos::fence();
    _t.add(_phase, std::chrono::duration<double>(std::chrono::steady_clock::now() - _t0).count());
    leaveMemoryPhase(_phase);
  }
  ScopedPhase(const ScopedPhase&) = delete;
  ScopedPhase& operator=(const ScopedPhase&) = delete;

private:
  PhaseTimes& _t;
  std::string _phase;
  std::chrono::steady_clock::time_point _t0;
};

} // namespace caustic
