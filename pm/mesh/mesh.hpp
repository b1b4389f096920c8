#pragma once
// Distributed periodic cubic mesh over FFTW-MPI slabs.
//
// Real space: the N^3 mesh is split in x-slabs; a rank holds planes [xStart, xStart + localNx),
// each stored as N x Npad values (Npad = 2 (N/2 + 1), the r2c padding), index (lx, y, z).
// Fourier space: the transposed layout of FFTW_MPI_TRANSPOSED_OUT; a rank holds y-slabs
// [yStart, yStart + localNy) of the N x N x (N/2 + 1) half-complex array, index (ly, x, kz).
// Integer wavenumbers m in (-N/2, N/2] map to k = 2 pi m / L [h/Mpc].
//
// Fourier convention (every transform here): forward  F(k) = sum_x f(x) exp(-i k.x),
//                                            backward f(x) = N^-3 sum_k F(k) exp(+i k.x).
//
// Users outside pm/mesh/ see the decomposition through its boxes of global indices
// (realBox(), fourierBox()), the loops forEachPoint / forEachMode (and their reductions), and
// ownerOfPosition(); they never compute a slab offset. A pencil decomposition would be a second
// class with the same members (docs/architecture.md says how), selected by the `Decomposition`
// alias. Ranks may hold zero planes when N is not a multiple of the rank count.
#include "pm/core/comm.hpp"
#include "pm/core/kmath.hpp"

#include <Kokkos_Core.hpp>
#include <fftw3-mpi.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace caustic {

// A box of global mesh indices [lo, hi) per axis (hi - lo may be 0 on a rank without planes).
struct IndexBox {
  int lo[3] = {0, 0, 0};
  int hi[3] = {0, 0, 0};
  long extent(int axis) const { return hi[axis] - lo[axis]; }
  std::size_t size() const { return static_cast<std::size_t>(extent(0)) * extent(1) * extent(2); }
};

// One local real-space point of a forEachPoint loop.
struct MeshPoint {
  std::size_t index;   // flat index into Field::real()
  std::size_t compact; // ((x - x0) N + y) N + z: the index without the r2c padding (e.g. the
                       // local particle of a Lagrangian lattice in lattice order)
  int x, y, z;         // global indices in [0, N)
};

// One local real-space row of a forEachRow loop: the N points (x, y, z = 0..N-1), contiguous.
struct MeshRow {
  std::size_t index;   // flat index of (x, y, 0) into Field::real(); point z is at index + z
  std::size_t compact; // ((x - x0) N + y) N: the unpadded index of (x, y, 0)
  int x, y;            // global indices in [0, N)
};

// One local Fourier mode of a forEachMode loop.
struct MeshMode {
  std::size_t index; // flat index into Field::complex()
  int ix, iy, iz;    // global indices: ix, iy in [0, N), iz in [0, N/2]
  int mx, my, mz;    // signed integer wavenumbers, m in (-N/2, N/2] (mz = iz)
  double weight;     // weight of the mode in a sum over the full k space from the stored half:
                     // 1 on the planes iz = 0 and iz = N/2, 2 elsewhere
  KOKKOS_INLINE_FUNCTION int m2() const { return mx * mx + my * my + mz * mz; }
  // Whether the mode lies on a Nyquist plane (|m| = N/2 on any axis).
  KOKKOS_INLINE_FUNCTION bool nyquist(int n) const {
    const int h = n / 2;
    return mx == h || my == h || mz == h;
  }
};

class SlabDecomposition {
public:
  // Collective over `comm`. Throws std::invalid_argument if n is odd, < 2 or smaller than the
  // number of ranks.
  SlabDecomposition(MPI_Comm comm, int n, double box);

  const Comm& comm() const { return _comm; }
  int n() const { return _n; }
  double box() const { return _box; }       // side [Mpc/h]
  double cell() const { return _box / _n; } // cell size [Mpc/h]
  double kFundamental() const;              // 2 pi / L [h/Mpc]

