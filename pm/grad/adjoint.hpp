#pragma once
// Differentiable PM: reverse-mode gradients of a scalar loss of the final particles with respect
// to the white noise, sigma8, Omega_m and the parameters of a Fourier-space potential filter, by
// the adjoint method of pmwd (Li et al. 2022, arXiv:2211.09958).
//
// Forward model (double precision), the same code as a run:
//   omega(q) (real-space unit white noise on the particle lattice)
//   -> delta_L(k) = T(k) omega(k), T = N^{3/2} sqrt(P(k) / V), zero on the Nyquist planes
//      (omega(k) = sum_q omega e^{-ik.q}; for omega = whiteNoiseRealSpace(...) this is the noise
//      of a run, lpt.hpp)
//   -> 2LPT particles at a_start (lptDisplacements, lptParticles)
//   -> FastPM kick-drift-kick steps with fused kicks (NBody<double>: finite-difference gravity,
//      CIC or TSC, optional PotentialFilter) -> particles synchronised at a_end.
// Reverse: the trajectory is not stored. From the final state the leapfrog is run backwards
// (undo kick, undo drift, ...) and at each kick and drift the cotangents (xbar, pbar) are pulled
// back through it; memory is that of one state plus its cotangents, whatever the step count.
// Kick at positions x with factor k (p += k F(x)):  xbar += k (dF/dx)^T pbar, where dF/dx has
//   a direct part (window derivatives at fixed potential) and one through the painted density
//   (rhobar = Phi R^T pbar, read out with the window derivative); the potential operator Phi is
//   real and even in k, hence self-adjoint.
// Drift (x += d p):  pbar += d xbar.
// Cosmology enters through the kick and drift factors, the LPT growth and velocity factors and
// the linear power; their Omega_m derivatives are centred differences of the background solution
// (scalars: step 1e-5, relative accuracy ~1e-9), every mesh and particle derivative is adjoint.
// Migration is a permutation: cotangents travel with their particles.
#include "pm/cosmology/cosmology.hpp"
#include "pm/force/gravity.hpp"
#include "pm/cosmology/linear_power.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/particles/migrate.hpp"
#include "pm/particles/particles.hpp"
#include "pm/stepping/stepping.hpp"
#include "pm/ic/white_noise.hpp"

#include <memory>
#include <vector>

namespace caustic {

// K(k) = 1 + sum_i theta_i B_i(|k|): B_i piecewise-linear hats on the nodes k_i [h/Mpc]
// (B_0 = 1 below k_0, B_last = 1 above the last node). Linear in theta: the hook where a learned
// force correction acts, with its gradient.
class HatFilter : public PotentialFilter<double> {
public:
  HatFilter(std::vector<double> nodes, std::vector<double> theta);
  void apply(Field<double>& phi_k, double a) const override;
  // grad_i += sum over all modes of Re(conj(lhs(k)) rhs(k)) B_i(|k|) (local modes; both fields in
  // Fourier space, the sum over the full k space from the stored half).
  void accumulateGradient(const Field<double>& lhs, const Field<double>& rhs,
                          std::vector<double>& grad) const;
  const std::vector<double>& nodes() const { return _nodes; }
  const std::vector<double>& theta() const { return _theta; }

private:
  std::vector<double> _nodes, _theta;
  Kokkos::View<double*> _dnodes, _dtheta;
};

// omega(q) with r2c(omega) = N^{3/2} xi: the real-space form of the white noise of `opt`
// (white_noise.hpp), unit variance per point. Overwrites omega. Collective.
void whiteNoiseRealSpace(Field<double>& omega, const FFT<double>& fft, const NoiseOptions& opt);

struct DiffParams {
  double Omega_m = 0.3089;
  double sigma8 = 0.8159;
  std::vector<double> filter; // theta, one per DiffConfig::filter_nodes
};

// Gradient of a loss; `noise` on the particle lattice, real space.
struct DiffGradient {
  std::unique_ptr<Field<double>> noise;
  double Omega_m = 0.0;
  double sigma8 = 0.0;
  std::vector<double> filter;
};

struct DiffConfig {
  CosmologyParams cosmology; // all but Omega_m and sigma8, which come from DiffParams
  std::shared_ptr<const SlabDecomposition> lattice; // N_p^3 particles and the noise
  std::shared_ptr<const SlabDecomposition> mesh;    // PM mesh
  double a_start = 0.1;
  double a_end = 1.0;
  int steps = 5;
  Spacing spacing = Spacing::Linear;
  int lpt_order = 2;
  Window window = Window::CIC;
  double lattice_offset = 0.0;      // [Mpc/h], as ICOptions
  std::vector<double> filter_nodes; // [h/Mpc]; empty: no filter
};

// Per-rank partial gradients with respect to the parameters (reduced over ranks by the caller).
struct ParamGrad {
  double Omega_m = 0.0, sigma8 = 0.0;
  std::vector<double> filter;
  void allreduce(const Comm& comm);
};

// The N-body part of the model for one parameter set: forward steps and their reverse.
class Trajectory {
public:
  Trajectory(const DiffConfig& cfg, const DiffParams& params, double total_particles);

