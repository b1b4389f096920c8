#include "pm/particles/migrate.hpp"

#include "pm/core/profiling.hpp"

#include <cstring>
#include <stdexcept>

namespace caustic {

namespace {
// x, p, id and the attributes of `parts`, as distributor columns (capacity() rows each).
template <class R> void addColumns(Distributor::Columns& cols, const BasicParticles<R>& parts) {
  cols.push_back(Distributor::column(parts.x));
  cols.push_back(Distributor::column(parts.p));
  cols.push_back(Distributor::column(parts.id));
  for (const auto& a : parts.attributes())
    cols.push_back(Distributor::Column{a.bytes(), a.rowBytes(), a.capacity()});
}

// The companion's entries take the IDs of their particles.
template <class R> void shareIds(const BasicParticles<R>& parts, BasicParticles<R>& companion) {
  const auto n = std::make_pair<std::size_t, std::size_t>(0, parts.size());
  Kokkos::deep_copy(Kokkos::subview(companion.id, n), Kokkos::subview(parts.id, n));
}
} // namespace

Migrator::Migrator(std::shared_ptr<const SlabDecomposition> decomp) : _decomp(std::move(decomp)) {
  const int n = _decomp->n();
  _owner = Kokkos::View<int*>("caustic::Migrator::owner", n);
  auto h = Kokkos::create_mirror_view(_owner);
  for (int i = 0; i < n; ++i)
    h(i) = _decomp->ownerOfPlane(i);
  Kokkos::deep_copy(_owner, h);
}

const Kokkos::View<int*>& Migrator::destinations(std::size_t capacity) {
  if (_dest.extent(0) < capacity)
    _dest = Kokkos::View<int*>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "caustic::Migrator::dest"), capacity);
  return _dest;
}

template <class R>
std::size_t Migrator::operator()(BasicParticles<R>& parts, BasicParticles<R>* companion) {
  ScopedRegion region("caustic::migrate");
  const int me = _decomp->comm().rank(), n = _decomp->n();
  const double inv_cell = 1.0 / _decomp->cell();
  const std::size_t np = parts.size();
  if (_decomp->comm().size() == 1) { // nowhere to go: skip the scan
    if (companion)
      shareIds(parts, *companion);
    return 0;
  }
  if (_planned_x == parts.x.data() && _planned_n == np) { // planned by drift()
    _planned_x = nullptr;
    return exchange(parts, companion, _planned_leaving);
  }
  _planned_x = nullptr;
  auto dest = destinations(parts.capacity());
  auto owner = _owner;
  auto X = parts.x;
  long leaving = 0;
  Kokkos::parallel_reduce(
      "caustic::migrate::plan", Kokkos::RangePolicy<>(0, np),
      KOKKOS_LAMBDA(const std::size_t i, long& acc) {
        dest(i) = owner(SlabDecomposition::planeOfPosition(X(i, 0), inv_cell, n));
        if (dest(i) != me)
          ++acc;
      },
      leaving);
  return exchange(parts, companion, leaving);
}

template <class R> void Migrator::drift(BasicParticles<R>& parts, double factor, double box) {
  ScopedRegion region("caustic::Migrator::drift");
  const std::size_t np = parts.size();
  auto x = parts.x;
  auto p = parts.p;
  _planned_x = nullptr;
  if (_decomp->comm().size() == 1) { // nothing to plan
    Kokkos::parallel_for(
        "caustic::drift", Kokkos::RangePolicy<>(0, np),
        KOKKOS_LAMBDA(const std::size_t i) { driftParticle(x, p, i, factor, box); });
    Kokkos::fence();
    return;
  }
  const int me = _decomp->comm().rank(), n = _decomp->n();
  const double inv_cell = 1.0 / _decomp->cell();
  auto dest = destinations(parts.capacity());
  auto owner = _owner;
  long leaving = 0;
  Kokkos::parallel_reduce(
      "caustic::driftAndPlan", Kokkos::RangePolicy<>(0, np),
      KOKKOS_LAMBDA(const std::size_t i, long& acc) {
        driftParticle(x, p, i, factor, box);
        dest(i) = owner(SlabDecomposition::planeOfPosition(x(i, 0), inv_cell, n));
        if (dest(i) != me)
          ++acc;
      },
      leaving);
  _planned_x = parts.x.data();
  _planned_n = np;
  _planned_leaving = leaving;
}

