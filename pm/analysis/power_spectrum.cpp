#include "pm/analysis/power_spectrum.hpp"

#include "pm/core/profiling.hpp"

#include <Kokkos_ScatterView.hpp>
#include <cmath>

namespace caustic {

template <class T> PowerSpectrum binPower(const Field<T>& delta_k) {
  ScopedRegion region("caustic::binPower");
  const auto& d = delta_k.decomp();
  const int n = d.n();
  const int nbins = n / 2 + 1; // bin 0 holds only k = 0 and is dropped
  const double kf = d.kFundamental();
  const double volume = d.box() * d.box() * d.box();
  const double norm = volume / (static_cast<double>(n) * n * n) / (static_cast<double>(n) * n * n);
  Kokkos::View<double* [3]> acc("caustic::binPower::acc", nbins);
  auto sv = Kokkos::Experimental::create_scatter_view(acc);
  auto c = delta_k.complex();
  // |m| and its bin per integer |m|^2 (at most 3 (N/2)^2): no square root per mode. The tables
  // (12 B per entry) are used up to 2^22 entries (N <= 2364, 50 MB); larger meshes take the
  // square root per mode rather than gigabytes of table.
  const long m2max = 3L * (n / 2) * (n / 2);
  const bool tabulate = m2max < (1L << 22);
  const long entries = tabulate ? m2max + 1 : 1;
  Kokkos::View<double*> mag("caustic::binPower::magnitude", entries);
  Kokkos::View<int*> bin("caustic::binPower::bin", entries);
  Kokkos::parallel_for(
      "caustic::binPower::tables", Kokkos::RangePolicy<>(0, entries), KOKKOS_LAMBDA(long q) {
        const double m = km::sqrt(double(q));
        mag(q) = m;
        bin(q) = static_cast<int>(km::floor(m + 0.5));
      });
  d.forEachMode(
      "caustic::binPower::accumulate", KOKKOS_LAMBDA(const MeshMode& mode) {
        const long q = static_cast<long>(mode.mx) * mode.mx + static_cast<long>(mode.my) * mode.my +
                       static_cast<long>(mode.mz) * mode.mz;
        const double m = tabulate ? mag(q) : km::sqrt(double(q));
        const int b = tabulate ? bin(q) : static_cast<int>(km::floor(m + 0.5));
        if (b == 0 || b >= nbins)
          return;
        // Modes with 0 < kz < N/2 stand for their conjugate partner too (mode.weight = 2).
        const double w = mode.weight;
        const auto v = c(mode.index);
        const double p = (double(v.real()) * v.real() + double(v.imag()) * v.imag()) * norm;
        auto a = sv.access();
        a(b, 0) += w * m * kf;
        a(b, 1) += w * p;
        a(b, 2) += w;
      });
  Kokkos::Experimental::contribute(acc, sv);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), acc);
  std::vector<double> local(3 * nbins), global(3 * nbins);
  for (int b = 0; b < nbins; ++b)
    for (int j = 0; j < 3; ++j)
      local[3 * b + j] = h(b, j);
  mpiCheck(
      MPI_Allreduce(local.data(), global.data(), 3 * nbins, MPI_DOUBLE, MPI_SUM, d.comm().get()),
      "binPower");
  PowerSpectrum ps;
  for (int b = 1; b < nbins; ++b) {
    const double cnt = global[3 * b + 2];
    if (cnt <= 0)
      continue;
    ps.k.push_back(global[3 * b] / cnt);
    ps.power.push_back(global[3 * b + 1] / cnt);
    ps.modes.push_back(cnt);
  }
  return ps;
}

