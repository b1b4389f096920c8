#pragma once
// Corrections of the PM force, each with its vector-Jacobian products (VJPs), so that a
// correction takes part in the adjoint (grad/trajectory.hpp) through this interface alone.
//
// Two kinds, called by Gravity at fixed places of the force computation:
//  - PotentialCorrection acts on the potential in Fourier space, phi(k) <- K(k, a; theta) phi(k)
//    (a hat-function filter, a neural correction of the Green's function as in Lanzieri et al.
//    2023). Its VJPs use the inner product of Fourier fields over the full k space,
//    <u, v> = sum_k w(k) Re(conj(u(k)) v(k)), w the MeshMode weight of the stored half.
//  - ParticleCorrection adds a force at the particle positions, f_i += C(x_i, a; theta)
//    (a short-range correction, a network evaluated per particle).
// Units: phi as in gravity.hpp; forces in the units of Gravity::force (H0^2 Mpc/h times the
// FastPM prefactors).
#include "pm/mesh/mesh.hpp"

#include <string>
#include <vector>

namespace caustic {

template <class T> class PotentialCorrection {
public:
  virtual ~PotentialCorrection() = default;
  virtual std::string name() const = 0;
  // theta: the correction's own parameters (may be empty).
  virtual std::vector<double> parameters() const = 0;
  // phi_k <- K phi_k (Fourier space, local modes). Collective if it needs to be.
  virtual void apply(Field<T>& phi_k, double a) const = 0;
  // VJP with respect to the potential: phibar_k <- K^H phibar_k.
  virtual void vjpPotential(Field<T>& phibar_k, double a) const = 0;
  // VJP with respect to theta: grad_i += <phibar_k, dK/dtheta_i phi_k>, phi_k the potential
  // before the correction. Local modes only: the caller reduces over ranks. grad has
  // parameters().size() entries.
  virtual void vjpParameters(const Field<T>& phibar_k, const Field<T>& phi_k, double a,
                             std::vector<double>& grad) const = 0;
};

class ParticleCorrection {
public:
  using Vectors = Kokkos::View<double* [3]>;
  virtual ~ParticleCorrection() = default;
  virtual std::string name() const = 0;
  virtual std::vector<double> parameters() const = 0;
  // acc(i) += scale C(x_i, a) for the first n particles (positions [Mpc/h] on this rank).
  // Collective (a correction may paint and read out a mesh).
  virtual void apply(const Vectors& x, std::size_t n, const Vectors& acc, double a,
                     double scale) const = 0;
  // xbar(i) += scale (dC/dx_i)^T z_i and grad += scale sum_i (dC(x_i)/dtheta)^T z_i (local
  // particles only: the caller reduces grad over ranks). Collective.
  virtual void vjp(const Vectors& x, std::size_t n, const Vectors& z, double scale,
                   const Vectors& xbar, double a, std::vector<double>& grad) const = 0;
};

} // namespace caustic
