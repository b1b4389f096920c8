#pragma once
// A host vector copied into a new device View (small tables: kernels, parameters).
#include <Kokkos_Core.hpp>

#include <string>
#include <vector>

namespace caustic {

inline Kokkos::View<double*> toDeviceView(const std::vector<double>& v, const std::string& label) {
  Kokkos::View<double*> d(label, v.size());
  auto h = Kokkos::create_mirror_view(d);
  for (std::size_t i = 0; i < v.size(); ++i)
    h(i) = v[i];
  Kokkos::deep_copy(d, h);
  return d;
}

} // namespace caustic
