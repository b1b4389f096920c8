#pragma once
// RAII profiling region (Kokkos 3.4 has pushRegion/popRegion but no ScopedRegion).
#include <Kokkos_Core.hpp>

#include <string>

namespace caustic {

class ScopedRegion {
public:
  explicit ScopedRegion(const std::string& name) { Kokkos::Profiling::pushRegion(name); }
  ~ScopedRegion() { Kokkos::Profiling::popRegion(); }
  ScopedRegion(const ScopedRegion&) = delete;
  ScopedRegion& operator=(const ScopedRegion&) = delete;
};

} // namespace caustic
