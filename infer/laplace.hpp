#pragma once
// The Laplace approximation at a posterior mode x* = (omega*, u*): the marginal covariance of
// the parameters u is the inverse of the Schur complement
//   S = H_uu - H_u,omega H_omega,omega^{-1} H_omega,u
// of the Hessian H of -log P. Hessian-vector products are centred differences of the adjoint
// gradient, H v = (g(x + h v) - g(x - h v)) / 2h (exact for a quadratic posterior), and
// H_omega,omega^{-1} is applied by conjugate gradients (H_omega,omega = 1 + the likelihood's
// Gauss-Newton part is positive definite at a mode). Cost: per parameter one product for its
// column and one CG solve, 2 gradients per product.
#include "infer/field_vector.hpp"

#include <ROL_Objective.hpp>

#include <functional>
#include <vector>

namespace caustic {

struct LaplaceSettings {
  double step = 1e-4;            // h |v| / sqrt(dim(v)): the rms step per component
  double cg_tolerance = 1e-6;    // relative residual of each CG solve
  int cg_max_iterations = 1000;
};

struct LaplaceResult {
  std::vector<std::vector<double>> hessian; // H_uu
  std::vector<std::vector<double>> schur;   // S
  std::vector<std::vector<double>> covariance; // S^{-1}: the marginal covariance of u
  std::vector<int> cg_iterations;           // per parameter
  std::vector<double> cg_residuals;         // relative, per parameter
  long gradients = 0;                       // gradient evaluations spent
};

// H v at x (v with the layout of x). Collective.
void hessianVector(ROL::Objective<double>& obj, const FieldVector& x, const FieldVector& v,
                   FieldVector& hv, double step, long* gradients = nullptr);

// hv <- H v at the mode (a Hessian or its Gauss-Newton approximation); adds the gradients it
// spent to *gradients.
using HessianProduct = std::function<void(const FieldVector& v, FieldVector& hv, long* gradients)>;

// The Laplace covariance of the parameters carried by x (x.params().size() > 0), H by
// differences of obj's gradient. Collective. Throws std::runtime_error if S is not positive
// definite (x is not a mode).
LaplaceResult laplaceCovariance(ROL::Objective<double>& obj, const FieldVector& x,
                                const LaplaceSettings& s = {});
// The same with given Hessian products: `columns` for the parameters' columns (H e_j) and
// `noise_block` for the CG solves with H_omega,omega (it may be an approximation, e.g.
// PosteriorObjective::gaussNewtonVector, positive definite where differences of the gradient
// are not).
LaplaceResult laplaceCovariance(const HessianProduct& columns, const HessianProduct& noise_block,
                                const FieldVector& x, const LaplaceSettings& s = {});

// The inverse of a small symmetric positive-definite matrix (Cholesky); throws
// std::runtime_error if it is not positive definite.
std::vector<std::vector<double>> invertSpd(const std::vector<std::vector<double>>& a);

} // namespace caustic
