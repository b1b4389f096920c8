#pragma once
// Gaussian white noise drawn per Fourier mode, independent of the rank count and the mesh size.
//
// Each mode with signed integer wavevector m = (mx, my, mz) gets the unit complex Gaussian
// xi(m), <|xi|^2> = 1, from Philox4x32-10 keyed by the 64-bit seed with counter (mx, my, mz, 0)
// for the canonical member of the pair {m, -m}; the other member gets its complex conjugate
// (exact Hermitian symmetry). The DC mode and every mode on a Nyquist plane (|m_i| = N/2) are
// zero: their partners are not representable on the mesh, and this keeps a mode's value the
// same on any mesh that resolves it (low- and high-resolution runs share their large scales).
//
// fixed_amplitude: |xi| = 1 (Angulo & Pontzen 2016); paired: xi -> -xi (phases shifted by pi).
#include "pm/mesh/mesh.hpp"

#include <Random123/philox.h>
#include <cmath>
#include <cstdint>

namespace caustic {

struct NoiseOptions {
  std::uint64_t seed = 42;
  bool fixed_amplitude = false;
  bool paired = false;
};

// Two uniforms in (0, 1), 53 random bits each, from Philox4x32-10 keyed by the 64-bit seed at
// counter (c0, c1, c2, c3): the one source of random numbers of the white noise and of the
// inference's samplers (rank-independent: a function of its arguments only).
KOKKOS_INLINE_FUNCTION void philoxUniforms(std::uint64_t seed, std::uint32_t c0, std::uint32_t c1,
                                           std::uint32_t c2, std::uint32_t c3, double& u1,
                                           double& u2) {
  using Philox = r123::Philox4x32;
  Philox rng;
  const Philox::key_type key = {{static_cast<std::uint32_t>(seed & 0xffffffffu),
                                 static_cast<std::uint32_t>(seed >> 32)}};
  const Philox::ctr_type ctr = {{c0, c1, c2, c3}};
  const Philox::ctr_type r = rng(ctr, key);
  const double inv53 = 1.0 / 9007199254740992.0;
  const std::uint64_t b1 = ((static_cast<std::uint64_t>(r[0]) << 32) | r[1]) >> 11;
  const std::uint64_t b2 = ((static_cast<std::uint64_t>(r[2]) << 32) | r[3]) >> 11;
  u1 = (static_cast<double>(b1) + 0.5) * inv53;
  u2 = (static_cast<double>(b2) + 0.5) * inv53;
}

// The noise value of mode (mx, my, mz); all components in (-N/2, N/2) for any N.
KOKKOS_INLINE_FUNCTION Kokkos::complex<double> whiteNoiseMode(int mx, int my, int mz,
                                                              const NoiseOptions& opt) {
  if (mx == 0 && my == 0 && mz == 0)
    return Kokkos::complex<double>(0.0, 0.0);
  // Canonical half-space: mz > 0, or mz == 0 and (my > 0, or my == 0 and mx > 0).
  const bool canonical = mz > 0 || (mz == 0 && (my > 0 || (my == 0 && mx > 0)));
  const int cx = canonical ? mx : -mx, cy = canonical ? my : -my, cz = canonical ? mz : -mz;
  double u1, u2;
  philoxUniforms(opt.seed, static_cast<std::uint32_t>(cx), static_cast<std::uint32_t>(cy),
                 static_cast<std::uint32_t>(cz), 0u, u1, u2);
  // Box-Muller: |xi|^2 exponential with mean 1, uniform phase.
  const double amp = opt.fixed_amplitude ? 1.0 : km::sqrt(-km::log(u1));
  const double phase = 2.0 * M_PI * u2;
  double re = amp * km::cos(phase), im = amp * km::sin(phase);
  if (!canonical)
    im = -im;
  if (opt.paired) {
    re = -re;
    im = -im;
  }
  return Kokkos::complex<double>(re, im);
}

// Fills `f` (in Fourier space) with the white noise of `opt`.
template <class T> void fillWhiteNoise(Field<T>& f, const NoiseOptions& opt);

} // namespace caustic
