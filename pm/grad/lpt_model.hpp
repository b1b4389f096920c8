#pragma once
// The initial-conditions part of the differentiable model and its adjoint:
//   omega(q) (real-space unit white noise on the particle lattice)
//   -> delta_L(k) = T(k) omega(k), T = N^{3/2} sqrt(P(k) / V), zero on the Nyquist planes
//      (omega(k) = sum_q omega e^{-ik.q}; for omega = whiteNoiseRealSpace(...) this is the noise
//      of a run, ic/lpt.hpp)
//   -> 1LPT/2LPT particles at a_start in lattice order (lptDisplacements, lptParticles).
// Parameters enter through T (the power model) and the growth and velocity factors at a_start.
#include "pm/grad/diff_config.hpp"
#include "pm/grad/parameters.hpp"
#include "pm/ic/white_noise.hpp"
#include "pm/particles/particles.hpp"

#include <array>
#include <memory>

namespace caustic {

class LptModel {
public:
  LptModel(const DiffConfig& cfg, const DiffParams& params);
  // Particles in lattice order (local index ((i - x0) N + j) N + k). Collective.
  Particles forward(const Field<double>& omega) const;
  // omegabar <- the pull-back of adj (x: xbar, p: pbar, lattice order) to the noise; parameter
  // cotangents added to g. Collective.
  void adjoint(const Field<double>& omega, const Particles& adj, Field<double>& omegabar,
               ParameterGradient& g) const;
  // delta <- the linear density contrast today (a = 1, real space, on the lattice) of omega:
  // the inverse transform of T omega(k). Collective.
  void linearDensity(const Field<double>& omega, Field<double>& delta) const;

private:
  // f <- delta_L(k) = T(k) omega(k) (Fourier space).
  void transfer(const Field<double>& omega, Field<double>& f) const;
  // f(k) <- T(k) f(k), zero on the Nyquist planes (f in Fourier space).
  void multiplyByT(Field<double>& f) const;
  // g += the parameters' cotangents through the growth and velocity factors.
  void growthGradient(const Field<double>& delta, const Particles& adj, ParameterGradient& g) const;
  // acc(k) = the pull-back of adj to delta_L(k) (Fourier space).
  void deltaCotangent(const Field<double>& delta, const Particles& adj, Field<double>& acc) const;
  // acc(k) += the pull-back through the 2LPT displacement (work: a scratch lattice field).
  void secondOrderCotangent(const Field<double>& delta, const Particles& adj, Field<double>& work,
                            Field<double>& acc) const;

  DiffConfig _cfg;
  DiffParams _params;
  Cosmology _cosmo;
  std::unique_ptr<FFT<double>> _fft;
  Kokkos::View<double*> _amp; // T per integer |m|^2
  // The parameter derivatives below, computed on the first adjoint() (the forward model does
  // not need them).
  void ensureDerivatives() const;
  mutable bool _derivatives = false;
  // dT/dtheta per |m|^2 for the parameters the power model depends on and the configuration
  // differentiates (empty otherwise).
  mutable std::array<Kokkos::View<double*>, kCosmoParams> _damp;
  // D1, D2 and the velocity factors a^2 E D f at a_start, and their parameter derivatives.
  std::array<double, 4> _growth{};
  mutable std::array<std::array<double, 4>, kCosmoParams> _dgrowth{};
};

// omega(q) with r2c(omega) = N^{3/2} xi: the real-space form of the white noise of `opt`
// (white_noise.hpp), unit variance per point. Overwrites omega. Collective.
void whiteNoiseRealSpace(Field<double>& omega, const FFT<double>& fft, const NoiseOptions& opt);

} // namespace caustic
