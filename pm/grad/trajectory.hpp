#pragma once
// The N-body part of the differentiable model: the schedule's operations forward (NBody) and
// their reverse, which undoes each operation and pulls the cotangents back through it (pmwd's
// adjoint method, Li et al. 2022, arXiv:2211.09958): the trajectory is not stored; memory is one
// state plus its cotangents whatever the step count.
//   kick  p += k F(x):  xbar += k (dF/dx)^T pbar; parameters: k dF/dtheta . pbar, dk/dtheta F.pbar
//   drift x += d p:     pbar += d xbar;           parameters: dd/dtheta p.xbar
// dF/dx has a direct part (window derivatives at fixed potential) and one through the painted
// density (rhobar = Phi^T R^T pbar, read out with the window derivative); the Green's function
// is real and even in k (self-adjoint), a potential correction supplies its own VJPs, and a
// particle correction adds its VJP at the particles. Migration is a permutation: the cotangents
// travel with their particles.
#include "pm/grad/diff_config.hpp"
#include "pm/grad/parameters.hpp"
#include "pm/particles/migrate.hpp"
#include "pm/particles/particles.hpp"
#include "pm/stepping/schedule.hpp"

#include <array>
#include <memory>
#include <vector>

namespace caustic {

class Trajectory {
public:
  Trajectory(const DiffConfig& cfg, const DiffParams& params, double total_particles);

  // Forward from particles synchronised at a_start to a_end (synchronised): NBody walks the
  // schedule. Collective.
  void forward(Particles& parts);
  // Reverse: parts at a_end -> reconstructed at a_start; adj (x: xbar, p: pbar, same order and
  // size as parts) pulled back to a_start; parameter cotangents added to g. Collective.
  void reverse(Particles& parts, Particles& adj, ParameterGradient& g);

  const Schedule& schedule() const { return _schedule; }
  // Operation i of schedule().operations(), forwards; and undone with the cotangents pulled
  // back through it (parts and adj are migrated to their slabs after a drift). Collective.
  void apply(Particles& parts, int i);
  void applyReverse(Particles& parts, Particles& adj, int i, ParameterGradient& g);
  // The index of the kick at boundary s (0..steps) and of the drift of step s (1..steps).
  int kickAt(int s) const;
  int driftOf(int s) const;

  // F(x) at the particles (f <- F, corrections included), at scale factor a. Collective.
  void force(const Particles& parts, const Kokkos::View<double* [3]>& f, double a);
  // xbar += scale (dF/dx)^T z and g += scale dF/dtheta . z, with f <- F(x) as a by-product.
  // Collective.
  void forceVJP(const Particles& parts, const Kokkos::View<double* [3]>& z, double scale,
                const Kokkos::View<double* [3]>& xbar, const Kokkos::View<double* [3]>& f,
                ParameterGradient& g, double a);

  NBody<double>& nbody() { return *_nbody; }

private:
  void kickReverse(Particles& parts, Particles& adj, int i, ParameterGradient& g);
  void driftReverse(Particles& parts, Particles& adj, int i, ParameterGradient& g);

  DiffConfig _cfg;
  DiffParams _params;
  Cosmology _cosmo;
  double _total;
  Schedule _schedule;
  // d(factor of operation i)/d(parameter) for the parameters that enter the background,
  // computed on the first reverse operation (a forward run does not need them).
  const std::array<double, kCosmoParams>& factorDerivatives(int i);
  std::vector<std::array<double, kCosmoParams>> _dfactor;
  std::shared_ptr<const PotentialCorrection<double>> _potential_correction;
  std::shared_ptr<const ParticleCorrection> _particle_correction;
  std::unique_ptr<NBody<double>> _nbody;
  Kokkos::View<double* [3]> _f; // the force at the particles, reused
  Migrator _migrator;
};

} // namespace caustic
