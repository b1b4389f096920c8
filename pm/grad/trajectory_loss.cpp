#include "pm/grad/trajectory_loss.hpp"

#include "pm/core/profiling.hpp"
#include "pm/grad/losses.hpp"
#include "pm/grad/trajectory.hpp"
#include "pm/grad/vector_ops.hpp"
#include "pm/particles/migrate.hpp"

#include <Kokkos_ScatterView.hpp>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

namespace caustic {

namespace {
// Shell of a mode: |m| rounded, minus one (-1 for the DC mode).
KOKKOS_INLINE_FUNCTION int shellOf(int m2) {
  return static_cast<int>(km::floor(km::sqrt(double(m2)) + 0.5)) - 1;
}
} // namespace

ShellPower::ShellPower(std::shared_ptr<const SlabDecomposition> mesh, Window window,
                       double total_particles, int bins)
    : _mesh(std::move(mesh)), _painter(_mesh, window),
      _fft(std::make_unique<FFT<double>>(_mesh, FFTW_ESTIMATE)), _total(total_particles),
      _bins(bins) {
  if (bins < 1 || bins > _mesh->n())
    throw std::invalid_argument("ShellPower: " + std::to_string(bins) + " shells (allowed: 1.." +
                                std::to_string(_mesh->n()) + ")");
  Kokkos::View<double*> c("caustic::ShellPower::count", bins);
  auto sc = Kokkos::Experimental::create_scatter_view(c);
  _mesh->forEachMode(
      "caustic::ShellPower::count", KOKKOS_LAMBDA(const MeshMode& m) {
        const int j = shellOf(m.m2());
        if (j >= 0 && j < bins)
          sc.access()(j) += m.weight;
      });
  Kokkos::Experimental::contribute(c, sc);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), c);
  _count.assign(h.data(), h.data() + bins);
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, _count.data(), bins, MPI_DOUBLE, MPI_SUM,
                         _mesh->comm().get()),
           "ShellPower");
}

std::vector<double> ShellPower::k() const {
  std::vector<double> k(static_cast<std::size_t>(_bins));
  for (int j = 0; j < _bins; ++j)
    k[static_cast<std::size_t>(j)] = (j + 1) * _mesh->kFundamental();
  return k;
}

void ShellPower::transform(const Particles& parts, Field<double>& f) const {
  paintDensityContrast(f, _painter, parts, _total);
  _fft->forward(f);
}

std::vector<double> ShellPower::operator()(const Particles& parts) const {
  Field<double> f(_mesh, "caustic::ShellPower::delta");
  transform(parts, f);
  Kokkos::View<double*> s("caustic::ShellPower::sum", _bins);
  auto ss = Kokkos::Experimental::create_scatter_view(s);
  auto c = f.complex();
  const int bins = _bins;
  _mesh->forEachMode(
      "caustic::ShellPower::sum", KOKKOS_LAMBDA(const MeshMode& m) {
        const int j = shellOf(m.m2());
        if (j >= 0 && j < bins)
          ss.access()(j) += m.weight * Kokkos::abs(c(m.index)) * Kokkos::abs(c(m.index));
      });
  Kokkos::Experimental::contribute(s, ss);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), s);
  std::vector<double> P(h.data(), h.data() + _bins);
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, P.data(), _bins, MPI_DOUBLE, MPI_SUM, _mesh->comm().get()),
           "ShellPower");
  const double n3 = std::pow(double(_mesh->n()), 3), V = std::pow(_mesh->box(), 3);
  for (int j = 0; j < _bins; ++j)
    P[static_cast<std::size_t>(j)] *= V / (n3 * n3) / _count[static_cast<std::size_t>(j)];
  return P;
}

void ShellPower::vjp(const Particles& parts, const std::vector<double>& gP,
                     const Kokkos::View<double* [3]>& xbar) const {
  if (gP.size() != static_cast<std::size_t>(_bins))
    throw std::invalid_argument("ShellPower::vjp: " + std::to_string(gP.size()) +
                                " cotangents for " + std::to_string(_bins) + " shells");
  Field<double> f(_mesh, "caustic::ShellPower::cotangent");
  transform(parts, f);
  // dP_b/d delta(x) = 2 V/N^6 / C_b sum_{k in b} delta_k e^{ikx}: scale each shell's modes and
  // transform back unnormalised (the c2r sums over the full k space).
  const double n3 = std::pow(double(_mesh->n()), 3), V = std::pow(_mesh->box(), 3);
  std::vector<double> scale(gP.size());
  for (std::size_t j = 0; j < gP.size(); ++j)
    scale[j] = 2.0 * V / (n3 * n3) / _count[j] * gP[j];
  Kokkos::View<double*> sc("caustic::ShellPower::scale", scale.size());
  {
    auto h = Kokkos::create_mirror_view(sc);
    for (std::size_t j = 0; j < scale.size(); ++j)
      h(j) = scale[j];
    Kokkos::deep_copy(sc, h);
  }
  auto c = f.complex();
  const int bins = _bins;
  _mesh->forEachMode(
      "caustic::ShellPower::vjp", KOKKOS_LAMBDA(const MeshMode& m) {
        const int j = shellOf(m.m2());
        c(m.index) *= (j >= 0 && j < bins) ? sc(j) : 0.0;
      });
  _fft->backward(f, false);
  const int n = _mesh->n();
  _painter.readoutWindowGradient(f, parts.x, parts.size(), xbar, double(n) * n * n / _total);
}

