#include "pm/analysis/power_spectrum.hpp"

#include "pm/core/memory.hpp"
#include "pm/core/profiling.hpp"

#include <Kokkos_ScatterView.hpp>
#include <cmath>
#include <stdexcept>

namespace caustic {

namespace {

// Bins power(mode) (|delta(k)|^2 in DFT units, before the V / N^6 normalisation) over the local
// modes in spherical shells and reduces over the ranks. Collective.
template <class PowerOf>
PowerSpectrum binModes(const Decomposition& d, const char* label, const PowerOf& power) {
  const int n = d.n();
  const int nbins = n / 2 + 1; // bin 0 holds only k = 0 and is dropped
  const double kf = d.kFundamental();
  const double volume = d.box() * d.box() * d.box();
  const double norm = volume / (static_cast<double>(n) * n * n) / (static_cast<double>(n) * n * n);
  Kokkos::View<double* [3]> acc("caustic::binPower::acc", nbins);
  auto sv = Kokkos::Experimental::create_scatter_view(acc);
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
      label, KOKKOS_LAMBDA(const MeshMode& mode) {
        const long q = static_cast<long>(mode.mx) * mode.mx + static_cast<long>(mode.my) * mode.my +
                       static_cast<long>(mode.mz) * mode.mz;
        const double m = tabulate ? mag(q) : km::sqrt(double(q));
        const int b = tabulate ? bin(q) : static_cast<int>(km::floor(m + 0.5));
        if (b == 0 || b >= nbins)
          return;
        // Modes with 0 < kz < N/2 stand for their conjugate partner too (mode.weight = 2).
        const double w = mode.weight;
        const double p = power(mode) * norm;
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

// The window compensation and interlacing of a painted density in Fourier space, from per-axis
// tables over m in [-N/2, N/2] (index m + N/2): the window sinc(pi m / N)^p and the interlacing
// phase e^{i pi m / N}; a mode's values are products over its three axes, so no transcendental
// function is evaluated per mode.
struct Compensation {
  Kokkos::View<double*> win, phase_cos, phase_sin;
  int half = 0;
  bool interlace = false;

  Compensation(int n, Window window, bool interlaced)
      : win("caustic::densityContrastK::window", n + 1),
        phase_cos("caustic::densityContrastK::cos", n + 1),
        phase_sin("caustic::densityContrastK::sin", n + 1), half(n / 2), interlace(interlaced) {
    const int p = windowOrder(window);
    auto w = win, c = phase_cos, s1 = phase_sin;
    Kokkos::parallel_for(
        "caustic::densityContrastK::tables", Kokkos::RangePolicy<>(0, n + 1), KOKKOS_LAMBDA(int j) {
          const double s = M_PI * (j - n / 2) / n; // k_i H / 2 = pi m_i / N
          const double sinc = s == 0.0 ? 1.0 : km::sin(s) / s;
          w(j) = km::pow(sinc, p);
          c(j) = km::cos(s);
          s1(j) = km::sin(s);
        });
  }

  // The compensated (and interlaced: b the copy painted at x + H/2) value of a mode, rounded to
  // T as it is stored in a mesh.
  template <class T>
  KOKKOS_INLINE_FUNCTION Kokkos::complex<T>
  operator()(const MeshMode& mode, const Kokkos::complex<T>& a, const Kokkos::complex<T>& b) const {
    const int jx = mode.mx + half, jy = mode.my + half, jz = mode.mz + half;
    const double w = win(jx) * win(jy) * win(jz);
    Kokkos::complex<double> v(a.real(), a.imag());
    if (interlace) {
      // The copy painted at x + H/2 is the field translated by +H/2: undo with
      // e^{+ik.s} = product over the axes of e^{i pi m_i / N}.
      const Kokkos::complex<double> e = Kokkos::complex<double>(phase_cos(jx), phase_sin(jx)) *
                                        Kokkos::complex<double>(phase_cos(jy), phase_sin(jy)) *
                                        Kokkos::complex<double>(phase_cos(jz), phase_sin(jz));
      const Kokkos::complex<double> vb(b.real(), b.imag());
      v = 0.5 * (v + vb * e);
    }
    v /= w;
    return Kokkos::complex<T>(T(v.real()), T(v.imag()));
  }
};

} // namespace

template <class T> PowerSpectrum binPower(const Field<T>& delta_k) {
  ScopedRegion region("caustic::binPower");
  auto c = delta_k.complex();
  return binModes(
      delta_k.decomp(), "caustic::binPower::accumulate", KOKKOS_LAMBDA(const MeshMode& mode) {
        const auto v = c(mode.index);
        return double(v.real()) * v.real() + double(v.imag()) * v.imag();
      });
}

template <class T>
PowerSpectrum binCompensatedPower(const Field<T>& rho_k, const Field<T>* shifted_k, Window window) {
  ScopedRegion region("caustic::binCompensatedPower");
  const Compensation comp(rho_k.decomp().n(), window, shifted_k != nullptr);
  auto a = rho_k.complex();
  auto b = shifted_k ? shifted_k->complex() : a;
  return binModes(
      rho_k.decomp(), "caustic::binCompensatedPower::accumulate",
      KOKKOS_LAMBDA(const MeshMode& mode) {
        const auto v = comp(mode, a(mode.index), b(mode.index));
        return double(v.real()) * v.real() + double(v.imag()) * v.imag();
      });
}

template <class T> BinnedModes<T>::BinnedModes(const Field<T>& f_k) : _decomp(f_k.decompPtr()) {
  ScopedRegion region("caustic::BinnedModes");
  const auto& d = *_decomp;
  const int n = d.n(), y0 = d.yStart(), nzc = d.nzComplex();
  const long q_max = limit(n);
  const std::size_t rows = static_cast<std::size_t>(d.localNy()) * n;
  _offsets = Kokkos::View<std::size_t*>("caustic::BinnedModes::offsets", rows + 1);
  auto off = _offsets;
  // Row (ly, x) keeps kz = 0 .. c - 1 with c the number of kz in [0, N/2] with
  // mx^2 + my^2 + kz^2 <= q_max (an integer square root); offsets are their exclusive prefix sum.
  Kokkos::parallel_scan(
      "caustic::BinnedModes::offsets", Kokkos::RangePolicy<>(0, rows + 1),
      KOKKOS_LAMBDA(const std::size_t r, std::size_t& sum, const bool final) {
        if (final)
          off(r) = sum;
        if (r == rows)
          return;
        const long mx = SlabDecomposition::signedIndex(static_cast<int>(r % n), n);
        const long my = SlabDecomposition::signedIndex(y0 + static_cast<int>(r / n), n);
        const long rest = q_max - mx * mx - my * my;
        if (rest < 0)
          return;
        long z = static_cast<long>(km::sqrt(double(rest)));
        while (z * z > rest)
          --z;
        while ((z + 1) * (z + 1) <= rest)
          ++z;
        sum += static_cast<std::size_t>(z + 1 < nzc ? z + 1 : nzc);
      });
  std::size_t total = 0;
  Kokkos::deep_copy(total, Kokkos::subview(_offsets, rows));
  // Every entry is written below: no zero fill (a first touch of 0.53 mesh per output).
  _values = hugePageView<Kokkos::View<Kokkos::complex<T>*>>("caustic::BinnedModes::values", total);
  auto v = _values;
  auto c = f_k.complex();
  d.forEachMode(
      "caustic::BinnedModes::copy", KOKKOS_LAMBDA(const MeshMode& mode) {
        const std::size_t r = mode.index / nzc, i = off(r) + mode.iz;
        if (i < off(r + 1))
          v(i) = c(mode.index);
      });
}

template <class T>
PowerSpectrum binCompensatedPower(const BinnedModes<T>& rho_k, const Field<T>* shifted_k,
                                  Window window) {
  ScopedRegion region("caustic::binCompensatedPower");
  const auto& d = rho_k.decomp();
  if (shifted_k && &shifted_k->decomp() != &d)
    throw std::logic_error("binCompensatedPower: the shifted copy is on another decomposition");
  const Compensation comp(d.n(), window, shifted_k != nullptr);
  const std::size_t nzc = d.nzComplex();
  auto off = rho_k.offsets();
  auto a = rho_k.values();
  // binModes reads only the binned modes (bins 1..N/2: |m|^2 <= BinnedModes::limit).
  auto b = shifted_k ? shifted_k->complex() : typename Field<T>::complex_view();
  const bool interlaced = shifted_k != nullptr;
  return binModes(
      d, "caustic::binCompensatedPower::accumulate", KOKKOS_LAMBDA(const MeshMode& mode) {
        const auto va = a(off(mode.index / nzc) + mode.iz);
        const auto v = comp(mode, va, interlaced ? b(mode.index) : va);
        return double(v.real()) * v.real() + double(v.imag()) * v.imag();
      });
}

template <class T, class R>
void densityContrastK(Field<T>& delta_k, Field<T>& work, const FFT<T>& fft,
                      const BasicParticles<R>& parts, double total_particles,
                      const PowerOptions& opt) {
  ScopedRegion region("caustic::densityContrastK");
  const auto& d = delta_k.decomp();
  const Painter<T> painter(delta_k.decompPtr(), opt.window);
  auto toContrast = [&](Field<T>& f, double shift) {
    paintDensityContrast(f, painter, parts, total_particles, shift);
    fft.forward(f);
  };
  toContrast(delta_k, 0.0);
  if (opt.interlace)
    toContrast(work, 0.5);
  const Compensation comp(d.n(), opt.window, opt.interlace);
  auto a = delta_k.complex();
  auto b = work.complex();
  d.forEachMode(
      "caustic::densityContrastK::compensate", KOKKOS_LAMBDA(const MeshMode& mode) {
        a(mode.index) = comp(mode, a(mode.index), b(mode.index));
      });
}

void addShotNoise(PowerSpectrum& ps, double box, double total_particles, bool subtract) {
  ps.shot_noise = box * box * box / total_particles;
  if (subtract) {
    for (auto& p : ps.power)
      p -= ps.shot_noise;
    ps.subtracted = true;
  }
}

template <class T, class R>
PowerSpectrum measurePower(Field<T>& work, const FFT<T>& fft, const BasicParticles<R>& parts,
                           double total_particles, const PowerOptions& opt) {
  ScopedRegion region("caustic::measurePower");
  const Painter<T> painter(work.decompPtr(), opt.window);
  auto transformed = [&](double shift) -> Field<T>& {
    paintDensityContrast(work, painter, parts, total_particles, shift);
    fft.forward(work);
    return work;
  };
  PowerSpectrum ps;
  if (opt.interlace) {
    const BinnedModes<T> unshifted(transformed(0.0));
    ps = binCompensatedPower(unshifted, &transformed(0.5), opt.window);
  } else {
    ps = binCompensatedPower<T>(transformed(0.0), nullptr, opt.window);
  }
  addShotNoise(ps, work.decomp().box(), total_particles, opt.subtract_shot_noise);
  return ps;
}

template <class T, class R>
PowerSpectrum measurePower(const BasicParticles<R>& parts, double total_particles,
                           std::shared_ptr<const SlabDecomposition> mesh, const FFT<T>& fft,
                           const PowerOptions& opt) {
  Field<T> work(mesh, "caustic::measurePower::work");
  return measurePower(work, fft, parts, total_particles, opt);
}

template PowerSpectrum binPower<float>(const Field<float>&);
template PowerSpectrum binPower<double>(const Field<double>&);
template PowerSpectrum binCompensatedPower<float>(const Field<float>&, const Field<float>*, Window);
template PowerSpectrum binCompensatedPower<double>(const Field<double>&, const Field<double>*,
                                                   Window);
template class BinnedModes<float>;
template class BinnedModes<double>;
template PowerSpectrum binCompensatedPower<float>(const BinnedModes<float>&, const Field<float>*,
                                                  Window);
template PowerSpectrum binCompensatedPower<double>(const BinnedModes<double>&, const Field<double>*,
                                                   Window);

// Mesh precision T, particle precision R (every combination: observers of either mesh
// precision visit particles of either).
#define CAUSTIC_POWER_PARTICLES(T, R)                                                              \
  template void densityContrastK(Field<T>&, Field<T>&, const FFT<T>&, const BasicParticles<R>&,    \
                                 double, const PowerOptions&);                                     \
  template PowerSpectrum measurePower(Field<T>&, const FFT<T>&, const BasicParticles<R>&, double,  \
                                      const PowerOptions&);                                        \
  template PowerSpectrum measurePower<T>(const BasicParticles<R>&, double,                         \
                                         std::shared_ptr<const SlabDecomposition>, const FFT<T>&,  \
                                         const PowerOptions&);
CAUSTIC_POWER_PARTICLES(float, double)
CAUSTIC_POWER_PARTICLES(double, double)
CAUSTIC_POWER_PARTICLES(float, float)
CAUSTIC_POWER_PARTICLES(double, float)
#undef CAUSTIC_POWER_PARTICLES

} // namespace caustic
