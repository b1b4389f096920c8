#pragma once
// A preconditioner of the noise diagonal in Fourier space: omega = P z with P(k) =
// 1 / sqrt(1 + c(|k|)), c the likelihood's curvature per shell of |k| (Gauss-Newton, estimated
// from random probes). In z the noise block of the Hessian is close to the identity on every
// scale, instead of ranging from 1 (prior-dominated modes) to 1 + S/N (data-dominated ones):
// L-BFGS converges in fewer iterations, and HMC with unit masses in z is HMC with the mass
// P^{-2} in omega.
#include "pm/mesh/mesh.hpp"

#include <Kokkos_Core.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace caustic {

class FourierPreconditioner {
public:
  // Identity on `lattice`.
  explicit FourierPreconditioner(std::shared_ptr<const SlabDecomposition> lattice);

  // f <- P f (real space in and out; P is symmetric). Collective.
  void apply(Field<double>& f) const;
  // f <- P^{-1} f. Collective.
  void applyInverse(Field<double>& f) const;
  // c per integer |m|^2 (0 .. 3 (N/2)^2); P = 1 / sqrt(1 + c). Empty shells take the nearest
  // measured value.
  void setCurvature(const std::vector<double>& c_per_m2);
  const std::vector<double>& curvature() const { return _c; }

  // Estimates c per |m|^2 from `probes` products of the likelihood's Gauss-Newton Hessian
  // (`likelihood_product(v, hv)`: hv = H_like v, noise only) with unit white-noise probes:
  // c(shell) = sum Re(v^* (H v)) / sum |v|^2 over the shell's modes. Collective.
  void estimate(const std::function<void(const Field<double>&, Field<double>&)>& likelihood_product,
                int probes, std::uint64_t seed);

private:
  std::shared_ptr<const SlabDecomposition> _lattice;
  std::unique_ptr<FFT<double>> _fft;
  std::vector<double> _c;
  void multiply(Field<double>& f, const Kokkos::View<double*>& table) const;
  Kokkos::View<double*> _p, _pinv; // P and 1 / P per |m|^2
};

} // namespace caustic