TrajectoryLoss::TrajectoryLoss(DiffConfig cfg, TrajectoryLossOptions opt)
    : _cfg(std::move(cfg)), _opt(opt) {
  if (!_cfg.lattice || !_cfg.mesh)
    throw std::invalid_argument("TrajectoryLoss: the lattice and the mesh are required");
  if (!(_opt.power_weight >= 0))
    throw std::invalid_argument("TrajectoryLoss: power_weight = " +
                                std::to_string(_opt.power_weight) + " (allowed: >= 0)");
  const double kf = _cfg.mesh->kFundamental(), kny = 0.5 * _cfg.mesh->n() * kf;
  const double kmax = _opt.k_max > 0 ? std::min(_opt.k_max, kny) : kny;
  const int bins = static_cast<int>(std::floor(kmax / kf - 0.5));
  if (bins < 1)
    throw std::invalid_argument("TrajectoryLoss: k_max = " + std::to_string(_opt.k_max) +
                                " h/Mpc holds no shell (the fundamental is " + std::to_string(kf) +
                                " h/Mpc)");
  _power = std::make_unique<ShellPower>(_cfg.mesh, _cfg.window, total(), bins);
}

double TrajectoryLoss::powerTerm(const Particles& parts, const std::vector<double>& ref, double S,
                                 std::vector<double>* gP) const {
  const auto P = (*_power)(parts);
  const double B = _power->bins(), lambda = _opt.power_weight;
  double s = 0.0;
  for (std::size_t j = 0; j < P.size(); ++j) {
    const double r = P[j] / ref[j] - 1.0;
    s += r * r / B;
    if (gP)
      (*gP)[j] = lambda / S * 2.0 * r / (B * ref[j]);
  }
  return s;
}

double TrajectoryLoss::total() const { return std::pow(double(_cfg.lattice->n()), 3); }

void TrajectoryLoss::prepare(TrajectorySample& sample) const {
  if (sample.targets.empty())
    throw std::invalid_argument("TrajectoryLoss: a sample without targets");
  for (auto& t : sample.targets) {
    if (t.boundary < 1 || t.boundary > _cfg.steps)
      throw std::invalid_argument("TrajectoryLoss: target at step boundary " +
                                  std::to_string(t.boundary) + " (allowed: 1.." +
                                  std::to_string(_cfg.steps) + ")");
    t.a = timeSteps(_cfg.a_start, _cfg.a_end, _cfg.steps, _cfg.spacing)
              .at(static_cast<std::size_t>(t.boundary));
    Particles p = copyParticles(t.particles);
    Migrator(_cfg.mesh)(p);
    t.power = (*_power)(p);
  }
}

std::vector<Particles> TrajectoryLoss::states(const TrajectorySample& sample,
                                              const DiffParams& params) const {
  Trajectory traj(_cfg, params, total());
  Particles parts = copyParticles(sample.initial);
  Migrator(_cfg.mesh)(parts);
  std::map<int, std::size_t> at; // drift index -> target
  for (std::size_t t = 0; t < sample.targets.size(); ++t)
    at[traj.driftOf(sample.targets[t].boundary)] = t;
  std::vector<Particles> out(sample.targets.size());
  const int nops = static_cast<int>(traj.schedule().operations().size());
  for (int i = 0; i < nops; ++i) {
    traj.apply(parts, i);
    const auto it = at.find(i);
    if (it != at.end()) {
      Particles c = copyParticles(parts);
      Migrator(_cfg.lattice).toLattice(c);
      out[it->second] = std::move(c);
    }
  }
  return out;
}

