#include "pm/ghost_planes.hpp"

#include "pm/profiling.hpp"

#include <stdexcept>

namespace caustic {

GhostPlanes::GhostPlanes(std::shared_ptr<const SlabDecomposition> decomp, int width)
    : _decomp(std::move(decomp)), _w(width) {
  const auto& d = *_decomp;
  if (width < 0 || width > d.n())
    throw std::invalid_argument("GhostPlanes: width " + std::to_string(width) + " outside [0, N]");
  const int size = d.comm().size(), me = d.comm().rank();
  _owned_for.resize(size);
  _ghost_from.resize(size);
  for (int r = 0; r < size; ++r) {
    if (d.localNxOf(r) == 0)
      continue;
    for (int g = 0; g < 2 * _w; ++g) {
      const int p = planeOf(r, g);
      const int owner = d.ownerOfPlane(p);
      if (owner == me)
        _owned_for[r].emplace_back(g, p - d.xStart());
      if (r == me)
        _ghost_from[owner].push_back(g);
    }
  }
}

int GhostPlanes::planeOf(int r, int g) const {
  const int n = _decomp->n(), x0 = _decomp->xStartOf(r), nx = _decomp->localNxOf(r);
  const int p = g < _w ? x0 - _w + g : x0 + nx + (g - _w);
  return ((p % n) + n) % n;
}

template <class T>
void GhostPlanes::exchange(const Kokkos::View<T***>& ghosts, Field<T>& f, bool gather) const {
  // gather: owners send field planes, ghosts receive.  scatterAdd: ghosts send, owners add.
  const auto& d = *_decomp;
  const auto& comm = d.comm();
  const int size = comm.size(), n = d.n();
  const std::size_t plane = static_cast<std::size_t>(n) * n;
  std::vector<int> sc(size), sd(size), rc(size), rd(size);
  std::size_t stot = 0, rtot = 0;
  for (int r = 0; r < size; ++r) {
    const std::size_t ns = gather ? _owned_for[r].size() : _ghost_from[r].size();
    const std::size_t nr = gather ? _ghost_from[r].size() : _owned_for[r].size();
    sd[r] = static_cast<int>(stot * plane);
    sc[r] = static_cast<int>(ns * plane);
    rd[r] = static_cast<int>(rtot * plane);
    rc[r] = static_cast<int>(nr * plane);
    stot += ns;
    rtot += nr;
  }
  auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ghosts);
  auto hf = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f.real());
  std::vector<T> sdata(stot * plane), rdata(rtot * plane);
  std::size_t k = 0;
  for (int r = 0; r < size; ++r) {
    if (gather) {
      for (const auto& [g, lx] : _owned_for[r]) {
        T* dst = sdata.data() + (k++) * plane;
        for (int y = 0; y < n; ++y)
          for (int z = 0; z < n; ++z)
            dst[y * n + z] = hf(Field<T>::realIndex(lx, y, z, n));
      }
    } else {
      for (int g : _ghost_from[r]) {
        const T* src = &hg(g, 0, 0);
        std::copy(src, src + plane, sdata.data() + (k++) * plane);
      }
    }
  }
  mpiCheck(MPI_Alltoallv(sdata.data(), sc.data(), sd.data(), mpiType<T>(), rdata.data(), rc.data(),
                         rd.data(), mpiType<T>(), comm.get()),
           "GhostPlanes::exchange");
  k = 0;
  for (int r = 0; r < size; ++r) {
    if (gather) {
      for (int g : _ghost_from[r]) {
        const T* src = rdata.data() + (k++) * plane;
        std::copy(src, src + plane, &hg(g, 0, 0));
      }
    } else {
      // Several ghost planes may stand for one field plane: added in a fixed order.
      for (const auto& [g, lx] : _owned_for[r]) {
        const T* src = rdata.data() + (k++) * plane;
        for (int y = 0; y < n; ++y)
          for (int z = 0; z < n; ++z)
            hf(Field<T>::realIndex(lx, y, z, n)) += src[y * n + z];
      }
    }
  }
  if (gather)
    Kokkos::deep_copy(ghosts, hg);
  else
    Kokkos::deep_copy(f.real(), hf);
}

template <class T>
void GhostPlanes::gather(const Field<T>& f, const Kokkos::View<T***>& ghosts) const {
  ScopedRegion region("caustic::GhostPlanes::gather");
  exchange(ghosts, const_cast<Field<T>&>(f), true);
}

template <class T>
void GhostPlanes::scatterAdd(const Kokkos::View<T***>& ghosts, Field<T>& f) const {
  ScopedRegion region("caustic::GhostPlanes::scatterAdd");
  exchange(ghosts, f, false);
}

template void GhostPlanes::gather<float>(const Field<float>&, const Kokkos::View<float***>&) const;
template void GhostPlanes::gather<double>(const Field<double>&,
                                          const Kokkos::View<double***>&) const;
template void GhostPlanes::scatterAdd<float>(const Kokkos::View<float***>&, Field<float>&) const;
template void GhostPlanes::scatterAdd<double>(const Kokkos::View<double***>&, Field<double>&) const;

} // namespace caustic
