#include "pm/core/memory.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>
#ifdef __linux__
#include <sys/mman.h>
#endif
#include <malloc.h>
#include <sys/resource.h>

namespace caustic {

void configureAllocator() {
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
}

void configureAllocatorForReuse() {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

void adviseHugePages(void* p, std::size_t bytes) {
#ifdef __linux__
  constexpr std::uintptr_t huge = std::uintptr_t(2) << 20;
  const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t lo = (a + huge - 1) & ~(huge - 1), hi = (a + bytes) & ~(huge - 1);
  if (hi > lo)
    madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE); // advice: failure is harmless
#else
  (void)p;
  (void)bytes;
#endif
}

namespace {

// VmHWM of /proc/self/status [bytes], or -1 where it cannot be read.
double highWaterMark() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stod(line.substr(6)) * 1024.0; // "VmHWM:   12345 kB"
  return -1;
}

struct MemoryPhases {
  bool tried = false, usable = false;
  double process_peak = 0; // the largest reading taken before a reset
  std::vector<std::string> open;
  std::map<std::string, double> peaks;

  // Reads the high-water mark, credits it to the open phases and resets it.
  void boundary() {
    if (!tried) {
      tried = true;
      usable = highWaterMark() >= 0 && std::ofstream("/proc/self/clear_refs").good();
    }
    if (!usable)
      return;
    const double hwm = highWaterMark();
    process_peak = std::max(process_peak, hwm);
    for (const auto& p : open)
      peaks[p] = std::max(peaks[p], hwm);
    std::ofstream f("/proc/self/clear_refs");
    f << "5";
    f.flush();
    if (!f) // refused after all: stop, keeping what was measured
      usable = false;
  }
};

MemoryPhases& memoryPhases() {
  static MemoryPhases m;
  return m;
}

} // namespace

void enterMemoryPhase(const std::string& phase) {
  auto& m = memoryPhases();
  m.boundary();
  m.open.push_back(phase);
}

void leaveMemoryPhase(const std::string& phase) {
  auto& m = memoryPhases();
  m.boundary();
  // Phases close in reverse order of opening (RAII); search from the back for robustness.
  for (auto it = m.open.rbegin(); it != m.open.rend(); ++it)
    if (*it == phase) {
      m.open.erase(std::next(it).base());
      break;
    }
}

const std::map<std::string, double>& memoryPhasePeaks() {
  return memoryPhases().peaks;
}

double residentBytes() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return double(resident) * 4096.0;
}

double peakResidentBytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  // Linux reports KiB; the phase resets lower ru_maxrss, so also the peak read before them.
  return std::max(double(ru.ru_maxrss) * 1024.0, memoryPhases().process_peak);
}

} // namespace caustic
