#pragma once
// The meshes and FFT plans of one decomposition, shared by everything that needs a mesh for a
// while: the gravity solver during a force computation, observers (power spectra, density
// fields) between steps, the adjoint's two buffers. A user leases a buffer for as long as it
// needs it; a lease takes a free buffer and allocates one only when all are leased, so the
// solver and the observers share memory instead of borrowing each other's.
#include "pm/mesh/mesh.hpp"

#include <memory>
#include <string>
#include <vector>

namespace caustic {

template <class T> class Workspace {
public:
  // Collective: allocates `initial` buffers and plans the FFTs (planner `fft_flags`) on the
  // first of them.
  Workspace(std::shared_ptr<const Decomposition> decomp, unsigned fft_flags = FFTW_ESTIMATE,
            int initial = 1);
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  // A leased mesh buffer (contents undefined on lease), returned when the lease ends.
  class Lease {
  public:
    Lease(Lease&& o) noexcept : _ws(o._ws), _i(o._i) { o._ws = nullptr; }
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease() {
      if (_ws)
        _ws->_busy[_i] = false;
    }
    Field<T>& operator*() const { return *_ws->_fields[_i]; }
    Field<T>* operator->() const { return _ws->_fields[_i].get(); }

  private:
    friend class Workspace;
    Lease(Workspace* ws, std::size_t i) : _ws(ws), _i(i) {}
    Workspace* _ws;
    std::size_t _i;
  };
  // Not collective (allocation is local); `who` labels a new buffer.
  Lease lease(const std::string& who);

  const Decomposition& decomp() const { return *_decomp; }
  std::shared_ptr<const Decomposition> decompPtr() const { return _decomp; }
  const FFT<T>& fft() const { return _fft; }
  // Buffers allocated now (leased or free).
  std::size_t buffers() const;
  // Frees the buffers no lease holds; later leases allocate again. Not collective. For phases
  // between steps that need the memory for something else (FoF at an output), so that their
  // peak does not add to the meshes'. Returns the bytes freed.
  std::size_t releaseIdle();

private:
  std::shared_ptr<const Decomposition> _decomp;
  std::vector<std::unique_ptr<Field<T>>> _fields;
  std::vector<bool> _busy;
  FFT<T> _fft; // after _fields: planned on the first buffer
};

extern template class Workspace<float>;
extern template class Workspace<double>;

} // namespace caustic