  // Forward from particles synchronised at a_start to a_end (synchronised). Collective.
  void forward(Particles& parts);
  // Reverse: parts at a_end -> reconstructed at a_start; adj (x: xbar, p: pbar, same order and
  // size as parts) pulled back to a_start; parameter cotangents added to g. Collective.
  void reverse(Particles& parts, Particles& adj, ParamGrad& g);

  // The pieces, in the order of the forward leapfrog: kick s (s = 0..S) at the positions of
  // boundary s, drift s (s = 1..S) from boundary s-1 to s.
  int steps() const { return static_cast<int>(_a.size()) - 1; }
  void kick(Particles& parts, int s);
  void drift(Particles& parts, int s);
  // Undo kick / drift s and pull (xbar, pbar) back through it; parts and adj are migrated to
  // their slabs after a drift. Collective.
  void kickReverse(Particles& parts, Particles& adj, int s, ParamGrad& g);
  void driftReverse(Particles& parts, Particles& adj, int s, ParamGrad& g);

  // The force and its vector-Jacobian product, for the tests and the pieces above:
  // F(x) at the particles (f <- F), at scale factor a (for the filter). Collective.
  void force(const Particles& parts, const Kokkos::View<double* [3]>& f, double a);
  // xbar += scale (dF/dx)^T z and g += scale dF/dtheta . z (filter and Omega_m), with f <- F(x)
  // as a by-product. Collective.
  void forceVJP(const Particles& parts, const Kokkos::View<double* [3]>& z, double scale,
                const Kokkos::View<double* [3]>& xbar, const Kokkos::View<double* [3]>& f,
                ParamGrad& g, double a);

  const std::vector<double>& boundaries() const { return _a; }
  NBody<double>& nbody() { return *_nbody; }

private:
  DiffConfig _cfg;
  DiffParams _params;
  Cosmology _cosmo;
  double _total;
  std::vector<double> _a;              // step boundaries
  std::vector<double> _kick, _dkick;   // kick factor at each boundary and d/dOmega_m
  std::vector<double> _drift, _ddrift; // drift factor of each step (index s) and d/dOm
  std::shared_ptr<HatFilter> _filter;
  std::unique_ptr<NBody<double>> _nbody;
  std::unique_ptr<Field<double>> _adjField; // the second mesh buffer of the reverse pass
  Kokkos::View<double* [3]> _f;             // the force at the particles, reused
  Migrator _migrator;
};

// The initial conditions part: omega -> particles at a_start in lattice order, and its adjoint.
class LptModel {
public:
  LptModel(const DiffConfig& cfg, const DiffParams& params);
  // Particles in lattice order (local index ((i - x0) N + j) N + k). Collective.
  Particles forward(const Field<double>& omega) const;
  // omegabar <- the pull-back of adj (x: xbar, p: pbar, lattice order) to the noise; parameter
  // cotangents added to g. Collective.
  void adjoint(const Field<double>& omega, const Particles& adj, Field<double>& omegabar,
               ParamGrad& g) const;

private:
  // delta_L(k) = T(k) omega(k) (Fourier space) into f; with `dT` the Omega_m derivative of T.
  void transfer(const Field<double>& omega, Field<double>& f, bool dOmega) const;

