#include "pm/ic/white_noise.hpp"

#include "pm/core/profiling.hpp"

namespace caustic {

template <class T> void fillWhiteNoise(Field<T>& f, const NoiseOptions& opt) {
  ScopedRegion region("caustic::fillWhiteNoise");
  const auto& d = f.decomp();
  const int n = d.n(), ny = d.localNy(), y0 = d.yStart(), nzc = d.nzComplex();
  auto c = f.complex();
  if (ny == 0)
    return;
  Kokkos::parallel_for(
      "caustic::whiteNoise", Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {ny, n, nzc}),
      KOKKOS_LAMBDA(const int ly, const int x, const int z) {
        const int mx = SlabDecomposition::signedIndex(x, n);
        const int my = SlabDecomposition::signedIndex(y0 + ly, n);
        const int mz = z;
        const int h = n / 2;
        Kokkos::complex<double> v(0.0, 0.0);
        if (mx != h && my != h && mz != h)
          v = whiteNoiseMode(mx, my, mz, opt);
        c(Field<T>::complexIndex(ly, x, z, n)) = Kokkos::complex<T>(T(v.real()), T(v.imag()));
      });
  Kokkos::fence();
}

template void fillWhiteNoise<float>(Field<float>&, const NoiseOptions&);
template void fillWhiteNoise<double>(Field<double>&, const NoiseOptions&);

} // namespace caustic
