#pragma once
// Memory housekeeping.
//
// glibc raises its mmap threshold dynamically (up to 32 MB) after large blocks are freed; the
// transposes of FFTW-MPI allocate and free work buffers of that size in every transform, which
// then stay in the heap and inflate the resident set by tens of MB per rank. A fixed threshold
// of 1 MB sends every large block to mmap, returned to the system when freed.
#include <Kokkos_Core.hpp>

#include <cstddef>
#include <map>
#include <string>

namespace caustic {

void configureAllocator();
// Asks the kernel for transparent huge pages on [p, p + bytes) (the whole 2 MB pages inside it),
// for large arrays read at scattered places (meshes, particles): fewer TLB misses and page
// faults. A no-op where THP is off or not Linux.
void adviseHugePages(void* p, std::size_t bytes);
// A View whose pages are advised before the first touch, not initialised: for arrays whose every
// entry is written before it is read.
template <class View, class... Extents>
View hugePageView(const std::string& label, Extents... extents) {
  View v(Kokkos::view_alloc(Kokkos::WithoutInitializing, label), extents...);
  adviseHugePages(v.data(), v.span() * sizeof(typename View::value_type));
  return v;
}
// A zero-filled View (as a value-initialised one) whose pages are advised before the first touch.
template <class View, class... Extents>
View zeroedHugePageView(const std::string& label, Extents... extents) {
  View v = hugePageView<View>(label, extents...);
  Kokkos::deep_copy(v, typename View::value_type(0));
  return v;
}
// For workloads that allocate and free the same large blocks over and over (training: every
// step's activations and gradients): keep them in the heap (mmap threshold 256 MB), so that
// each step does not pay for fresh zeroed pages.
void configureAllocatorForReuse();
// Current and peak resident set size of this process [bytes]. The peak is the largest since the
// process started (VmHWM: not inherited from the image exec replaced, as ru_maxrss is), also
// across the resets of the phase peaks below.
double residentBytes();
double peakResidentBytes();

// Peak resident set size per phase, once enabled (about 5 us per phase boundary: commands whose
// phases are coarse enable it, not those that evaluate thousands of small forces, such as
// infer). At every phase boundary the kernel's high-water mark (VmHWM)
// is read and reset to the current resident set (Linux: "5" written to /proc/self/clear_refs);
// the reading is credited to every phase open at that moment, so nested phases each get the
// peak of their own span. Where the reset is refused (not Linux, a restricted /proc) the phases
// get no peaks and nothing is reset. The reset also resets getrusage's ru_maxrss, which is why
// peakResidentBytes() keeps the process's peak itself. Not thread-safe: phases are entered on
// the main thread.
void enableMemoryPhases();
void enterMemoryPhase(const std::string& phase);
void leaveMemoryPhase(const std::string& phase);
// The peak of each phase (over all its spans) [bytes]; empty where the reset is unavailable.
const std::map<std::string, double>& memoryPhasePeaks();

} // namespace caustic