template <class T>
void densityContrastK(Field<T>& delta_k, Field<T>& work, const FFT<T>& fft, const Particles& parts,
                      double total_particles, const PowerOptions& opt) {
  ScopedRegion region("caustic::densityContrastK");
  const auto& d = delta_k.decomp();
  const int n = d.n();
  const Painter<T> painter(delta_k.decompPtr(), opt.window);
  auto toContrast = [&](Field<T>& f, double shift) {
    paintDensityContrast(f, painter, parts, total_particles, shift);
    fft.forward(f);
  };
  toContrast(delta_k, 0.0);
  if (opt.interlace)
    toContrast(work, 0.5);
  const int p = windowOrder(opt.window);
  const bool interlace = opt.interlace;
  // Per-axis tables over m in [-N/2, N/2] (index m + N/2): the window sinc(pi m / N)^p and the
  // interlacing phase e^{i pi m / N}; a mode's values are products over its three axes, so the
  // loop over modes evaluates no transcendental function.
  Kokkos::View<double*> win1("caustic::densityContrastK::window", n + 1),
      cos1("caustic::densityContrastK::cos", n + 1), sin1("caustic::densityContrastK::sin", n + 1);
  Kokkos::parallel_for(
      "caustic::densityContrastK::tables", Kokkos::RangePolicy<>(0, n + 1), KOKKOS_LAMBDA(int j) {
        const double s = M_PI * (j - n / 2) / n; // k_i H / 2 = pi m_i / N
        const double sinc = s == 0.0 ? 1.0 : km::sin(s) / s;
        win1(j) = km::pow(sinc, p);
        cos1(j) = km::cos(s);
        sin1(j) = km::sin(s);
      });
  auto a = delta_k.complex();
  auto b = work.complex();
  const int h = n / 2;
  d.forEachMode(
      "caustic::densityContrastK::compensate", KOKKOS_LAMBDA(const MeshMode& mode) {
        const int jx = mode.mx + h, jy = mode.my + h, jz = mode.mz + h;
        const double win = win1(jx) * win1(jy) * win1(jz);
        const std::size_t i = mode.index;
        Kokkos::complex<double> v(a(i).real(), a(i).imag());
        if (interlace) {
          // The copy painted at x + H/2 is the field translated by +H/2: undo with
          // e^{+ik.s} = product over the axes of e^{i pi m_i / N}.
          const Kokkos::complex<double> e =
              Kokkos::complex<double>(cos1(jx), sin1(jx)) *
              Kokkos::complex<double>(cos1(jy), sin1(jy)) * Kokkos::complex<double>(cos1(jz), sin1(jz));
          const Kokkos::complex<double> vb(b(i).real(), b(i).imag());
          v = 0.5 * (v + vb * e);
        }
        v /= win;
        a(i) = Kokkos::complex<T>(T(v.real()), T(v.imag()));
      });
}

template <class T>
PowerSpectrum measurePower(const Particles& parts, double total_particles,
                           std::shared_ptr<const SlabDecomposition> mesh, const FFT<T>& fft,
                           const PowerOptions& opt) {
  Field<T> delta(mesh, "caustic::measurePower::delta");
  Field<T> work(mesh, "caustic::measurePower::work");
  densityContrastK(delta, work, fft, parts, total_particles, opt);
  PowerSpectrum ps = binPower(delta);
  const double L = mesh->box();
  ps.shot_noise = L * L * L / total_particles;
  if (opt.subtract_shot_noise) {
    for (auto& p : ps.power)
      p -= ps.shot_noise;
    ps.subtracted = true;
  }
  return ps;
}

template PowerSpectrum binPower<float>(const Field<float>&);
template PowerSpectrum binPower<double>(const Field<double>&);
template void densityContrastK<float>(Field<float>&, Field<float>&, const FFT<float>&,
                                      const Particles&, double, const PowerOptions&);
template void densityContrastK<double>(Field<double>&, Field<double>&, const FFT<double>&,
                                       const Particles&, double, const PowerOptions&);
template PowerSpectrum measurePower<float>(const Particles&, double,
                                           std::shared_ptr<const SlabDecomposition>,
                                           const FFT<float>&, const PowerOptions&);
template PowerSpectrum measurePower<double>(const Particles&, double,
                                            std::shared_ptr<const SlabDecomposition>,
                                            const FFT<double>&, const PowerOptions&);

} // namespace caustic