  int localNx() const { return _localNx; }
  int xStart() const { return _xStart; }
  int localNy() const { return _localNy; }
  int yStart() const { return _yStart; }
  int nzPad() const { return 2 * (_n / 2 + 1); }
  int nzComplex() const { return _n / 2 + 1; }
  // Elements of T per field buffer (at least 1 so that every rank can be handed to FFTW).
  std::size_t realAlloc() const { return 2 * _allocComplex; }
  std::size_t complexAlloc() const { return _allocComplex; }

  // Real-space owner of global x-plane ix (any integer; wrapped periodically).
  int ownerOfPlane(long ix) const;
  int xStartOf(int rank) const { return _xStarts[rank]; }
  int localNxOf(int rank) const { return _localNxs[rank]; }

  // This rank's boxes of global indices: real space (x-slab), Fourier space (y-slab of the
  // transposed half-complex array, z in [0, N/2]).
  IndexBox realBox() const { return {{_xStart, 0, 0}, {_xStart + _localNx, _n, _n}}; }
  IndexBox fourierBox() const { return {{0, _yStart, 0}, {_n, _yStart + _localNy, _n / 2 + 1}}; }
  // Owner of a position x [Mpc/h] along the decomposed axis (any value: wrapped periodically).
  int ownerOfPosition(double x) const;
  // The x plane of a position x in [0, L): floor(x / H) (as x * inv_cell), clamped to [0, N).
  // Migration and ownerOfPosition both use it, so that they agree on boundary planes to the bit.
  KOKKOS_INLINE_FUNCTION static int planeOfPosition(double x, double inv_cell, int n) {
    int i = static_cast<int>(km::floor(x * inv_cell));
    return i < 0 ? 0 : (i >= n ? n - 1 : i);
  }

  // f(MeshPoint) over the local real-space points, as one labelled Kokkos kernel (the points are
  // independent: f must not write to another point's data).
  template <class F> void forEachPoint(const char* label, const F& f) const;
  // f(MeshMode) over the local Fourier modes, as one labelled Kokkos kernel.
  template <class F> void forEachMode(const char* label, const F& f) const;
  // f(MeshRow) over the local real-space rows, as one labelled Kokkos kernel: for memory-bound
  // loops, whose inner loop over z (in f) the compiler vectorises where forEachPoint's
  // per-point calls are 2-5 times slower.
  template <class F> void forEachRow(const char* label, const F& f) const;
  // sum <- sum over the local points / rows / modes of f(point, acc) (f adds to acc). Local
  // only: the caller reduces over ranks.
  template <class F> void reducePoints(const char* label, const F& f, double& sum) const;
  template <class F> void reduceRows(const char* label, const F& f, double& sum) const;
  template <class F> void reduceModes(const char* label, const F& f, double& sum) const;

  // Signed integer wavenumber of index i in [0, N): i for i <= N/2, i - N otherwise.
  KOKKOS_INLINE_FUNCTION static int signedIndex(int i, int n) { return i <= n / 2 ? i : i - n; }

private:
  Comm _comm;
  int _n;
  double _box;
  int _localNx = 0, _xStart = 0, _localNy = 0, _yStart = 0;
  std::size_t _allocComplex = 0;
  std::vector<int> _xStarts, _localNxs, _planeOwner;
};

