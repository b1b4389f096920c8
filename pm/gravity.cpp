#include "pm/gravity.hpp"

#include "pm/profiling.hpp"

#include <stdexcept>

namespace caustic {

GravityKernel gravityKernelFromName(const std::string& name) {
  if (name == "exact")
    return GravityKernel::Exact;
  if (name == "finite_difference")
    return GravityKernel::FiniteDifference;
  throw std::invalid_argument("gravity kernel \"" + name + "\" is not one of \"exact\", \"finite_difference\"");
}

template <class T>
Gravity<T>::Gravity(std::shared_ptr<const SlabDecomposition> mesh, double Omega_m, const GravityOptions& opt,
                    unsigned fft_flags)
    : _mesh(mesh), _omega_m(Omega_m), _opt(opt), _fft(mesh, fft_flags), _painter(mesh, opt.window),
      _phi(mesh, "caustic::Gravity::phi"), _work(mesh, "caustic::Gravity::work") {}

template <class T>
void Gravity<T>::force(const Kokkos::View<double* [3]>& sources, double total_sources,
                       const Kokkos::View<double* [3]>& probes, const Kokkos::View<double* [3]>& acc, double a) {
  ScopedRegion region("caustic::Gravity::force");
  const auto& d = *_mesh;
  const int n = d.n();
  const double n3 = double(n) * n * n;
  {
    // Mass per particle n^3 / N: the painted field is 1 + delta (the DC mode is dropped below).
    ScopedPhase t(_times, "paint");
    _painter.paint(_phi, sources, n3 / total_sources);
  }
  {
    ScopedPhase t(_times, "fft_forward");
    _fft.forward(_phi);
  }
  {
    ScopedPhase t(_times, "kernels");
    const int ny = d.localNy(), y0 = d.yStart(), nzc = d.nzComplex();
    const double kf = d.kFundamental(), H = d.cell();
    const double pref = -1.5 * _omega_m;
    const bool fd = _opt.kernel == GravityKernel::FiniteDifference;
    const bool deconv = _opt.deconvolve;
    const int p = windowOrder(_opt.window);
    auto phi = _phi.complex();
    if (ny > 0)
      Kokkos::parallel_for(
          "caustic::Gravity::potential", Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {ny, n, nzc}),
          KOKKOS_LAMBDA(const int ly, const int x, const int z) {
            const std::size_t i = Field<T>::complexIndex(ly, x, z, n);
            const int m[3] = {SlabDecomposition::signedIndex(x, n), SlabDecomposition::signedIndex(y0 + ly, n), z};
            if (m[0] == 0 && m[1] == 0 && m[2] == 0) {
              phi(i) = Kokkos::complex<T>(0, 0);
              return;
            }
            double k2 = 0.0, w = 1.0;
            for (int c = 0; c < 3; ++c) {
              const double k = kf * m[c];
              if (fd) {
                const double s = 2.0 / H * km::sin(0.5 * k * H);
                k2 += s * s;
              } else {
                k2 += k * k;
              }
              const double h = M_PI * m[c] / n;
              const double sinc = h == 0.0 ? 1.0 : km::sin(h) / h;
              w *= km::pow(sinc, p);
            }
            double g = pref / k2;
            if (deconv)
              g /= w * w;
            phi(i) *= T(g);
          });
    Kokkos::fence();
    if (_filter)
      _filter->apply(_phi, a);
  }
  for (int c = 0; c < 3; ++c) {
    {
      ScopedPhase t(_times, "kernels");
      const int ny = d.localNy(), y0 = d.yStart(), nzc = d.nzComplex();
      const double kf = d.kFundamental(), H = d.cell();
      const bool fd = _opt.kernel == GravityKernel::FiniteDifference;
      auto phi = _phi.complex();
      auto out = _work.complex();
      if (ny > 0)
        Kokkos::parallel_for(
            "caustic::Gravity::gradient", Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {ny, n, nzc}),
            KOKKOS_LAMBDA(const int ly, const int x, const int z) {
              const std::size_t i = Field<T>::complexIndex(ly, x, z, n);
              const int m[3] = {SlabDecomposition::signedIndex(x, n), SlabDecomposition::signedIndex(y0 + ly, n), z};
              const double k = kf * m[c];
              double dk;
              if (fd)
                dk = (8.0 * km::sin(k * H) - km::sin(2.0 * k * H)) / (6.0 * H);
              else
                dk = (2 * m[c] == n || 2 * m[c] == -n) ? 0.0 : k;
              // F = -grad phi: F(k) = -i D phi(k)
              const auto v = phi(i);
              out(i) = Kokkos::complex<T>(T(dk) * v.imag(), -T(dk) * v.real());
            });
      Kokkos::fence();
    }
    {
      ScopedPhase t(_times, "fft_inverse");
      _fft.backward(_work);
    }
    {
      ScopedPhase t(_times, "readout");
      _painter.readout(_work, probes, acc, c);
    }
  }
}

template class Gravity<float>;
template class Gravity<double>;

} // namespace caustic
