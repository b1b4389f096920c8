#include "pm/grad/diff_pm.hpp"

#include "pm/core/profiling.hpp"
#include "pm/grad/lpt_model.hpp"
#include "pm/grad/trajectory.hpp"
#include "pm/particles/migrate.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

DiffPM::DiffPM(DiffConfig cfg) : _cfg(std::move(cfg)) {
  if (!_cfg.lattice || !_cfg.mesh)
    throw std::invalid_argument("DiffConfig: the lattice and the mesh decompositions are required");
}

DiffPM::~DiffPM() = default;
DiffPM::DiffPM(DiffPM&&) noexcept = default;
DiffPM& DiffPM::operator=(DiffPM&&) noexcept = default;

void DiffPM::prepare(const DiffParams& params) {
  if (_lpt && _traj && params == _params)
    return;
  requireDiffConfig(_cfg, params);
  // The old point's setup goes first (one setup in memory at a time), and with it the forward
  // run it made: gradient() needs this point's forward.
  _traj.reset();
  _lpt.reset();
  _noise.reset();
  _lpt = std::make_unique<LptModel>(_cfg, params);
  _traj = std::make_unique<Trajectory>(_cfg, params, totalParticles());
  _params = params;
}

double DiffPM::totalParticles() const {
  const double n = _cfg.lattice->n();
  return n * n * n;
}

const Particles& DiffPM::forward(const Field<double>& noise, const DiffParams& params) {
  ScopedRegion region("caustic::DiffPM::forward");
  prepare(params);
  if (!_noise)
    _noise = std::make_unique<Field<double>>(_cfg.lattice, "caustic::DiffPM::noise");
  Kokkos::deep_copy(_noise->real(), noise.real());
  _initial = _lpt->forward(noise);
  Particles parts = copyParticles(_initial);
  _traj->forward(parts);
  Migrator(_cfg.lattice).toLattice(parts);
  _state = std::move(parts);
  return _state;
}

DiffGradient DiffPM::gradient(const Particles& cot) {
  ScopedRegion region("caustic::DiffPM::gradient");
  if (!_noise || !_traj || !_lpt)
    throw std::logic_error("DiffPM::gradient: no forward run");
  if (cot.size() != _state.size())
    throw std::invalid_argument("DiffPM::gradient: " + std::to_string(cot.size()) +
                                " cotangents for " + std::to_string(_state.size()) + " particles");
  ParameterGradient g = ParameterGradient::zeros(_params);
  Particles parts = copyParticles(_state);
  Particles adj = copyParticles(cot);
  adj.reserve(parts.capacity());
  _traj->reverse(parts, adj, g);
  Migrator(_cfg.lattice).toLattice(parts, &adj);

  measureReconstruction(parts);

  DiffGradient out;
  out.noise = std::make_unique<Field<double>>(_cfg.lattice, "caustic::DiffPM::noiseGradient");
  _lpt->adjoint(*_noise, adj, *out.noise, g);
  g.allreduce(_cfg.lattice->comm());
  out.params = g;
  return out;
}

void DiffPM::measureReconstruction(const Particles& parts) {
  // Against the true initial state (both in lattice order).
  const auto& d = *_cfg.lattice;
  const int n = d.n();
  const double L = d.box(), cell = d.cell(), off = _cfg.lattice_offset;
  const int x0 = d.xStart();
  auto xr = parts.x, pr = parts.p, xt = _initial.x, pt = _initial.p;
  double mx = 0.0, mp = 0.0, sx = 0.0, sp = 0.0;
  const std::size_t np = parts.size();
  Kokkos::parallel_reduce(
      "caustic::DiffPM::reconstruction", Kokkos::RangePolicy<>(0, np),
      KOKKOS_LAMBDA(std::size_t i, double& ax, double& ap, double& bx, double& bp) {
        const std::size_t lx = i / (std::size_t(n) * n), y = (i / n) % n, z = i % n;
        const double q[3] = {(x0 + double(lx)) * cell + off, double(y) * cell + off,
                             double(z) * cell + off};
        for (int c = 0; c < 3; ++c) {
          double dx = xr(i, c) - xt(i, c);
          dx -= L * km::floor(dx / L + 0.5);
          double s = xt(i, c) - q[c];
          s -= L * km::floor(s / L + 0.5);
          ax = km::fmax(ax, km::fabs(dx));
          ap = km::fmax(ap, km::fabs(pr(i, c) - pt(i, c)));
          bx += s * s;
          bp += pt(i, c) * pt(i, c);
        }
      },
      Kokkos::Max<double>(mx), Kokkos::Max<double>(mp), sx, sp);
  double mm[2] = {mx, mp}, ss[2] = {sx, sp};
  const MPI_Comm comm = d.comm().get();
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, mm, 2, MPI_DOUBLE, MPI_MAX, comm), "DiffPM::gradient");
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, ss, 2, MPI_DOUBLE, MPI_SUM, comm), "DiffPM::gradient");
  _rec.max_dx = mm[0];
  _rec.max_dp = mm[1];
  _rec.rms_displacement = std::sqrt(ss[0] / totalParticles());
  _rec.rms_momentum = std::sqrt(ss[1] / totalParticles());
}

} // namespace caustic
