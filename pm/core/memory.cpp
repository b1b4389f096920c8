#include "pm/core/memory.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>
#ifdef __linux__
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
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

// VmHWM [bytes] in the text of /proc/self/status ("VmHWM:   12345 kB"), or -1.
double highWaterMarkIn(const char* status) {
  const char* p = std::strstr(status, "VmHWM:");
  return p ? std::strtod(p + 6, nullptr) * 1024.0 : -1;
}

struct MemoryPhases {
  bool enabled = false, tried = false, usable = false;
  int status_fd = -1, clear_fd = -1; // /proc/self/status and /proc/self/clear_refs, kept open
  double process_peak = 0;           // the largest reading taken before a reset
  std::vector<std::string> open;
  std::map<std::string, double> peaks;

  ~MemoryPhases() {
#ifdef __linux__
    if (status_fd >= 0)
      close(status_fd);
    if (clear_fd >= 0)
      close(clear_fd);
#endif
  }

  // VmHWM [bytes] ("VmHWM:   12345 kB" in /proc/self/status), or -1 where it cannot be read.
  double highWaterMark() const {
#ifdef __linux__
    char buf[8192];
    const ssize_t n = pread(status_fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
      return -1;
    buf[n] = 0;
    return highWaterMarkIn(buf);
#else
    return -1;
#endif
  }

  // Reads the high-water mark, credits it to the open phases and resets it.
  void boundary() {
    if (!enabled)
      return;
#ifdef __linux__
    if (!tried) {
      tried = true;
      status_fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
      clear_fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
      usable = status_fd >= 0 && clear_fd >= 0 && highWaterMark() >= 0;
    }
#endif
    if (!usable)
      return;
    const double hwm = highWaterMark();
    process_peak = std::max(process_peak, hwm);
    for (const auto& p : open)
      peaks[p] = std::max(peaks[p], hwm);
#ifdef __linux__
    if (write(clear_fd, "5", 1) != 1) { // refused: no phase peaks at all (they would overlap)
      usable = false;
      peaks.clear();
    }
#endif
  }
};

MemoryPhases& memoryPhases() {
  static MemoryPhases m;
  return m;
}

} // namespace

void enableMemoryPhases() {
  memoryPhases().enabled = true;
}

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
  // VmHWM, not getrusage's ru_maxrss: the kernel folds the peak of the process image replaced
  // by exec into ru_maxrss, so a caustic started from a large process (a Python script) would
  // report at least that process's size. The phase resets lower VmHWM: also the peak read
  // before them.
  std::ifstream f("/proc/self/status");
  const std::string status((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  double peak = highWaterMarkIn(status.c_str());
  if (peak < 0) { // no /proc: getrusage (KiB on Linux)
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    peak = double(ru.ru_maxrss) * 1024.0;
  }
  return std::max(peak, memoryPhases().process_peak);
}

} // namespace caustic
