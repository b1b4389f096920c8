#pragma once
// Ghost planes across x-slab boundaries, for windows that reach beyond a rank's slab.
//
// A rank with nx > 0 planes keeps 2w ghost planes (unpadded N x N each) next to its field:
// ghost g < w stands for global plane x0 - w + g, ghost g >= w for x0 + nx + (g - w) (periodic).
// gather() fills them from their owners (several ranks away when slabs are thin); scatterAdd()
// is its adjoint: it adds every ghost plane onto the field plane it stands for. Both sides of
// every exchange follow from the decomposition, so no counts are exchanged.
#include "pm/mesh/mesh.hpp"

#include <cstddef>
#include <vector>

namespace caustic {

class GhostPlanes {
public:
  GhostPlanes(std::shared_ptr<const SlabDecomposition> decomp, int width);

  int width() const { return _w; }
  int ghostPlanes() const { return _decomp->localNx() > 0 ? 2 * _w : 0; }

  template <class T> Kokkos::View<T***> makeBuffer(const std::string& label) const {
    return Kokkos::View<T***>(label, ghostPlanes(), _decomp->n(), _decomp->n());
  }
  // ghosts <- the field planes they stand for. Collective.
  template <class T> void gather(const Field<T>& f, const Kokkos::View<T***>& ghosts) const;
  // f <- f + each ghost plane on the field plane it stands for. Collective.
  template <class T> void scatterAdd(const Kokkos::View<T***>& ghosts, Field<T>& f) const;

  // Global plane of ghost g of rank r.
  int planeOf(int r, int g) const;

private:
  template <class T>
  void exchange(const Kokkos::View<T***>& ghosts, Field<T>& f, bool gather) const;

  std::shared_ptr<const SlabDecomposition> _decomp;
  int _w;
  // Per peer rank: the (ghost index, my local plane) pairs I send in a gather / receive in a
  // scatterAdd, and the ghost indices of mine that peer owns.
  std::vector<std::vector<std::pair<int, int>>> _owned_for;
  std::vector<std::vector<int>> _ghost_from;
  // Receive buffer of scatterAdd (bytes, either precision), kept between calls so that the time
  // step does not allocate. gather needs none: MPI datatypes move planes straight between the
  // padded field and the ghost buffer.
  mutable std::vector<std::byte> _recv;
};

} // namespace caustic
