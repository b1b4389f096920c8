#pragma once
// Thin checked wrappers over the HDF5 C API: every failure throws with the file path and the
// operation; handles close themselves.
#include <hdf5.h>
#include <mpi.h>

#include <algorithm>
#include <functional>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace caustic::h5 {

// Owns an HDF5 identifier and closes it with the right H5*close.
class Handle {
public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : _id(id), _close(close) {}
  Handle(Handle&& o) noexcept : _id(o._id), _close(o._close) { o._id = -1; }
  Handle& operator=(Handle&& o) noexcept {
    reset();
    _id = o._id;
    _close = o._close;
    o._id = -1;
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  hid_t get() const { return _id; }
  operator hid_t() const { return _id; }
  void reset() {
    if (_id >= 0 && _close)
      _close(_id);
    _id = -1;
  }
  // Closes now and returns the library's status (closing a file flushes it: disk full shows
  // here).
  herr_t close() {
    herr_t r = 0;
    if (_id >= 0 && _close)
      r = _close(_id);
    _id = -1;
    return r;
  }

private:
  hid_t _id = -1;
  herr_t (*_close)(hid_t) = nullptr;
};

inline hid_t check(hid_t id, const std::string& what) {
  if (id < 0)
    throw std::runtime_error(what + ": HDF5 call failed");
  return id;
}

void attr(hid_t obj, const std::string& name, double v, const std::string& ctx);
void attr(hid_t obj, const std::string& name, std::int64_t v, const std::string& ctx);
void attr(hid_t obj, const std::string& name, const std::string& v, const std::string& ctx);
void attr(hid_t obj, const std::string& name, const std::vector<double>& v, const std::string& ctx);
void attr(hid_t obj, const std::string& name, const std::vector<std::uint64_t>& v,
          const std::string& ctx);
void attr(hid_t obj, const std::string& name, const std::vector<std::uint32_t>& v,
          const std::string& ctx);

Handle createGroup(hid_t parent, const std::string& name, const std::string& ctx);

// Creates `path` under a temporary name with the MPI-IO driver, runs `body(file)` on every
// rank, and renames the file to `path` when every rank succeeded; otherwise removes it and
// throws the first error. Collective over `comm`.
// With `bytes` > 0 (the expected file size), rank 0 first checks the free space of the file
// system and every rank throws if it is short: a disk that fills during a collective write
// can leave ranks waiting on each other.
void writeParallelFile(const std::string& path, MPI_Comm comm,
                       const std::function<void(hid_t)>& body, std::uint64_t bytes = 0);

// Writes a dataset of global shape `gdims` (rank 1-3) collectively; this rank writes the block
// starting at `start` with shape `ldims` (zero rows allowed).
void writeBlock(hid_t parent, const std::string& name, hid_t mem_type, hid_t file_type,
                const void* data, int rank, const hsize_t* gdims, const hsize_t* start,
                const hsize_t* ldims, const std::string& units, const std::string& ctx);

// An (n_total x ncomp) dataset (ncomp 1: one-dimensional) written collectively in pieces of at
// most `piece_rows` of this rank's rows: fill(first, count, buffer) puts the rank's local rows
// [first, first + count) into `buffer` (count * ncomp values of V); they go to global rows
// offset + first... Every rank makes the same number of writes (the largest rank's), a rank with
// nothing left selecting none. The conversion buffer stays bounded (piece_rows * ncomp values)
// whatever the particle count, instead of a full converted copy of a column.
template <class V> hid_t nativeType();
template <> inline hid_t nativeType<float>() { return H5T_NATIVE_FLOAT; }
template <> inline hid_t nativeType<double>() { return H5T_NATIVE_DOUBLE; }
template <> inline hid_t nativeType<std::uint64_t>() { return H5T_NATIVE_UINT64; }

class PieceWriter {
public:
  // Creates the dataset (collective); the pieces follow with write().
  PieceWriter(hid_t parent, const std::string& name, hid_t file_type, int ncomp,
              std::uint64_t n_total, std::uint64_t n_local, std::uint64_t offset,
              std::uint64_t piece_rows, MPI_Comm comm, const std::string& ctx);
  std::uint64_t pieces() const { return _pieces; }
  std::uint64_t pieceRows() const { return _piece_rows; }
  // Piece p (collective; every rank calls it for p = 0 .. pieces() - 1): `count` rows from
  // local row `first` in `data`.
  void write(hid_t mem_type, const void* data, std::uint64_t first, std::uint64_t count);
  void finish(const std::string& units); // the units attribute

private:
  Handle _dset;
  int _ncomp;
  std::uint64_t _n_total, _offset, _piece_rows, _pieces = 0;
  std::string _name, _ctx;
};

template <class V, class Fill>
void writeRowsInPieces(hid_t parent, const std::string& name, hid_t file_type, int ncomp,
                       std::uint64_t n_total, std::uint64_t n_local, std::uint64_t offset,
                       MPI_Comm comm, const Fill& fill, const std::string& units,
                       const std::string& ctx, std::uint64_t piece_rows = 1u << 20) {
  PieceWriter w(parent, name, file_type, ncomp, n_total, n_local, offset, piece_rows, comm, ctx);
  std::vector<V> buffer(static_cast<std::size_t>(std::min(n_local, w.pieceRows()) * ncomp));
  for (std::uint64_t p = 0; p < w.pieces(); ++p) {
    const std::uint64_t first = std::min(n_local, p * w.pieceRows());
    const std::uint64_t count = std::min(n_local - first, w.pieceRows());
    if (count > 0)
      fill(first, count, buffer.data());
    w.write(nativeType<V>(), buffer.data(), first, count);
  }
  w.finish(units);
}

// Opens `path` read-only with the MPI-IO driver (collective); refuses files that are not HDF5
// or cannot be opened (truncated, corrupted) with `ctx` and the reason.
Handle openParallelFile(const std::string& path, MPI_Comm comm, const std::string& ctx);

// A scalar attribute, or element 1 (particle type 1) of an array attribute, as double.
double readAttr(hid_t obj, const char* name, const std::string& ctx);
// A fixed-length string attribute; throws naming `ctx` if it is missing or of another kind.
std::string readStringAttr(hid_t obj, const char* name, const std::string& ctx);
// Rows [start, start + count) of an (total, ncomp) dataset, read collectively; checks the shape.
void readRows(hid_t file, const char* name, hid_t memtype, void* out, std::uint64_t start,
              std::uint64_t count, int ncomp, std::uint64_t total, const std::string& ctx);

} // namespace caustic::h5
