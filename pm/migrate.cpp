#include "pm/migrate.hpp"

#include "pm/profiling.hpp"

#include <numeric>
#include <vector>

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

std::size_t migrate(Particles& parts, const SlabDecomposition& decomp) {
  ScopedRegion region("caustic::migrate");
  const auto& comm = decomp.comm();
  const int size = comm.size(), me = comm.rank();
  const int n = decomp.n();
  const double inv_cell = 1.0 / decomp.cell();
  const std::size_t np = parts.size();

  Kokkos::View<int*> owner("caustic::migrate::planeOwner", n);
  {
    auto h = Kokkos::create_mirror_view(owner);
    for (int i = 0; i < n; ++i)
      h(i) = decomp.ownerOfPlane(i);
    Kokkos::deep_copy(owner, h);
  }
  Kokkos::View<int*> dest("caustic::migrate::dest", np);
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

  // Counting sort by destination (host side: the order is part of the plan).
  auto hdest = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), dest);
  std::vector<int> send_counts(size, 0), recv_counts(size, 0);
  for (std::size_t i = 0; i < np; ++i)
    ++send_counts[hdest(i)];
  mpiCheck(MPI_Alltoall(send_counts.data(), 1, MPI_INT, recv_counts.data(), 1, MPI_INT, comm.get()),
           "migrate");
  std::vector<int> sdispl(size, 0), rdispl(size, 0);
  for (int r = 1; r < size; ++r) {
    sdispl[r] = sdispl[r - 1] + send_counts[r - 1];
    rdispl[r] = rdispl[r - 1] + recv_counts[r - 1];
  }
  const std::size_t nrecv = std::accumulate(recv_counts.begin(), recv_counts.end(), std::size_t(0));
  Kokkos::View<std::size_t*, Kokkos::HostSpace> order("caustic::migrate::order", np);
  {
    std::vector<int> cursor(sdispl);
    for (std::size_t i = 0; i < np; ++i)
      order(cursor[hdest(i)]++) = i;
  }
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
  auto hid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  std::vector<double> sbuf(6 * np), rbuf(6 * nrecv);
  std::vector<std::uint64_t> sid(np), rid(nrecv);
  for (std::size_t j = 0; j < np; ++j) {
    const std::size_t i = order(j);
    for (int c = 0; c < 3; ++c) {
      sbuf[6 * j + c] = hx(i, c);
      sbuf[6 * j + 3 + c] = hp(i, c);
    }
    sid[j] = hid(i);
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
  Particles out(nrecv);
  auto ox = Kokkos::create_mirror_view(out.x);
  auto op = Kokkos::create_mirror_view(out.p);
  auto oid = Kokkos::create_mirror_view(out.id);
  for (std::size_t j = 0; j < nrecv; ++j) {
    for (int c = 0; c < 3; ++c) {
      ox(j, c) = rbuf[6 * j + c];
      op(j, c) = rbuf[6 * j + 3 + c];
    }
    oid(j) = rid[j];
  }
  Kokkos::deep_copy(out.x, ox);
  Kokkos::deep_copy(out.p, op);
  Kokkos::deep_copy(out.id, oid);
  parts = out;
  return static_cast<std::size_t>(leaving);
}

} // namespace caustic
