#include "pm/grad/losses.hpp"

#include "pm/core/profiling.hpp"
#include "pm/grad/diff_pm.hpp"
#include "pm/particles/migrate.hpp"

#include <stdexcept>
#include <string>

namespace caustic {

double particleLoss(const Particles& state, const Particles& target, double box, double weight_p,
                    Particles& cot, const Comm& comm) {
  const std::size_t np = state.size();
  if (target.size() != np)
    throw std::invalid_argument("particleLoss: " + std::to_string(target.size()) + " targets for " +
                                std::to_string(np) + " particles");
  cot = Particles(np, state.capacity());
  auto x = state.x, p = state.p, tx = target.x, tp = target.p, cx = cot.x, cp = cot.p;
  auto id = state.id, tid = target.id;
  double value = 0.0;
  long mismatched = 0;
  Kokkos::parallel_reduce(
      "caustic::particleLoss", Kokkos::RangePolicy<>(0, np),
      KOKKOS_LAMBDA(std::size_t i, double& acc, long& bad) {
        if (id(i) != tid(i))
          ++bad;
        for (int c = 0; c < 3; ++c) {
          double dx = x(i, c) - tx(i, c);
          dx -= box * km::floor(dx / box + 0.5);
          const double dp = p(i, c) - tp(i, c);
          acc += dx * dx + weight_p * dp * dp;
          cx(i, c) = 2.0 * dx;
          cp(i, c) = 2.0 * weight_p * dp;
        }
      },
      value, mismatched);
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_SUM, comm.get()), "particleLoss");
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &mismatched, 1, MPI_LONG, MPI_SUM, comm.get()),
           "particleLoss");
  if (mismatched)
    throw std::invalid_argument("particleLoss: state and target are not in the same (lattice) "
                                "order: " +
                                std::to_string(mismatched) + " particle IDs differ");
  Kokkos::deep_copy(cot.id, state.id);
  return value;
}

FieldChi2Loss::FieldChi2Loss(std::shared_ptr<const SlabDecomposition> mesh,
                             std::shared_ptr<const SlabDecomposition> lattice, Window window,
                             const Field<double>& observed, const Field<double>& sigma,
                             const Field<double>* mask)
    : _mesh(std::move(mesh)), _lattice(std::move(lattice)), _painter(_mesh, window), _obs(observed),
      _sigma(sigma), _mask(mask) {}

void FieldChi2Loss::density(const Particles& state, Field<double>& delta) const {
  Particles parts = copyParticles(state);
  Migrator toMesh(_mesh);
  toMesh(parts);
  const double n = _lattice->n();
  paintDensityContrast(delta, _painter, parts, n * n * n);
}

double FieldChi2Loss::operator()(const Particles& state, Particles& cot) const {
  ScopedRegion region("caustic::FieldChi2Loss");
  Particles parts = copyParticles(state);
  cot = Particles(parts.size(), parts.capacity());
  Migrator toMesh(_mesh);
  toMesh(parts, &cot);
  const double nl = _lattice->n();
  const double total = nl * nl * nl;
  Field<double> delta(_mesh, "caustic::FieldChi2Loss::delta");
  paintDensityContrast(delta, _painter, parts, total);
  auto r = delta.real(), obs = _obs.real(), sig = _sigma.real();
  const bool masked = _mask != nullptr;
  auto mask = masked ? _mask->real() : r;
  const int n = _mesh->n();
  double chi2 = 0.0;
  _mesh->reducePoints(
      "caustic::FieldChi2Loss::chi2",
      KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
        const std::size_t f = q.index;
        const double m = masked ? mask(f) : 1.0;
        const double res = r(f) - obs(f);
        const double iv = 1.0 / (sig(f) * sig(f));
        acc += m * res * res * iv;
        r(f) = 2.0 * m * res * iv; // dchi2/ddelta
      },
      chi2);
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &chi2, 1, MPI_DOUBLE, MPI_SUM, _mesh->comm().get()),
           "FieldChi2Loss");
  // delta = m sum W(x - g) - 1 with m = n^3 / N.
  const double mass = double(n) * n * n / total;
  _painter.readoutWindowGradient(delta, parts.x, parts.size(), cot.x, mass);
  Migrator(_lattice).toLattice(parts, &cot);
  return chi2;
}

} // namespace caustic
