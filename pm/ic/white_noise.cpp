#include "pm/ic/white_noise.hpp"

#include "pm/core/profiling.hpp"

namespace caustic {

template <class T> void fillWhiteNoise(Field<T>& f, const NoiseOptions& opt) {
  ScopedRegion region("caustic::fillWhiteNoise");
  const int n = f.decomp().n();
  auto c = f.complex();
  f.decomp().forEachMode(
      "caustic::whiteNoise", KOKKOS_LAMBDA(const MeshMode& m) {
        Kokkos::complex<double> v(0.0, 0.0);
        if (!m.nyquist(n))
          v = whiteNoiseMode(m.mx, m.my, m.mz, opt);
        c(m.index) = Kokkos::complex<T>(T(v.real()), T(v.imag()));
      });
}

template void fillWhiteNoise<float>(Field<float>&, const NoiseOptions&);
template void fillWhiteNoise<double>(Field<double>&, const NoiseOptions&);

} // namespace caustic
