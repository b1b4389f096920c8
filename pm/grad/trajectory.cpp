#include "pm/grad/trajectory.hpp"

#include "pm/core/comm.hpp"
#include "pm/core/profiling.hpp"
#include "pm/grad/vector_ops.hpp"

#include <stdexcept>
#include <string>

namespace caustic {

namespace {
Schedule scheduleOf(const DiffConfig& cfg, const Cosmology& c) {
  return Schedule(FastPMFactors(c), timeSteps(cfg.a_start, cfg.a_end, cfg.steps, cfg.spacing),
                  cfg.spacing);
}
} // namespace

Trajectory::Trajectory(const DiffConfig& cfg, const DiffParams& params, double total_particles)
    : _cfg(cfg), _params(params), _cosmo(params.cosmology), _total(total_particles),
      _migrator(cfg.mesh) {
  requireDiffConfig(cfg, params);
  _schedule = scheduleOf(cfg, _cosmo);
  GravityOptions opt;
  opt.window = cfg.window;
  opt.kernel = GravityKernel::FiniteDifference;
  _nbody = std::make_unique<NBody<double>>(cfg.mesh, _cosmo, opt, total_particles);
  if (cfg.potential_correction) {
    _potential_correction = cfg.potential_correction(params.correction);
    if (_potential_correction->parameters().size() != params.correction.size())
      throw std::invalid_argument("DiffParams: " + std::to_string(params.correction.size()) +
                                  " correction parameters for " + _potential_correction->name() +
                                  ", which has " +
                                  std::to_string(_potential_correction->parameters().size()));
    _nbody->gravity().setPotentialCorrection(_potential_correction);
  }
  if (cfg.particle_correction) {
    _particle_correction = cfg.particle_correction(params.particle_correction);
    _nbody->gravity().setParticleCorrection(_particle_correction);
  }
}

const std::array<double, kCosmoParams>& Trajectory::factorDerivatives(int i) {
  const auto& ops = _schedule.operations();
  if (_dfactor.empty()) {
    // Centred differences of every operation's factor in the parameters of the background.
    _dfactor.assign(ops.size(), {});
    for (CosmoParam p : kAllCosmoParams) {
      if (!entersBackground(p) || !_cfg.cosmology_gradient[static_cast<std::size_t>(p)])
        continue;
      const double h = differenceStep(_params.cosmology, p);
      const Schedule up = scheduleOf(_cfg, Cosmology(shifted(_params.cosmology, p, h)));
      const Schedule down = scheduleOf(_cfg, Cosmology(shifted(_params.cosmology, p, -h)));
      for (std::size_t j = 0; j < ops.size(); ++j)
        _dfactor[j][static_cast<std::size_t>(p)] =
            (up.operations()[j].factor - down.operations()[j].factor) / (2 * h);
    }
  }
  return _dfactor.at(static_cast<std::size_t>(i));
}

int Trajectory::kickAt(int s) const {
  const auto& ops = _schedule.operations();
  const double a = _schedule.boundaries().at(static_cast<std::size_t>(s));
  for (std::size_t i = 0; i < ops.size(); ++i)
    if (ops[i].kind == Operation::Kind::Kick && ops[i].a == a)
      return static_cast<int>(i);
  throw std::out_of_range("Trajectory::kickAt: no kick at boundary " + std::to_string(s));
}

int Trajectory::driftOf(int s) const {
  const auto& ops = _schedule.operations();
  for (std::size_t i = 0; i < ops.size(); ++i)
    if (ops[i].kind == Operation::Kind::Drift && ops[i].step == s)
      return static_cast<int>(i);
  throw std::out_of_range("Trajectory::driftOf: no step " + std::to_string(s));
}

void Trajectory::forward(Particles& parts) {
  ScopedRegion region("caustic::Trajectory::forward");
  _nbody->start(parts, _schedule.boundaries().front());
  for (const ScheduledStep& st : _schedule.steps())
    _nbody->step(parts, st);
}

void Trajectory::apply(Particles& parts, int i) {
  const Operation& op = _schedule.operations().at(static_cast<std::size_t>(i));
  if (op.kind == Operation::Kind::Kick) {
    _migrator(parts);
    _nbody->gravity().force(parts.x, parts.size(), _total, parts.x, parts.size(), parts.p, op.a,
                            op.factor, true);
  } else {
    caustic::drift(parts, op.factor, _cfg.mesh->box());
    _migrator(parts);
  }
}

void Trajectory::applyReverse(Particles& parts, Particles& adj, int i, ParameterGradient& g) {
  if (_schedule.operations().at(static_cast<std::size_t>(i)).kind == Operation::Kind::Kick)
    kickReverse(parts, adj, i, g);
  else
    driftReverse(parts, adj, i, g);
}

void Trajectory::force(const Particles& parts, const Kokkos::View<double* [3]>& f, double a) {
  _nbody->gravity().force(parts.x, parts.size(), _total, parts.x, parts.size(), f, a, 1.0, false);
}

void Trajectory::forceVJP(const Particles& parts, const Kokkos::View<double* [3]>& z, double scale,
                          const Kokkos::View<double* [3]>& xbar, const Kokkos::View<double* [3]>& f,
                          ParameterGradient& g, double a) {
  ScopedRegion region("caustic::Trajectory::forceVJP");
  const std::size_t np = parts.size();
  // z = 0 on every rank (the last kick of a loss of the positions only, the first reverse
  // kick): nothing to pull back, only the force for the unkick. Bit for bit what the full pass
  // gives (it adds zeros), at one force instead of three.
  {
    int nonzero = 0;
    Kokkos::parallel_reduce(
        "caustic::Trajectory::cotangent_nonzero", Kokkos::RangePolicy<>(0, np),
        KOKKOS_LAMBDA(const std::size_t i, int& any) {
          any |= z(i, 0) != 0.0 || z(i, 1) != 0.0 || z(i, 2) != 0.0;
        },
        Kokkos::BOr<int>(nonzero));
    mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &nonzero, 1, MPI_INT, MPI_LOR, _cfg.mesh->comm().get()),
             "Trajectory::forceVJP");
    if (!nonzero) {
      force(parts, f, a);
      return;
    }
  }
  auto& grav = _nbody->gravity();
  const auto& painter = grav.painter();
  const auto& fft = grav.fft();
  const auto lease_a = grav.workspace().lease("density");
  const auto lease_b = grav.workspace().lease("cotangent");
  Field<double>& A = *lease_a; // density -> potential
  Field<double>& B = *lease_b; // potential cotangent -> density cotangent
  const int n = _cfg.mesh->n();
  const double mass = double(n) * n * n / _total;
  // phibar = R^T (scale z): R the gradient readout at fixed x.
  painter.readoutGradientAdjoint(B, parts.x, np, z, scale);
  painter.paint(A, parts.x, np, mass);
  fft.forward(A);
  fft.forward(B);
  // phi = F^H K G F rho (G the Green's function, K the correction): the correction's
  // parameters see phi before K; rhobar = G K^H phibar.
  grav.applyPotential(A, a, false);
  if (_potential_correction) {
    _potential_correction->vjpParameters(B, A, a, g.correction);
    _potential_correction->apply(A, a);
  }
  grav.applyPotential(B, a, false);
  if (_potential_correction)
    _potential_correction->vjpPotential(B, a);
  fft.backward(A, false);
  fft.backward(B, false);
  painter.readoutGradientWithJacobianT(A, parts.x, np, f, z, xbar, scale, &B, mass);
  // The PM force is proportional to Omega_m (the Poisson prefactor); the particle correction
  // is added after.
  if (_cfg.cosmology_gradient[static_cast<std::size_t>(CosmoParam::Omega_m)])
    g[CosmoParam::Omega_m] += scale * localDot(z, f, np) / _params.cosmology.Omega_m;
  if (_particle_correction) {
    _particle_correction->apply(parts.x, np, f, a, 1.0);
    _particle_correction->vjp(parts.x, np, z, scale, xbar, a, g.particle_correction);
  }
}

