#pragma once
// Lagrangian perturbation theory initial conditions on the particle lattice.
//
// Linear density at a = 1 in the DFT convention of mesh.hpp:
//   delta_L(k) = xi(k) N^3 sqrt(P(k) / V),  so that  P(k) = V <|delta_L(k)|^2> / N^6.
// Displacements (Scoccimarro 1998, 2LPTic and FastPM convention):
//   x = q + D1 psi1 + D2 psi2,  psi1 = -grad phi1,  psi2 = grad phi2,
//   lap phi1 = delta_L,  lap phi2 = sum_{i<j} (phi1_ii phi1_jj - phi1_ij^2),
// so psi1(k) = i k / k^2 delta_L(k) and psi2(k) = -i k / k^2 S2(k), with D2 ~ -3/7 D1^2 < 0.
// Momenta (FastPM): p = a^2 dx/dt = a^2 E(a) (D1 f1 psi1 + D2 f2 psi2)  [H0 Mpc/h].
// The Nyquist planes of psi2 are zeroed (the product S2 is not dealiased).
#include "pm/cosmology/cosmology.hpp"
#include "pm/cosmology/linear_power.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/particles/particles.hpp"

#include <array>
#include <memory>

namespace caustic {

// Multiplies white noise xi(k) (Fourier space) in place into delta_L(k) at a = 1.
template <class T> void applyLinearPower(Field<T>& noise, const LinearPower& power);

template <class T> struct LptFields {
  std::array<std::unique_ptr<Field<T>>, 3> psi1; // real space, at D1 = 1 [Mpc/h]
  std::array<std::unique_ptr<Field<T>>, 3> psi2; // real space, at D2 = 1 [Mpc/h]; empty if order 1
  int order = 1;
};

// Displacement fields of order 1 or 2 from delta_L(k) (Fourier space, left unchanged).
template <class T>
LptFields<T> lptDisplacements(const Field<T>& delta_k, const FFT<T>& fft, int order);

// Particles on the lattice of the displacement mesh, q = (i, j, k) L/N + offset on every axis
// [Mpc/h], displaced and with momenta at scale factor a. Each rank makes the particles of its
// x-slab. The offset translates the whole realisation; half a PM cell keeps particles off the
// PM mesh points, where the CIC window has its kink and the painted density of a displaced
// lattice would respond one-sidedly (a half-cell shift of the force).
// R: the particles' precision (positions and momenta computed in double, then stored).
template <class T, class R = double>
BasicParticles<R> lptParticles(const LptFields<T>& lpt, const Cosmology& cosmo, double a,
                               double offset = 0.0);

} // namespace caustic