  DiffConfig _cfg;
  DiffParams _params;
  Cosmology _cosmo;
  std::unique_ptr<FFT<double>> _fft;
  Kokkos::View<double*> _amp, _damp; // T and dT/dOmega_m per integer |m|^2
  // D1, D2 and the velocity factors a^2 E D f at a_start, and their Omega_m derivatives.
  double _d1, _d2, _v1, _v2, _dd1, _dd2, _dv1, _dv2;
};

// forward(noise, params) -> state; gradient(cotangent) -> (d noise, d params).
class DiffPM {
public:
  explicit DiffPM(DiffConfig cfg);
  // Runs the model; returns the final particles in lattice order. Collective.
  const Particles& forward(const Field<double>& noise, const DiffParams& params);
  const Particles& state() const { return _state; }
  // The initial particles (a_start, lattice order) of the last forward run.
  const Particles& initial() const { return _initial; }
  // Gradient of a loss whose cotangent with respect to the final state is `cot` (x: dL/dx,
  // p: dL/dp, lattice order as state()). Collective.
  DiffGradient gradient(const Particles& cot);

  // After gradient(): largest difference between the reconstructed and the true initial
  // positions [Mpc/h] and momenta, and the rms displacement |x - q| at a_start [Mpc/h].
  struct Reconstruction {
    double max_dx = 0.0, max_dp = 0.0, rms_displacement = 0.0, rms_momentum = 0.0;
  };
  const Reconstruction& reconstruction() const { return _rec; }
  const DiffConfig& config() const { return _cfg; }
  double totalParticles() const;

private:
  DiffConfig _cfg;
  DiffParams _params;
  std::unique_ptr<Field<double>> _noise;
  Particles _state, _initial;
  Reconstruction _rec;
};

// Loss: sum |x - x_target|^2 (periodic, nearest image) + weight_p sum |p - p_target|^2 over all
// particles; state and target in lattice order (as DiffPM). cot <- dL/d(x, p). Collective.
double particleLoss(const Particles& state, const Particles& target, double box, double weight_p,
                    Particles& cot, const Comm& comm);

// Loss: chi^2 = sum_cells mask (delta - observed)^2 / sigma^2, delta the CIC/TSC-painted density
// contrast of the final particles on `mesh`; sigma [same units as delta] per cell; mask 0/1 (or
// weights; no mask: all 1).
class FieldChi2Loss {
public:
  FieldChi2Loss(std::shared_ptr<const SlabDecomposition> mesh,
                std::shared_ptr<const SlabDecomposition> lattice, Window window,
                const Field<double>& observed, const Field<double>& sigma,
                const Field<double>* mask = nullptr);
  // Value; cot <- dL/d(x, p) in lattice order (p part zero). Collective.
  double operator()(const Particles& state, Particles& cot) const;
  // delta of the state on the mesh (for plots and tests). Collective.
  void density(const Particles& state, Field<double>& delta) const;

private:
  std::shared_ptr<const SlabDecomposition> _mesh, _lattice;
  Painter<double> _painter;
  const Field<double>& _obs;
  const Field<double>& _sigma;
  const Field<double>* _mask;
};

// A deep copy of the particles (size and capacity).
Particles copyParticles(const Particles& p);

} // namespace caustic
