#include "pm/ghost_planes.hpp"

#include "pm/profiling.hpp"

#include <stdexcept>

namespace caustic {

GhostPlanes::GhostPlanes(std::shared_ptr<const SlabDecomposition> decomp, int width)
    : _decomp(std::move(decomp)), _w(width) {
  if (width < 0 || width > _decomp->n())
    throw std::invalid_argument("GhostPlanes: width " + std::to_string(width) + " outside [0, N]");
}

std::vector<int> GhostPlanes::ghostsOf(int r) const {
  std::vector<int> g;
  const int nx = _decomp->localNxOf(r), x0 = _decomp->xStartOf(r), n = _decomp->n();
  if (nx == 0)
    return g;
  for (int b = 0; b < nx + 2 * _w; ++b) {
    if (b >= _w && b < _w + nx)
      continue;
    g.push_back(((x0 - _w + b) % n + n) % n);
  }
  return g;
}

template <class T>
void GhostPlanes::exchange(const Kokkos::View<T***>& buf, Field<T>* f, bool forward) const {
  // forward (gather): owners send field planes, ghosts receive into buf.
  // backward (scatterAdd): ghosts send buf planes, owners add into the field.
  const auto& d = *_decomp;
  const auto& comm = d.comm();
  const int size = comm.size(), me = comm.rank(), n = d.n(), nx = d.localNx(), x0 = d.xStart();
  const std::size_t plane = static_cast<std::size_t>(n) * n;
  // What this rank owns and others need (in their ghost order), per rank.
  std::vector<std::vector<int>> owned_for(size);
  for (int r = 0; r < size; ++r)
    for (int p : ghostsOf(r))
      if (d.ownerOfPlane(p) == me)
        owned_for[r].push_back(p);
  // This rank's ghosts per owner, with their buffer plane index.
  const auto mine = ghostsOf(me);
  std::vector<std::vector<int>> ghost_from(size);
  {
    int k = 0;
    for (int b = 0; b < (nx > 0 ? nx + 2 * _w : 0); ++b) {
      if (b >= _w && b < _w + nx)
        continue;
      ghost_from[d.ownerOfPlane(mine[k++])].push_back(b);
    }
  }
  auto& out_lists = forward ? owned_for : ghost_from; // what I send
  auto& in_lists = forward ? ghost_from : owned_for;  // what I receive
  std::vector<int> sc(size), sd(size), rc(size), rd(size);
  std::size_t stot = 0, rtot = 0;
  for (int r = 0; r < size; ++r) {
    sd[r] = static_cast<int>(stot * plane);
    sc[r] = static_cast<int>(out_lists[r].size() * plane);
    stot += out_lists[r].size();
    rd[r] = static_cast<int>(rtot * plane);
    rc[r] = static_cast<int>(in_lists[r].size() * plane);
    rtot += in_lists[r].size();
  }
  auto hbuf = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buf);
  auto hf = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f->real());
  std::vector<T> sdata(stot * plane), rdata(rtot * plane);
  std::size_t k = 0;
  for (int r = 0; r < size; ++r)
    for (int item : out_lists[r]) {
      T* dst = sdata.data() + (k++) * plane;
      if (forward) { // item: a global plane this rank owns
        const int lx = item - x0;
        for (int y = 0; y < n; ++y)
          for (int z = 0; z < n; ++z) dst[y * n + z] = hf(Field<T>::realIndex(lx, y, z, n));
      } else { // item: a buffer plane
        for (std::size_t j = 0; j < plane; ++j) dst[j] = hbuf.data()[item * plane + j];
      }
    }
  mpiCheck(MPI_Alltoallv(sdata.data(), sc.data(), sd.data(), mpiType<T>(), rdata.data(), rc.data(),
                         rd.data(), mpiType<T>(), comm.get()),
           "GhostPlanes::exchange");
  k = 0;
  for (int r = 0; r < size; ++r)
    for (int item : in_lists[r]) {
      const T* src = rdata.data() + (k++) * plane;
      if (forward) { // item: my buffer plane
        for (std::size_t j = 0; j < plane; ++j) hbuf.data()[item * plane + j] = src[j];
      } else { // item: a global plane I own
        const int lx = item - x0;
        for (int y = 0; y < n; ++y)
          for (int z = 0; z < n; ++z) hf(Field<T>::realIndex(lx, y, z, n)) += src[y * n + z];
      }
    }
  if (forward)
    Kokkos::deep_copy(buf, hbuf);
  else
    Kokkos::deep_copy(f->real(), hf);
}

template <class T> void GhostPlanes::gather(const Field<T>& f, const Kokkos::View<T***>& buf) const {
  ScopedRegion region("caustic::GhostPlanes::gather");
  const int n = _decomp->n(), nx = _decomp->localNx(), w = _w;
  if (nx > 0) {
    auto r = f.real();
    Kokkos::parallel_for(
        "caustic::GhostPlanes::interior", Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {nx, n, n}),
        KOKKOS_LAMBDA(const int lx, const int y, const int z) {
          buf(lx + w, y, z) = r(Field<T>::realIndex(lx, y, z, n));
        });
    Kokkos::fence();
  }
  exchange(buf, const_cast<Field<T>*>(&f), true);
}

template <class T> void GhostPlanes::scatterAdd(const Kokkos::View<T***>& buf, Field<T>& f) const {
  ScopedRegion region("caustic::GhostPlanes::scatterAdd");
  const int n = _decomp->n(), nx = _decomp->localNx(), w = _w;
  f.setZero();
  if (nx > 0) {
    auto r = f.real();
    Kokkos::parallel_for(
        "caustic::GhostPlanes::interiorAdd", Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {nx, n, n}),
        KOKKOS_LAMBDA(const int lx, const int y, const int z) {
          r(Field<T>::realIndex(lx, y, z, n)) = buf(lx + w, y, z);
        });
    Kokkos::fence();
  }
  exchange(buf, &f, false);
}

template void GhostPlanes::gather<float>(const Field<float>&, const Kokkos::View<float***>&) const;
template void GhostPlanes::gather<double>(const Field<double>&, const Kokkos::View<double***>&) const;
template void GhostPlanes::scatterAdd<float>(const Kokkos::View<float***>&, Field<float>&) const;
template void GhostPlanes::scatterAdd<double>(const Kokkos::View<double***>&, Field<double>&) const;

} // namespace caustic