template <class R>
std::size_t Migrator::toLattice(BasicParticles<R>& parts, BasicParticles<R>* companion) {
  ScopedRegion region("caustic::migrate::toLattice");
  _planned_x = nullptr;
  const int me = _decomp->comm().rank();
  const std::uint64_t n = static_cast<std::uint64_t>(_decomp->n());
  const std::size_t np = parts.size();
  auto dest = destinations(parts.capacity());
  auto owner = _owner;
  auto ID = parts.id;
  long leaving = 0;
  Kokkos::parallel_reduce(
      "caustic::migrate::planLattice", Kokkos::RangePolicy<>(0, np),
      KOKKOS_LAMBDA(const std::size_t i, long& acc) {
        const std::uint64_t plane = ID(i) / (n * n);
        dest(i) = plane < n ? owner(static_cast<int>(plane)) : me;
        if (dest(i) != me)
          ++acc;
      },
      leaving);
  const std::size_t sent = exchange(parts, companion, leaving);
  // Lattice order: particle (i, j, k) at local index ((i - x0) N + j) N + k.
  const std::size_t expect = static_cast<std::size_t>(_decomp->localNx()) * n * n;
  long bad = parts.size() == expect ? 0 : 1;
  const std::uint64_t first = static_cast<std::uint64_t>(_decomp->xStart()) * n * n;
  Kokkos::View<std::size_t*> slot("caustic::migrate::latticeSlot", parts.size());
  Kokkos::View<int*> seen("caustic::migrate::latticeSeen", expect);
  if (!bad) {
    ID = parts.id;
    Kokkos::parallel_reduce(
        "caustic::migrate::latticeSlots", Kokkos::RangePolicy<>(0, parts.size()),
        KOKKOS_LAMBDA(const std::size_t i, long& acc) {
          const std::uint64_t s = ID(i) - first;
          if (ID(i) < first || s >= expect) {
            ++acc;
            return;
          }
          slot(i) = static_cast<std::size_t>(s);
          if (Kokkos::atomic_fetch_add(&seen(slot(i)), 1) != 0)
            ++acc;
        },
        bad);
  }
  long any = 0;
  mpiCheck(MPI_Allreduce(&bad, &any, 1, MPI_LONG, MPI_SUM, _decomp->comm().get()),
           "migrate::toLattice");
  if (any)
    throw std::runtime_error("Migrator::toLattice: the particles do not cover the " +
                             std::to_string(n) + "^3 lattice exactly once");
  auto permute = [&](BasicParticles<R>& ps) {
    BasicParticles<R> out = ps.withSameAttributes(expect, ps.capacity());
    auto x = ps.x, p = ps.p, ox = out.x, op = out.p;
    auto id = ps.id, oid = out.id;
    Kokkos::parallel_for(
        "caustic::migrate::latticeOrder", Kokkos::RangePolicy<>(0, expect),
        KOKKOS_LAMBDA(const std::size_t i) {
          const std::size_t s = slot(i);
          for (int c = 0; c < 3; ++c) {
            ox(s, c) = x(i, c);
            op(s, c) = p(i, c);
          }
          oid(s) = id(i);
        });
    for (std::size_t k = 0; k < ps.attributes().size(); ++k) {
      const auto& from = ps.attributes()[k];
      const std::size_t w = from.rowBytes();
      const std::byte* src = from.bytes();
      std::byte* dst = out.attributes()[k].bytes();
      Kokkos::parallel_for(
          "caustic::migrate::latticeOrderAttribute",
          Kokkos::RangePolicy<Kokkos::DefaultHostExecutionSpace>(0, expect),
          [=](const std::size_t i) { std::memcpy(dst + slot(i) * w, src + i * w, w); });
    }
    Kokkos::fence();
    ps = std::move(out);
  };
  permute(parts);
  if (companion)
    permute(*companion);
  return sent;
}

template <class R>
std::size_t Migrator::exchange(BasicParticles<R>& parts, BasicParticles<R>* companion,
                               long leaving) {
  const std::size_t np = parts.size();
  if (companion && companion->size() != np)
    throw std::logic_error("Migrator: the companion holds " + std::to_string(companion->size()) +
                           " entries for " + std::to_string(np) + " particles");
  _plan.plan(_decomp->comm().get(), _dest, np, Distributor::Local::Stay, leaving);
  if (_plan.totalExported() == 0) {
    if (companion)
      shareIds(parts, *companion);
    return 0;
  }
  const std::size_t size = _plan.kept() + _plan.imported();
  if (size > parts.capacity()) {
    parts.reserve(static_cast<std::size_t>(1.1 * double(size)) + 16);
    if (companion)
      companion->reserve(parts.capacity());
  } else if (companion && size > companion->capacity()) {
    throw std::logic_error("Migrator: the companion's capacity is below the particles'");
  }
  // After any growth: the columns are the arrays as they are now.
  auto& cols = _columns;
  cols.clear();
  addColumns(cols, parts);
  if (companion) { // its x and p (e.g. adjoints) travel with their particles
    cols.push_back(Distributor::column(companion->x));
    cols.push_back(Distributor::column(companion->p));
  }
  _plan.migrate(cols);
  parts.setSize(size);
  if (companion) {
    companion->setSize(size);
    shareIds(parts, *companion);
  }
  return _plan.exported();
}

template <class R> std::size_t migrate(BasicParticles<R>& parts, const SlabDecomposition& decomp) {
  // The decomposition outlives this call; a non-owning shared_ptr hands it to the Migrator.
  Migrator m(std::shared_ptr<const SlabDecomposition>(&decomp, [](const SlabDecomposition*) {}));
  return m(parts);
}

#define CAUSTIC_MIGRATE_INSTANTIATE(R)                                                             \
  template std::size_t Migrator::operator()(BasicParticles<R>&, BasicParticles<R>*);               \
  template std::size_t Migrator::toLattice(BasicParticles<R>&, BasicParticles<R>*);                \
  template void Migrator::drift(BasicParticles<R>&, double, double);                               \
  template std::size_t migrate(BasicParticles<R>&, const SlabDecomposition&);
CAUSTIC_MIGRATE_INSTANTIATE(double)
CAUSTIC_MIGRATE_INSTANTIATE(float)
#undef CAUSTIC_MIGRATE_INSTANTIATE

} // namespace caustic
