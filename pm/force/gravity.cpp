#include "pm/force/gravity.hpp"

#include "pm/core/profiling.hpp"

#include <cmath>
#include <stdexcept>
#include <type_traits>

namespace caustic {

GravityKernel gravityKernelFromName(const std::string& name) {
  if (name == "exact")
    return GravityKernel::Exact;
  if (name == "finite_difference")
    return GravityKernel::FiniteDifference;
  throw std::invalid_argument("gravity kernel \"" + name +
                              "\" is not one of \"exact\", \"finite_difference\"");
}

template <class T>
Gravity<T>::Gravity(std::shared_ptr<const SlabDecomposition> mesh, double Omega_m,
                    const GravityOptions& opt, unsigned fft_flags)
    : Gravity(std::make_shared<Workspace<T>>(mesh, fft_flags, meshBuffers(opt)), Omega_m, opt) {}

template <class T>
Gravity<T>::Gravity(std::shared_ptr<Workspace<T>> workspace, double Omega_m,
                    const GravityOptions& opt)
    : _mesh(workspace->decompPtr()), _omega_m(Omega_m), _opt(opt), _ws(std::move(workspace)),
      _painter(_mesh, opt.window) {
  const auto& mesh = _mesh;
  const int n = mesh->n();
  const double kf = mesh->kFundamental(), H = mesh->cell();
  // The finite-difference gradient is taken during the readout: only the exact kernel uses the
  // gradient table (left empty otherwise).
  const bool exact = opt.kernel == GravityKernel::Exact;
  const int p = windowOrder(opt.window);
  _lap = Kokkos::View<double*>("caustic::Gravity::lap", n);
  _win = Kokkos::View<double*>("caustic::Gravity::win", n);
  if (exact)
    _grad = Kokkos::View<double*>("caustic::Gravity::grad", n);
  auto hl = Kokkos::create_mirror_view(_lap);
  auto hg = Kokkos::create_mirror_view(_grad);
  auto hw = Kokkos::create_mirror_view(_win);
  for (int i = 0; i < n; ++i) {
    const int m = SlabDecomposition::signedIndex(i, n);
    const double k = kf * m;
    if (exact) {
      hl(i) = k * k;
      hg(i) = 2 * m == n ? 0.0 : k; // the Nyquist gradient of a real field is zero
    } else {
      const double s = 2.0 / H * std::sin(0.5 * k * H);
      hl(i) = s * s;
    }
    const double h = M_PI * m / n;
    hw(i) = h == 0.0 ? 1.0 : std::pow(std::sin(h) / h, p);
  }
  Kokkos::deep_copy(_lap, hl);
  Kokkos::deep_copy(_grad, hg);
  Kokkos::deep_copy(_win, hw);
}

template <class T> void Gravity<T>::applyPotential(Field<T>& f, double a, bool correct) const {
  const int n = _mesh->n();
  const double n3 = double(n) * n * n;
  // phi(k) = -3/2 Omega_m G(k) delta(k) / N^3: the 1/N^3 of the inverse transforms is folded in
  // here, once.
  const double pref = -1.5 * _omega_m / n3;
  const bool deconv = _opt.deconvolve;
  auto lap = _lap, win = _win;
  auto phi = f.complex();
  _mesh->forEachMode(
      "caustic::Gravity::potential", KOKKOS_LAMBDA(const MeshMode& m) {
        const double k2 = lap(m.ix) + lap(m.iy) + lap(m.iz);
        double g = k2 > 0.0 ? pref / k2 : 0.0;
        if (deconv) {
          const double w = win(m.ix) * win(m.iy) * win(m.iz);
          g /= w * w;
        }
        phi(m.index) *= T(g);
      });
  if (correct && _potential_correction)
    _potential_correction->apply(f, a);
}

template <class T>
template <class R, class Acc>
void Gravity<T>::force(const Kokkos::View<R* [3]>& sources, std::size_t nsources,
                       double total_sources, const Kokkos::View<R* [3]>& probes,
                       std::size_t nprobes, const Acc& acc, double a, double scale,
                       bool accumulate) {
  ScopedRegion region("caustic::Gravity::force");
  // The finite-difference gradient is taken in real space during the readout: one mesh buffer
  // and one inverse FFT. The spectral gradient needs a second buffer and three inverse FFTs.
  const auto phi_lease = _ws->lease("phi");
  Field<T>& phi_field = *phi_lease;
  const FFT<T>& fft = _ws->fft();
  const auto& d = *_mesh;
  const int n = d.n();
  const double n3 = double(n) * n * n;
  {
    // Mass per particle n^3 / N: the painted field is 1 + delta (the DC mode is dropped below).
    ScopedPhase t(_times, "paint");
    _painter.paint(phi_field, sources, nsources, n3 / total_sources);
  }
  {
    ScopedPhase t(_times, "fft_forward");
    fft.forward(phi_field);
  }
  if (_tap) {
    ScopedPhase t(_times, _tap_phase);
    _tap(phi_field, total_sources, a);
  }
  {
    ScopedPhase t(_times, "kernels");
    applyPotential(phi_field, a, false);
  }
  if (_potential_correction) {
    ScopedPhase t(_times, "potential_correction");
    _potential_correction->apply(phi_field, a);
  }
  if (_opt.kernel != GravityKernel::Exact) {
    {
      ScopedPhase t(_times, "fft_inverse");
      fft.backward(phi_field, false);
    }
    {
      ScopedPhase t(_times, "readout");
      _painter.readoutGradient(phi_field, probes, nprobes, acc, scale, accumulate);
    }
    addParticleCorrection(probes, nprobes, acc, a, scale);
    return;
  }
  const auto work_lease = _ws->lease("work");
  Field<T>& work = *work_lease;
  for (int c = 0; c < 3; ++c) {
    {
      ScopedPhase t(_times, "kernels");
      auto grad = _grad;
      auto phi = phi_field.complex();
      auto out = work.complex();
      d.forEachMode(
          "caustic::Gravity::gradient", KOKKOS_LAMBDA(const MeshMode& m) {
            const int idx[3] = {m.ix, m.iy, m.iz};
            const T dk = T(grad(idx[c]));
            // F = -grad phi: F(k) = -i D phi(k)
            const auto v = phi(m.index);
            out(m.index) = Kokkos::complex<T>(dk * v.imag(), -dk * v.real());
          });
    }
    {
      ScopedPhase t(_times, "fft_inverse");
      fft.backward(work, false);
    }
    {
      ScopedPhase t(_times, "readout");
      _painter.readout(work, probes, nprobes, acc, c, scale, accumulate);
    }
  }
  addParticleCorrection(probes, nprobes, acc, a, scale);
}

template <class T>
template <class R, class Acc>
void Gravity<T>::addParticleCorrection(const Kokkos::View<R* [3]>& probes, std::size_t n,
                                       const Acc& acc, double a, double scale) {
  if (!_particle_correction)
    return;
  if constexpr (std::is_same_v<R, double> && std::is_same_v<Acc, Kokkos::View<double* [3]>>) {
    ScopedPhase t(_times, "particle_correction");
    _particle_correction->apply(probes, n, acc, a, scale);
  } else {
    throw std::logic_error("Gravity::force: a particle correction needs double-precision "
                           "positions and accelerations");
  }
}

template class Gravity<float>;
template class Gravity<double>;
#define CAUSTIC_GRAVITY_FORCE(T, R, O)                                                             \
  template void Gravity<T>::force(const Kokkos::View<R* [3]>&, std::size_t, double,                \
                                  const Kokkos::View<R* [3]>&, std::size_t,                        \
                                  const Kokkos::View<O* [3]>&, double, double, bool);
CAUSTIC_GRAVITY_FORCE(float, double, float)
CAUSTIC_GRAVITY_FORCE(float, double, double)
CAUSTIC_GRAVITY_FORCE(double, double, double)
CAUSTIC_GRAVITY_FORCE(float, float, float)
#undef CAUSTIC_GRAVITY_FORCE

} // namespace caustic