TrajectoryLoss::Value TrajectoryLoss::operator()(const TrajectorySample& sample,
                                                 const DiffParams& params,
                                                 ParameterGradient* grad) const {
  ScopedRegion region("caustic::TrajectoryLoss");
  const Comm& comm = _cfg.lattice->comm();
  const double box = _cfg.mesh->box(), N = total();
  const double S = static_cast<double>(sample.targets.size());
  const double lambda = _opt.power_weight;
  Trajectory traj(_cfg, params, N);
  Migrator toMesh(_cfg.mesh), toLattice(_cfg.lattice);
  Particles parts = copyParticles(sample.initial);
  toMesh(parts);
  std::map<int, std::size_t> at;
  for (std::size_t t = 0; t < sample.targets.size(); ++t)
    at[traj.driftOf(sample.targets[t].boundary)] = t;
  const int nops = static_cast<int>(traj.schedule().operations().size());
  Value v;
  for (int i = 0; i < nops; ++i) {
    traj.apply(parts, i);
    const auto it = at.find(i);
    if (it == at.end())
      continue;
    const auto& target = sample.targets[it->second];
    if (lambda > 0)
      v.power += powerTerm(parts, target.power, S, nullptr) / S;
    Particles c = copyParticles(parts), cot;
    toLattice.toLattice(c);
    v.position += particleLoss(c, target.particles, box, 0.0, cot, comm) / (N * S);
  }
  v.total = v.position + lambda * v.power;
  if (!grad)
    return v;

  ParameterGradient g = ParameterGradient::zeros(params);
  Particles adj(parts.size(), parts.capacity());
  Kokkos::deep_copy(adj.id, parts.id);
  for (int i = nops - 1; i >= 0; --i) {
    const auto it = at.find(i);
    if (it != at.end()) {
      // The state after this drift is the snapshot's: add its cotangent.
      const auto& target = sample.targets[it->second];
      if (lambda > 0) {
        std::vector<double> gP(static_cast<std::size_t>(_power->bins()));
        powerTerm(parts, target.power, S, &gP);
        _power->vjp(parts, gP, adj.x);
      }
      toLattice.toLattice(parts, &adj);
      Particles cot;
      particleLoss(parts, target.particles, box, 0.0, cot, comm);
      axpyVectors(adj.x, 1.0 / (N * S), cot.x, parts.size(), "caustic::TrajectoryLoss::inject");
      toMesh(parts, &adj);
    }
    traj.applyReverse(parts, adj, i, g);
  }
  g.allreduce(comm);
  for (std::size_t p = 0; p < g.cosmology.size(); ++p)
    grad->cosmology[p] += g.cosmology[p];
  if (grad->correction.size() != g.correction.size())
    grad->correction.assign(g.correction.size(), 0.0);
  for (std::size_t p = 0; p < g.correction.size(); ++p)
    grad->correction[p] += g.correction[p];
  if (grad->particle_correction.size() != g.particle_correction.size())
    grad->particle_correction.assign(g.particle_correction.size(), 0.0);
  for (std::size_t p = 0; p < g.particle_correction.size(); ++p)
    grad->particle_correction[p] += g.particle_correction[p];
  return v;
}

TrajectoryLoss::Value TrajectoryLoss::pgdLoss(const TrajectorySample& sample,
                                              const std::vector<Particles>& states,
                                              const std::vector<PgdTheta>& theta, double Omega_m,
                                              std::vector<std::array<double, 3>>* grad) const {
  ScopedRegion region("caustic::TrajectoryLoss::pgd");
  const std::size_t S = sample.targets.size();
  if (states.size() != S || theta.size() != S)
    throw std::invalid_argument("TrajectoryLoss::pgdLoss: " + std::to_string(states.size()) +
                                " states and " + std::to_string(theta.size()) +
                                " parameter sets for " + std::to_string(S) + " targets");
  if (!_pgd || _pgd_omega_m != Omega_m) {
    GravityOptions go;
    go.window = _cfg.window;
    _pgd = std::make_unique<PgdDisplacement<double>>(std::make_shared<Workspace<double>>(_cfg.mesh),
                                                      Omega_m, go);
    _pgd_omega_m = Omega_m;
  }
  const Comm& comm = _cfg.lattice->comm();
  const double box = _cfg.mesh->box(), N = total();
  const double lambda = _opt.power_weight;
  Migrator toMesh(_cfg.mesh), toLattice(_cfg.lattice);
  if (grad)
    grad->assign(S, {0.0, 0.0, 0.0});
  Value v;
  for (std::size_t t = 0; t < S; ++t) {
    const auto& target = sample.targets[t];
    Particles x = copyParticles(states[t]);
    toMesh(x);
    // moved = x + S(x); `carry` travels with it: the undisplaced x in its x, the cotangent of the
    // displaced positions in its p.
    Particles moved = copyParticles(x);
    _pgd->displace(moved, N, target.a, theta[t]);
    Particles carry = copyParticles(x);
    Kokkos::deep_copy(carry.p, 0.0);
    toMesh(moved, &carry);
    if (lambda > 0) {
      std::vector<double> gP(static_cast<std::size_t>(_power->bins()));
      v.power += powerTerm(moved, target.power, double(S), grad ? &gP : nullptr) / double(S);
      if (grad)
        _power->vjp(moved, gP, carry.p);
    }
    toLattice.toLattice(moved, &carry);
    Particles cot;
    v.position += particleLoss(moved, target.particles, box, 0.0, cot, comm) / (N * double(S));
    if (!grad)
      continue;
    axpyVectors(carry.p, 1.0 / (N * double(S)), cot.x, moved.size(), "caustic::pgdLoss::inject");
    // Back to the undisplaced positions on their slabs, the cotangent alongside.
    toMesh(carry);
    std::array<double, 3> g{0.0, 0.0, 0.0};
    _pgd->vjpParameters(carry.x, carry.size(), N, target.a, theta[t], carry.p, g);
    mpiCheck(MPI_Allreduce(MPI_IN_PLACE, g.data(), 3, MPI_DOUBLE, MPI_SUM, comm.get()),
             "TrajectoryLoss::pgdLoss");
    (*grad)[t] = g;
  }
  v.total = v.position + lambda * v.power;
  return v;
}

} // namespace caustic
