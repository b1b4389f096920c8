#include "pm/migrate.hpp"

#include "pm/profiling.hpp"

#include <numeric>

namespace caustic {

namespace {
KOKKOS_INLINE_FUNCTION int planeOf(double x, double inv_cell, int n) {
  int i = static_cast<int>(km::floor(x * inv_cell));
  if (i < 0)
    i = 0;
  if (i >= n)
    i = n - 1;
  return i;
}
} // namespace

int ownerOfPosition(double x, const SlabDecomposition& decomp) {
  return decomp.ownerOfPlane(planeOf(x, 1.0 / decomp.cell(), decomp.n()));
}

Migrator::Migrator(std::shared_ptr<const SlabDecomposition> decomp) : _decomp(std::move(decomp)) {
  const int n = _decomp->n();
  _owner = Kokkos::View<int*>("caustic::Migrator::owner", n);
  auto h = Kokkos::create_mirror_view(_owner);
  for (int i = 0; i < n; ++i)
    h(i) = _decomp->ownerOfPlane(i);
  Kokkos::deep_copy(_owner, h);
}

std::size_t Migrator::operator()(Particles& parts) {
  ScopedRegion region("caustic::migrate");
  const auto& comm = _decomp->comm();
  const int size = comm.size(), me = comm.rank(), n = _decomp->n();
  const double inv_cell = 1.0 / _decomp->cell();
  const std::size_t np = parts.size();
  if (_dest.extent(0) < parts.capacity())
    _dest = Kokkos::View<int*>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "caustic::Migrator::dest"),
        parts.capacity());
  auto dest = _dest;
  auto owner = _owner;
  auto X = parts.x;
  long leaving = 0;
  Kokkos::parallel_reduce(
      "caustic::migrate::plan", Kokkos::RangePolicy<>(0, np),
      KOKKOS_LAMBDA(const std::size_t i, long& acc) {
        dest(i) = owner(planeOf(X(i, 0), inv_cell, n));
        if (dest(i) != me)
          ++acc;
      },
      leaving);
  long total_leaving = 0;
  mpiCheck(MPI_Allreduce(&leaving, &total_leaving, 1, MPI_LONG, MPI_SUM, comm.get()), "migrate");
  if (total_leaving == 0)
    return 0;

  // Pack the leavers by destination (host side; O(leavers) beyond the scan).
  auto hdest = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dest);
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
  auto hid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  std::vector<std::size_t> leavers;
  leavers.reserve(static_cast<std::size_t>(leaving));
  std::vector<int> send_counts(size, 0), recv_counts(size, 0);
  for (std::size_t i = 0; i < np; ++i)
    if (hdest(i) != me) {
      leavers.push_back(i);
      ++send_counts[hdest(i)];
    }
  mpiCheck(MPI_Alltoall(send_counts.data(), 1, MPI_INT, recv_counts.data(), 1, MPI_INT, comm.get()),
           "migrate");
  std::vector<int> sdispl(size, 0), rdispl(size, 0);
  for (int r = 1; r < size; ++r) {
    sdispl[r] = sdispl[r - 1] + send_counts[r - 1];
    rdispl[r] = rdispl[r - 1] + recv_counts[r - 1];
  }
  const std::size_t nsend = leavers.size();
  const std::size_t nrecv = std::accumulate(recv_counts.begin(), recv_counts.end(), std::size_t(0));
  std::vector<double> sbuf(6 * nsend), rbuf(6 * nrecv);
  std::vector<std::uint64_t> sid(nsend), rid(nrecv);
  {
    std::vector<int> cursor(sdispl);
    for (std::size_t i : leavers) {
      const std::size_t j = static_cast<std::size_t>(cursor[hdest(i)]++);
      for (int c = 0; c < 3; ++c) {
        sbuf[6 * j + c] = hx(i, c);
        sbuf[6 * j + 3 + c] = hp(i, c);
      }
      sid[j] = hid(i);
    }
  }
  std::vector<int> sc6(size), sd6(size), rc6(size), rd6(size);
  for (int r = 0; r < size; ++r) {
    sc6[r] = 6 * send_counts[r];
    sd6[r] = 6 * sdispl[r];
    rc6[r] = 6 * recv_counts[r];
    rd6[r] = 6 * rdispl[r];
  }
  mpiCheck(MPI_Alltoallv(sbuf.data(), sc6.data(), sd6.data(), MPI_DOUBLE, rbuf.data(), rc6.data(),
                         rd6.data(), MPI_DOUBLE, comm.get()),
           "migrate");
  mpiCheck(MPI_Alltoallv(sid.data(), send_counts.data(), sdispl.data(), MPI_UINT64_T, rid.data(),
                         recv_counts.data(), rdispl.data(), MPI_UINT64_T, comm.get()),
           "migrate");

  // Fill the holes below the new end with the staying particles above it.
  const std::size_t kept = np - nsend;
  {
    std::size_t tail = np;
    for (std::size_t hole : leavers) {
      if (hole >= kept)
        break;
      do {
        --tail;
      } while (hdest(tail) != me);
      for (int c = 0; c < 3; ++c) {
        hx(hole, c) = hx(tail, c);
        hp(hole, c) = hp(tail, c);
      }
      hid(hole) = hid(tail);
    }
  }
  if (kept + nrecv > parts.capacity()) {
    Kokkos::deep_copy(parts.x, hx);
    Kokkos::deep_copy(parts.p, hp);
    Kokkos::deep_copy(parts.id, hid);
    parts.setSize(kept);
    parts.reserve(static_cast<std::size_t>(1.1 * double(kept + nrecv)) + 16);
    hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
    hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
    hid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  }
  for (std::size_t j = 0; j < nrecv; ++j) {
    for (int c = 0; c < 3; ++c) {
      hx(kept + j, c) = rbuf[6 * j + c];
      hp(kept + j, c) = rbuf[6 * j + 3 + c];
    }
    hid(kept + j) = rid[j];
  }
  Kokkos::deep_copy(parts.x, hx);
  Kokkos::deep_copy(parts.p, hp);
  Kokkos::deep_copy(parts.id, hid);
  parts.setSize(kept + nrecv);
  return nsend;
}

std::size_t migrate(Particles& parts, const SlabDecomposition& decomp) {
  // The decomposition outlives this call; a non-owning shared_ptr hands it to the Migrator.
  Migrator m(std::shared_ptr<const SlabDecomposition>(&decomp, [](const SlabDecomposition*) {}));
  return m(parts);
}

} // namespace caustic