// One distributed scalar field in a single in-place buffer, in real or Fourier space.
template <class T> class Field {
public:
  using value_type = T;
  using complex_type = Kokkos::complex<T>;
  using real_view = Kokkos::View<T*>;
  using complex_view = Kokkos::View<complex_type*, Kokkos::MemoryUnmanaged>;

  Field(std::shared_ptr<const SlabDecomposition> decomp, const std::string& label);

  const SlabDecomposition& decomp() const { return *_decomp; }
  std::shared_ptr<const SlabDecomposition> decompPtr() const { return _decomp; }
  real_view real() const { return _data; }
  complex_view complex() const {
    return complex_view(reinterpret_cast<complex_type*>(_data.data()), _decomp->complexAlloc());
  }
  // Flat index of real-space point (lx local plane, y, z).
  KOKKOS_INLINE_FUNCTION static std::size_t realIndex(int lx, int y, int z, int n) {
    return (static_cast<std::size_t>(lx) * n + y) * (2 * (n / 2 + 1)) + z;
  }
  // Flat index of Fourier mode (ly local y-plane, x, kz) in the transposed layout.
  KOKKOS_INLINE_FUNCTION static std::size_t complexIndex(int ly, int x, int kz, int n) {
    return (static_cast<std::size_t>(ly) * n + x) * (n / 2 + 1) + kz;
  }
  void setZero() const { Kokkos::deep_copy(_data, T(0)); }

private:
  std::shared_ptr<const SlabDecomposition> _decomp;
  real_view _data;
};

// The decomposition every user names; SlabDecomposition is its only implementation today.
using Decomposition = SlabDecomposition;

// The loops below guard the kernel with `if (local extent > 0) { ... }` rather than returning
// early: with an early return GCC 12 spills the loop counters of the inner loop (a 40% slower
// Green's function kernel), with the guard it keeps them in registers.
template <class F> void SlabDecomposition::forEachPoint(const char* label, const F& f) const {
  const int n = _n, nx = _localNx, x0 = _xStart, npad = nzPad();
  if (nx > 0) {
    Kokkos::parallel_for(
        label, Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {nx, n, n}),
        KOKKOS_LAMBDA(const int lx, const int y, const int z) {
          const std::size_t row = static_cast<std::size_t>(lx) * n + y;
          f(MeshPoint{row * npad + z, row * n + z, x0 + lx, y, z});
        });
    Kokkos::fence();
  }
}

template <class F>
void SlabDecomposition::reducePoints(const char* label, const F& f, double& sum) const {
  const int n = _n, nx = _localNx, x0 = _xStart, npad = nzPad();
  sum = 0.0;
  if (nx > 0)
    Kokkos::parallel_reduce(
        label, Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {nx, n, n}),
        KOKKOS_LAMBDA(const int lx, const int y, const int z, double& acc) {
          const std::size_t row = static_cast<std::size_t>(lx) * n + y;
          f(MeshPoint{row * npad + z, row * n + z, x0 + lx, y, z}, acc);
        },
        sum);
}

template <class F> void SlabDecomposition::forEachRow(const char* label, const F& f) const {
  const int n = _n, nx = _localNx, x0 = _xStart, npad = nzPad();
  if (nx > 0) {
    Kokkos::parallel_for(
        label, Kokkos::RangePolicy<>(0, static_cast<std::size_t>(nx) * n),
        KOKKOS_LAMBDA(const std::size_t row) {
          f(MeshRow{row * npad, row * n, x0 + static_cast<int>(row / n),
                    static_cast<int>(row % n)});
        });
    Kokkos::fence();
  }
}

template <class F>
void SlabDecomposition::reduceRows(const char* label, const F& f, double& sum) const {
  const int n = _n, nx = _localNx, x0 = _xStart, npad = nzPad();
  sum = 0.0;
  if (nx > 0)
    Kokkos::parallel_reduce(
        label, Kokkos::RangePolicy<>(0, static_cast<std::size_t>(nx) * n),
        KOKKOS_LAMBDA(const std::size_t row, double& acc) {
          f(MeshRow{row * npad, row * n, x0 + static_cast<int>(row / n), static_cast<int>(row % n)},
            acc);
        },
        sum);
}

namespace detail {
KOKKOS_INLINE_FUNCTION MeshMode slabMode(int ly, int x, int z, int n, int y0) {
  const int nzc = n / 2 + 1;
  const int y = y0 + ly;
  return MeshMode{(static_cast<std::size_t>(ly) * n + x) * nzc + z,
                  x,
                  y,
                  z,
                  SlabDecomposition::signedIndex(x, n),
                  SlabDecomposition::signedIndex(y, n),
                  z,
                  (z == 0 || 2 * z == n) ? 1.0 : 2.0};
}
} // namespace detail

