// Peak resident memory per phase (pm/core/memory.hpp): each phase gets the peak of its own span,
// nested phases included, and the process's peak survives the resets.
#include "pm/core/memory.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <sys/mman.h>

namespace {

using namespace caustic;

constexpr std::size_t MiB = std::size_t(1) << 20;

// Maps, touches and unmaps `bytes` of anonymous memory: the resident set rises by `bytes` and
// falls back, whatever malloc's thresholds.
void touchAndRelease(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 1, bytes);
  munmap(p, bytes);
}

TEST(MemoryPhases, EachPhaseGetsThePeakOfItsOwnSpan) {
  // Off by default: nothing is measured.
  enterMemoryPhase("test:off");
  touchAndRelease(8 * MiB);
  leaveMemoryPhase("test:off");
  EXPECT_EQ(memoryPhasePeaks().count("test:off"), 0u);
  enableMemoryPhases();
  const double before = residentBytes();
  enterMemoryPhase("test:outer");
  enterMemoryPhase("test:big");
  touchAndRelease(96 * MiB);
  leaveMemoryPhase("test:big");
  enterMemoryPhase("test:small");
  touchAndRelease(8 * MiB);
  leaveMemoryPhase("test:small");
  leaveMemoryPhase("test:outer");
  const auto& peaks = memoryPhasePeaks();
  if (peaks.empty())
    GTEST_SKIP() << "this system refuses to reset the high-water mark (/proc/self/clear_refs)";
  const double big = peaks.at("test:big"), small = peaks.at("test:small");
  const double outer = peaks.at("test:outer");
  // 4 MiB of slack: pages resident before may be released meanwhile (heap trimming).
  EXPECT_GE(big, before + 92 * MiB);
  EXPECT_GE(small, before + 4 * MiB);
  // Without the reset the small phase would report the big one's peak.
  EXPECT_LT(small, before + 40 * MiB);
  EXPECT_EQ(outer, std::max(big, small));
  EXPECT_GE(peakResidentBytes(), big); // the reset does not lose the process's peak
}

} // namespace