void Trajectory::kickReverse(Particles& parts, Particles& adj, int i, ParameterGradient& g) {
  ScopedRegion region("caustic::Trajectory::kickReverse");
  const Operation& op = _schedule.operations()[static_cast<std::size_t>(i)];
  if (_f.extent(0) < parts.size())
    _f = Kokkos::View<double* [3]>("caustic::Trajectory::force", parts.capacity());
  const std::size_t np = parts.size();
  // p_after = p + k F(x): xbar += k (dF/dx)^T pbar; pbar unchanged.
  forceVJP(parts, adj.p, op.factor, adj.x, _f, g, op.a);
  const double fp = localDot(adj.p, _f, np);
  const auto& dfactor = factorDerivatives(i);
  for (std::size_t p = 0; p < g.cosmology.size(); ++p)
    g.cosmology[p] += dfactor[p] * fp;
  axpyVectors(parts.p, -op.factor, _f, np, "caustic::Trajectory::unkick");
}

void Trajectory::driftReverse(Particles& parts, Particles& adj, int i, ParameterGradient& g) {
  ScopedRegion region("caustic::Trajectory::driftReverse");
  const Operation& op = _schedule.operations()[static_cast<std::size_t>(i)];
  const std::size_t np = parts.size();
  // x_after = x + d p: pbar += d xbar; xbar unchanged.
  const double xp = localDot(adj.x, parts.p, np);
  const auto& dfactor = factorDerivatives(i);
  for (std::size_t p = 0; p < g.cosmology.size(); ++p)
    g.cosmology[p] += dfactor[p] * xp;
  axpyVectors(adj.p, op.factor, adj.x, np, "caustic::Trajectory::driftAdjoint");
  caustic::drift(parts, -op.factor, _cfg.mesh->box());
  _migrator(parts, &adj);
}

void Trajectory::reverse(Particles& parts, Particles& adj, ParameterGradient& g) {
  ScopedRegion region("caustic::Trajectory::reverse");
  if (adj.size() != parts.size())
    throw std::logic_error("Trajectory::reverse: cotangents and particles differ in number");
  adj.reserve(parts.capacity());
  _migrator(parts, &adj);
  for (int i = static_cast<int>(_schedule.operations().size()) - 1; i >= 0; --i)
    applyReverse(parts, adj, i, g);
}

} // namespace caustic
