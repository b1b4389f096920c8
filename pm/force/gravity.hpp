#pragma once
// PM gravity: paint -> r2c FFT -> potential (Green's function, optional window deconvolution,
// optional potential correction) -> finite-difference kernel: one c2r FFT of the potential and
// the gradient taken during the readout; exact kernel: per axis a gradient kernel, c2r FFT and
// readout -> optional particle correction added at the probes.
//
// Units: the force is F = -grad phi with lap phi = 3/2 Omega_m delta (comoving, H0 = 1, lengths
// in Mpc/h), so that dp/da = F / (a^2 E(a)) for p = a^2 dx/dt [H0 Mpc/h] (FastPM's convention).
// Kernels (k_i = 2 pi m_i / L, H the cell size):
//   exact:             phi(k) = -3/2 Omega_m delta(k) / k^2,           D_i = i k_i
//   finite_difference: 1/k^2 -> 1/sum_i (2/H sin(k_i H/2))^2 (the 7-point Laplacian),
//                      D_i = i (8 sin(k_i H) - sin(2 k_i H)) / (6 H) (4-point gradient)
// The DC mode and the Nyquist planes of the exact gradient are zero. With `deconvolve`, delta is
// divided by the paint and readout windows W(k)^2.
#include "pm/core/timers.hpp"
#include "pm/force/force_correction.hpp"
#include "pm/force/painter.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/mesh/workspace.hpp"

#include <functional>
#include <memory>
#include <string>

namespace caustic {

enum class GravityKernel { Exact, FiniteDifference };
GravityKernel gravityKernelFromName(const std::string& name); // "exact" | "finite_difference"

// Defaults as FastPM: CIC and finite-difference kernels. On a mesh finer than the particle
// lattice (B = 2), the spectral kernels amplify the lattice-scale aliasing of the painted density
// (sidebands of the mesh Nyquist mode): the linear growth of the largest modes comes out 5-10%
// too fast in 10 steps, where the finite-difference kernels, which vanish at the Nyquist
// frequency, give it to better than 0.5% (tests/test_pm_mpi.cpp).
struct GravityOptions {
  Window window = Window::CIC;
  GravityKernel kernel = GravityKernel::FiniteDifference;
  bool deconvolve = false;
};

template <class T> class Gravity {
public:
  // Mesh buffers force() leases: the finite-difference kernel one, the exact kernel two.
  static int meshBuffers(const GravityOptions& opt) {
    return opt.kernel == GravityKernel::Exact ? 2 : 1;
  }
  // Meshes and FFT plans from `workspace` (leased during force()).
  Gravity(std::shared_ptr<Workspace<T>> workspace, double Omega_m, const GravityOptions& opt);
  // Collective: a workspace of its own (FFTs planned with `fft_flags`).
  Gravity(std::shared_ptr<const SlabDecomposition> mesh, double Omega_m, const GravityOptions& opt,
          unsigned fft_flags = FFTW_ESTIMATE);

  // acc(i, :) <- scale * F at the first `nprobes` probe positions (acc(i, :) += ... if
  // `accumulate`: with acc = the momenta and scale = a kick factor this is the kick, fused with
  // the readout). The first `nsources` sources are particles of equal mass, `total_sources` of
  // them over all ranks. Sources and probes must be on their owning ranks. Collective. R (the
  // positions) is double or float; `Acc` is a View<float*[3]> or View<double*[3]>.
  template <class R, class Acc>
  void force(const Kokkos::View<R* [3]>& sources, std::size_t nsources, double total_sources,
             const Kokkos::View<R* [3]>& probes, std::size_t nprobes, const Acc& acc, double a,
             double scale = 1.0, bool accumulate = false);

  // f(k) <- phi(k) / N^3 from the painted density f(k) (Fourier space, local modes): the
  // Green's function with its prefactor, the window deconvolution if asked, and the potential
  // correction if `correct`. Without the correction a real, even kernel: its own adjoint.
  void applyPotential(Field<T>& f, double a, bool correct = true) const;

  // A reader of the painted density: called in every force() after the forward FFT, before the
  // potential is applied, with the density in Fourier space (mass N^3 / total_sources per
  // source: 1 + delta, DC mode N^3), the number of sources and the force's scale factor. It must
  // not write the field; it may lease the workspace's other buffers. Outputs that need the density
  // at the positions a force is computed at (a power spectrum at an output time) take it from here
  // rather than painting and transforming it again. Timed as `phase`; an empty tap removes it.
  using DensityTap = std::function<void(const Field<T>& rho_k, double total_sources, double a)>;
  void setDensityTap(std::string phase, DensityTap tap) {
    _tap_phase = std::move(phase);
    _tap = std::move(tap);
  }

  // The force corrections (none by default); force() applies both.
  void setPotentialCorrection(std::shared_ptr<const PotentialCorrection<T>> c) {
    _potential_correction = std::move(c);
  }
  void setParticleCorrection(std::shared_ptr<const ParticleCorrection> c) {
    _particle_correction = std::move(c);
  }
  const std::shared_ptr<const PotentialCorrection<T>>& potentialCorrection() const {
    return _potential_correction;
  }
  const std::shared_ptr<const ParticleCorrection>& particleCorrection() const {
    return _particle_correction;
  }
  double omegaM() const { return _omega_m; }
  const GravityOptions& options() const { return _opt; }
  const SlabDecomposition& decomp() const { return *_mesh; }
  const FFT<T>& fft() const { return _ws->fft(); }
  Workspace<T>& workspace() { return *_ws; }
  const std::shared_ptr<Workspace<T>>& workspacePtr() const { return _ws; }
  const Painter<T>& painter() const { return _painter; }
  PhaseTimes& times() { return _times; }

private:
  // acc += scale C(probes) when a particle correction is set (double positions and
  // accelerations only).
  template <class R, class Acc>
  void addParticleCorrection(const Kokkos::View<R* [3]>& probes, std::size_t n, const Acc& acc,
                             double a, double scale);

  std::shared_ptr<const SlabDecomposition> _mesh;
  double _omega_m;
  GravityOptions _opt;
  std::shared_ptr<Workspace<T>> _ws;
  Painter<T> _painter;
  std::shared_ptr<const PotentialCorrection<T>> _potential_correction;
  std::shared_ptr<const ParticleCorrection> _particle_correction;
  PhaseTimes _times;
  DensityTap _tap;
  std::string _tap_phase;
  // Per-axis kernel tables over the integer wavenumber index i in [0, N): k_eff^2 term, gradient
  // D(k) [h/Mpc] and window sinc^p; built once.
  Kokkos::View<double*> _lap, _grad, _win;
};

extern template class Gravity<float>;
extern template class Gravity<double>;

} // namespace caustic
