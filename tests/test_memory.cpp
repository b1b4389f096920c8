// Peak resident memory per phase (pm/core/memory.hpp): each phase gets the peak of its own span,
// nested phases included, and the process's peak survives the resets.
#include "pm/core/memory.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

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

// The process's peak is its own, not the peak of the image exec replaced (which getrusage's
// ru_maxrss includes): a child forked after this process touched 256 MiB and exec'd (this test
// binary again) reports its own few MiB.
TEST(MemoryPhases, PeakIsNotInheritedThroughExec) {
  if (std::getenv("CAUSTIC_MEMORY_CHILD")) {
    std::printf("child peak %.0f\n", peakResidentBytes());
    std::fflush(stdout);
    return;
  }
  void* p = mmap(nullptr, 256 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 1, 256 * MiB);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) { // the child: its image holds the 256 MiB until exec replaces it
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    setenv("CAUSTIC_MEMORY_CHILD", "1", 1);
    execl("/proc/self/exe", "caustic_unit_tests",
          "--gtest_filter=MemoryPhases.PeakIsNotInheritedThroughExec", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  munmap(p, 256 * MiB);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  double peak = -1;
  const std::size_t at = out.find("child peak ");
  if (at != std::string::npos)
    peak = std::strtod(out.c_str() + at + 11, nullptr);
  ASSERT_GT(peak, 0) << "the child did not report its peak: " << out;
  EXPECT_LT(peak, 128 * MiB) << "the child's peak includes its parent's";
}

} // namespace
