#pragma once
// Device-callable math: Kokkos 3.4 keeps it in Kokkos::Experimental (moved to Kokkos:: in 3.7).
#include <Kokkos_Core.hpp>

namespace caustic {
namespace km = Kokkos::Experimental;
}
