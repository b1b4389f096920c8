#pragma once
// Ghost planes across x-slab boundaries, for windows that reach beyond a rank's slab.
//
// A rank with nx > 0 planes works on a buffer of nx + 2w planes (unpadded N x N each): buffer
// plane b holds global plane x0 - w + b (periodic). gather() fills the buffer from the field
// (interior from this rank, ghosts from their owners, several ranks away if slabs are thin);
// scatterAdd() is its adjoint: it sums every buffer plane onto the field plane it stands for.
// Both sides of every exchange are known from the decomposition, so no counts are exchanged.
#include "pm/mesh.hpp"

#include <vector>

namespace caustic {

class GhostPlanes {
public:
  GhostPlanes(std::shared_ptr<const SlabDecomposition> decomp, int width);

  int width() const { return _w; }
  int bufferPlanes() const { return _decomp->localNx() > 0 ? _decomp->localNx() + 2 * _w : 0; }

  template <class T> Kokkos::View<T***> makeBuffer(const std::string& label) const {
    return Kokkos::View<T***>(label, bufferPlanes(), _decomp->n(), _decomp->n());
  }
  // buf <- field planes x0 - w .. x0 + nx + w - 1. Collective.
  template <class T> void gather(const Field<T>& f, const Kokkos::View<T***>& buf) const;
  // field <- sum of the buffer planes standing for each field plane (overwrites f). Collective.
  template <class T> void scatterAdd(const Kokkos::View<T***>& buf, Field<T>& f) const;

private:
  // Global planes rank r needs as ghosts (buffer order), empty when r holds no plane.
  std::vector<int> ghostsOf(int r) const;
  template <class T> void exchange(const Kokkos::View<T***>& buf, Field<T>* f, bool forward) const;

  std::shared_ptr<const SlabDecomposition> _decomp;
  int _w;
};

} // namespace caustic