template <class F> void SlabDecomposition::forEachMode(const char* label, const F& f) const {
  const int n = _n, ny = _localNy, y0 = _yStart, nzc = nzComplex();
  if (ny > 0) {
    Kokkos::parallel_for(
        label, Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {ny, n, nzc}),
        KOKKOS_LAMBDA(const int ly, const int x, const int z) {
          f(detail::slabMode(ly, x, z, n, y0));
        });
    Kokkos::fence();
  }
}

template <class F>
void SlabDecomposition::reduceModes(const char* label, const F& f, double& sum) const {
  const int n = _n, ny = _localNy, y0 = _yStart, nzc = nzComplex();
  sum = 0.0;
  if (ny > 0)
    Kokkos::parallel_reduce(
        label, Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {ny, n, nzc}),
        KOKKOS_LAMBDA(const int ly, const int x, const int z, double& acc) {
          f(detail::slabMode(ly, x, z, n, y0), acc);
        },
        sum);
}

// FFTW-MPI plans for the fields of one decomposition (precision T = float or double).
template <class T> class FFT {
public:
  // Collective. `flags`: FFTW planner flags (FFTW_ESTIMATE, FFTW_MEASURE, ...). Plans are made on
  // `buffer` (a field of `decomp`), whose contents a measuring planner overwrites, or without
  // one on a scratch field of its own (a mesh allocated and first touched only to plan on).
  explicit FFT(std::shared_ptr<const SlabDecomposition> decomp, unsigned flags = FFTW_ESTIMATE,
               Field<T>* buffer = nullptr);
  ~FFT();
  FFT(const FFT&) = delete;
  FFT& operator=(const FFT&) = delete;

  // In place, real -> Fourier (transposed layout). Unnormalised: F(k) = sum_x f(x) e^{-ik.x}.
  void forward(Field<T>& f) const;
  // In place, Fourier -> real, normalised by 1/N^3 so that backward(forward(f)) = f; with
  // normalise = false the 1/N^3 is left to the caller (who folds it into a kernel).
  void backward(Field<T>& f, bool normalise = true) const;

private:
  std::shared_ptr<const SlabDecomposition> _decomp;
  void* _r2c = nullptr;
  void* _c2r = nullptr;
};

// FFTW planner flags by name: "estimate" (FFTW_ESTIMATE: no measurement; plans may be slow),
// "measure" (FFTW_MEASURE: times candidate plans once, seconds for a 256^3 mesh) or "patient"
// (FFTW_PATIENT: more candidates, can take minutes). Throws std::invalid_argument otherwise.
unsigned fftPlannerFlags(const std::string& name);

// FFTW wisdom of precision T (plans measured once, reused): rank 0 reads/writes `path`, the
// others receive it. With the same wisdom the planner makes the same plans, so results repeat
// bit for bit. importWisdom() is a no-op if the file does not exist and returns whether it
// was read (Invalid: the file exists but is not FFTW wisdom of precision T; nothing imported);
// exportWisdom() writes a temporary file and renames it (runs sharing one file never see half
// of one). Collective; the result is rank 0's, on every rank.
enum class WisdomImport { NoFile, Imported, Invalid };
template <class T> WisdomImport importWisdom(const std::string& path, MPI_Comm comm);
template <class T> void exportWisdom(const std::string& path, MPI_Comm comm);
// This process's current wisdom of precision T as text (not collective): comparing it before
// and after planning tells whether the plans came from wisdom (nothing new was learnt).
template <class T> std::string wisdomText();
// The file of precision T under a wisdom base path: `base` for double, `base.f` for float.
template <class T> std::string wisdomFile(const std::string& base);

extern template class Field<float>;
extern template class Field<double>;
extern template class FFT<float>;
extern template class FFT<double>;

} // namespace caustic
