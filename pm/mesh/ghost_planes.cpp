#include "pm/mesh/ghost_planes.hpp"

#include "pm/core/profiling.hpp"

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

namespace {
// MPI datatypes of whole planes, freed on scope exit.
class PlaneTypes {
public:
  ~PlaneTypes() {
    for (MPI_Datatype& t : _types)
      MPI_Type_free(&t);
  }
  // `planes` planes of `plane` (a committed or basic type), at byte offsets `offsets`.
  MPI_Datatype planes(const std::vector<MPI_Aint>& offsets, MPI_Datatype plane) {
    MPI_Datatype t;
    mpiCheck(MPI_Type_create_hindexed_block(static_cast<int>(offsets.size()), 1, offsets.data(),
                                            plane, &t),
             "GhostPlanes::exchange");
    return keep(t);
  }
  MPI_Datatype keep(MPI_Datatype t) {
    mpiCheck(MPI_Type_commit(&t), "GhostPlanes::exchange");
    _types.push_back(t);
    return t;
  }

private:
  std::vector<MPI_Datatype> _types;
};
} // namespace

// (Over 80 lines: the per-rank datatype offsets of both directions are built and used in one
// place, so that the gather and the scatter-add cannot disagree on them.)
template <class T>
void GhostPlanes::exchange(const Kokkos::View<T***>& ghosts, Field<T>& f, bool gather) const {
  // gather: owners send field planes, ghosts receive.  scatterAdd: ghosts send, owners add.
  // One MPI_Alltoallw: a field plane is n rows of n values at the padded row stride, a ghost
  // plane n^2 contiguous values; the planes exchanged with a peer are listed in the same order
  // on both sides (_owned_for on the owner, _ghost_from on the ghost's rank).
  const auto& d = *_decomp;
  const auto& comm = d.comm();
  const int size = comm.size(), n = d.n();
  const std::size_t plane = static_cast<std::size_t>(n) * n;
  const MPI_Datatype scalar = mpiType<T>();
  PlaneTypes types;
  MPI_Datatype field_plane, ghost_plane;
  mpiCheck(MPI_Type_vector(n, n, d.nzPad(), scalar, &field_plane), "GhostPlanes::exchange");
  types.keep(field_plane);
  mpiCheck(MPI_Type_contiguous(n * n, scalar, &ghost_plane), "GhostPlanes::exchange");
  types.keep(ghost_plane);
  const MPI_Aint field_bytes = static_cast<MPI_Aint>(d.nzPad()) * n * sizeof(T),
                 ghost_bytes = static_cast<MPI_Aint>(plane * sizeof(T));

  std::size_t rtot = 0; // planes received into the buffer (scatterAdd)
  for (int r = 0; r < size; ++r)
    rtot += gather ? 0 : _owned_for[r].size();
  if (_recv.size() < rtot * plane * sizeof(T))
    _recv.resize(rtot * plane * sizeof(T)); // operator new aligns it for any scalar
  T* const rbuf = reinterpret_cast<T*>(_recv.data());

  std::vector<int> sc(size, 0), rc(size, 0), sd(size, 0), rd(size, 0);
  std::vector<MPI_Datatype> st(size, scalar), rt(size, scalar);
  std::size_t k = 0;
  for (int r = 0; r < size; ++r) {
    std::vector<MPI_Aint> own, ghost;
    for (const auto& [g, lx] : _owned_for[r])
      own.push_back(lx * field_bytes);
    for (int g : _ghost_from[r])
      ghost.push_back(g * ghost_bytes);
    if (gather) {
      if (!own.empty()) {
        sc[r] = 1;
        st[r] = types.planes(own, field_plane);
      }
      if (!ghost.empty()) {
        rc[r] = 1;
        rt[r] = types.planes(ghost, ghost_plane);
      }
    } else {
      if (!ghost.empty()) {
        sc[r] = 1;
        st[r] = types.planes(ghost, ghost_plane);
      }
      if (!own.empty()) { // into the receive buffer, planes k, k + 1, ... (MPI_Aint offsets:
        rc[r] = 1;        // no int overflow of byte displacements on large meshes)
        std::vector<MPI_Aint> at;
        for (std::size_t i = 0; i < own.size(); ++i)
          at.push_back(static_cast<MPI_Aint>(k + i) * ghost_bytes);
        rt[r] = types.planes(at, ghost_plane);
        k += own.size();
      }
    }
  }
  // MPI works on host memory: the mirrors are the views themselves on host backends.
  auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ghosts);
  auto hf = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f.real());
  if (gather) {
    mpiCheck(MPI_Alltoallw(hf.data(), sc.data(), sd.data(), st.data(), hg.data(), rc.data(),
                           rd.data(), rt.data(), comm.get()),
             "GhostPlanes::exchange");
    Kokkos::deep_copy(ghosts, hg);
    return;
  }
  mpiCheck(MPI_Alltoallw(hg.data(), sc.data(), sd.data(), st.data(), rbuf, rc.data(), rd.data(),
                         rt.data(), comm.get()),
           "GhostPlanes::exchange");
  // Several ghost planes may stand for one field plane: added in a fixed order.
  using Host = Kokkos::DefaultHostExecutionSpace;
  k = 0;
  for (int r = 0; r < size; ++r)
    for (const auto& [g, lx] : _owned_for[r]) {
      const T* src = rbuf + (k++) * plane;
      T* dst = hf.data() + Field<T>::realIndex(lx, 0, 0, n);
      const int stride = d.nzPad();
      Kokkos::parallel_for("caustic::GhostPlanes::add", Kokkos::RangePolicy<Host>(0, n),
                           [=](const int y) {
                             for (int z = 0; z < n; ++z)
                               dst[std::size_t(y) * stride + z] += src[std::size_t(y) * n + z];
                           });
    }
  Host().fence();
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
