#pragma once
// Power spectrum estimation on the distributed mesh.
//
// Convention: P(k) = V |delta(k)|^2 / N^6 with delta(k) the forward DFT of mesh.hpp;
// k in h/Mpc, P in (Mpc/h)^3. Bins are spherical shells of width k_F = 2 pi / L centred on
// integer multiples of k_F (bin b holds the modes with b - 1/2 <= |m| < b + 1/2), b = 1..N/2.
// Each bin reports the mode-weighted mean |k|, the mean power and the number of modes counted
// over the full k-space (both members of a +-k pair).
#include "pm/force/painter.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/particles/particles.hpp"

#include <vector>

namespace caustic {

struct PowerSpectrum {
  std::vector<double> k;     // mean |k| of the modes in the bin [h/Mpc]
  std::vector<double> power; // mean power [(Mpc/h)^3]
  std::vector<double> modes; // number of modes
  double shot_noise = 0.0;   // V / N_particles [(Mpc/h)^3], subtracted if `subtracted`
  bool subtracted = false;
};

struct PowerOptions {
  Window window = Window::CIC;
  bool interlace = true;            // second copy shifted by half a cell (Sefusatti et al. 2016)
  bool subtract_shot_noise = false; // for Poisson-like samples; a lattice has no shot noise
};

// Bins the power of delta_k (Fourier space, DFT convention). Collective.
template <class T> PowerSpectrum binPower(const Field<T>& delta_k);

// The binned power of a painted density in Fourier space (any normalisation whose mean maps to
// the DC mode, which is not binned: 1 + delta painted with mass N^3 / N_particles, or delta),
// compensated for `window` and, with `shifted_k` (the same particles painted at x + H/2,
// transformed), interlaced: equal to densityContrastK then binPower, without writing either
// field (the force computation's painted density can be measured in passing). Collective.
template <class T>
PowerSpectrum binCompensatedPower(const Field<T>& rho_k, const Field<T>* shifted_k, Window window);

// The Fourier modes of a field that the bins read (|m| < N/2 + 1/2, bins 1..N/2), packed row by
// row of the transposed layout (in each (y, x) row the modes kz = 0 .. count - 1): 53% of a
// mesh. The interlaced spectrum keeps the unshifted transform here while the same mesh takes the
// shifted copy, so it needs 1.53 meshes instead of two.
template <class T> class BinnedModes {
public:
  // Copies the binned modes of `f_k` (Fourier space). Local; allocates.
  explicit BinnedModes(const Field<T>& f_k);
  const Decomposition& decomp() const { return *_decomp; }
  std::size_t size() const { return _values.extent(0); }
  // Bin limit on |m|^2 (binned modes: |m|^2 <= h^2 + h with h = N/2, i.e. |m| < N/2 + 1/2).
  static long limit(int n) { return static_cast<long>(n / 2) * (n / 2) + n / 2; }
  // Row r's modes start at offsets()(r) in values(); rows = local y-planes x N.
  Kokkos::View<const std::size_t*> offsets() const { return _offsets; }
  Kokkos::View<const Kokkos::complex<T>*> values() const { return _values; }

private:
  std::shared_ptr<const Decomposition> _decomp;
  Kokkos::View<std::size_t*> _offsets;
  Kokkos::View<Kokkos::complex<T>*> _values;
};

// binCompensatedPower with the unshifted transform kept as BinnedModes: the same values, bit for
// bit.
template <class T>
PowerSpectrum binCompensatedPower(const BinnedModes<T>& rho_k, const Field<T>* shifted_k,
                                  Window window);

// Sets ps.shot_noise = V / N_particles and subtracts it from the power if `subtract`.
void addShotNoise(PowerSpectrum& ps, double box, double total_particles, bool subtract);

// Density contrast of the particles in Fourier space, deconvolved by the window and, if asked,
// interlaced; `total_particles` is the global particle count. `work` is overwritten; `delta_k`
// receives the result. Collective.
// (R, here and in measurePower: particles of either precision.)
template <class T, class R>
void densityContrastK(Field<T>& delta_k, Field<T>& work, const FFT<T>& fft,
                      const BasicParticles<R>& parts, double total_particles,
                      const PowerOptions& opt);

// Density contrast, binned power and optional shot-noise subtraction on one mesh (`work`,
// overwritten; the interlaced copy's partner is kept as BinnedModes meanwhile): the tables of
// densityContrastK then binPower, bit for bit. Collective.
template <class T, class R>
PowerSpectrum measurePower(Field<T>& work, const FFT<T>& fft, const BasicParticles<R>& parts,
                           double total_particles, const PowerOptions& opt);
// The same on a mesh of its own.
template <class T, class R>
PowerSpectrum measurePower(const BasicParticles<R>& parts, double total_particles,
                           std::shared_ptr<const SlabDecomposition> mesh, const FFT<T>& fft,
                           const PowerOptions& opt);

} // namespace caustic
