#include "io/hdf5_util.hpp"
#include "io/format.hpp"
#include "pm/core/comm.hpp"

#include <sys/statvfs.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "io/atomic_file.hpp"

#include <cstdio>

namespace caustic::h5 {

namespace {
template <class T>
void writeAttr(hid_t obj, const std::string& name, hid_t type, const T* data, hsize_t n,
               bool scalar, const std::string& ctx) {
  Handle space(check(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr),
                     ctx + ": dataspace of attribute " + name),
               H5Sclose);
  Handle a(check(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
                 ctx + ": create attribute " + name),
           H5Aclose);
  if (H5Awrite(a, type, data) < 0)
    throw std::runtime_error(ctx + ": write attribute " + name + ": HDF5 call failed");
}
} // namespace

void attr(hid_t obj, const std::string& name, double v, const std::string& ctx) {
  writeAttr(obj, name, H5T_NATIVE_DOUBLE, &v, 1, true, ctx);
}
void attr(hid_t obj, const std::string& name, std::int64_t v, const std::string& ctx) {
  writeAttr(obj, name, H5T_NATIVE_INT64, &v, 1, true, ctx);
}
void attr(hid_t obj, const std::string& name, const std::vector<double>& v,
          const std::string& ctx) {
  writeAttr(obj, name, H5T_NATIVE_DOUBLE, v.data(), v.size(), false, ctx);
}
void attr(hid_t obj, const std::string& name, const std::vector<std::uint64_t>& v,
          const std::string& ctx) {
  writeAttr(obj, name, H5T_NATIVE_UINT64, v.data(), v.size(), false, ctx);
}
void attr(hid_t obj, const std::string& name, const std::vector<std::uint32_t>& v,
          const std::string& ctx) {
  writeAttr(obj, name, H5T_NATIVE_UINT32, v.data(), v.size(), false, ctx);
}
void attr(hid_t obj, const std::string& name, const std::string& v, const std::string& ctx) {
  Handle type(check(H5Tcopy(H5T_C_S1), ctx), H5Tclose);
  H5Tset_size(type, v.empty() ? 1 : v.size());
  H5Tset_strpad(type, H5T_STR_NULLPAD);
  const char* data = v.empty() ? "" : v.c_str();
  writeAttr(obj, name, type.get(), data, 1, true, ctx);
}

Handle createGroup(hid_t parent, const std::string& name, const std::string& ctx) {
  return Handle(check(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                      ctx + ": create group " + name),
                H5Gclose);
}

void writeParallelFile(const std::string& path, MPI_Comm comm,
                       const std::function<void(hid_t)>& body, std::uint64_t bytes) {
  // Every rank opens the same temporary: rank 0's name.
  const std::string tmp =
      broadcastString(comm, temporaryName(path), 0, "writeParallelFile: temporary name");
  const std::string ctx = "writing " + path;
  if (bytes > 0) {
    int rank0 = 0;
    MPI_Comm_rank(comm, &rank0);
    double avail = -1;
    if (rank0 == 0) {
      struct statvfs st;
      const std::string dir = std::filesystem::path(path).parent_path().string();
      if (statvfs(dir.empty() ? "." : dir.c_str(), &st) == 0)
        avail = double(st.f_bavail) * double(st.f_frsize);
    }
    mpiCheck(MPI_Bcast(&avail, 1, MPI_DOUBLE, 0, comm), (ctx + ": free space").c_str());
    const double need = 1.02 * double(bytes) + 65536.0; // + HDF5 metadata
    if (avail >= 0 && avail < need) {
      throw CollectiveError(
          ctx + format(": no space left on the file system (needs about %.1f MB, %.1f MB free)",
                       need / 1e6, avail / 1e6));
    }
  }
  int ok = 1;
  std::string error;
  try {
    Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), ctx), H5Pclose);
    check(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), ctx + ": MPI-IO driver");
    Handle file(check(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl),
                      ctx + ": cannot create " + tmp),
                H5Fclose);
    body(file);
    if (file.close() < 0)
      throw std::runtime_error(ctx + ": cannot finish writing " + tmp +
                               " (disk full or quota exceeded?)");
  } catch (const std::exception& e) {
    ok = 0;
    error = e.what();
  }
  int all_ok = 0;
  mpiCheck(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm), ctx.c_str());
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (!all_ok) {
    if (rank == 0)
      std::remove(tmp.c_str());
    throw CollectiveError(error.empty() ? ctx + ": failed on another rank" : error);
  }
  // The rename, by rank 0; its outcome is shared so that no rank waits for a failed one.
  int committed = 1;
  if (rank == 0) {
    try {
      commitFile(tmp, path);
    } catch (const std::exception& e) {
      committed = 0;
      error = e.what();
      std::remove(tmp.c_str());
    }
  }
  mpiCheck(MPI_Bcast(&committed, 1, MPI_INT, 0, comm), (ctx + ": commit").c_str());
  if (!committed)
    throw CollectiveError(rank == 0 ? error : ctx + ": the rename failed on rank 0");
}

namespace {

// This rank's block [start, start + ldims) of `dset`, written collectively. A rank with no
// elements takes part with an empty selection and a non-null buffer.
void writeSelection(hid_t dset, hid_t mem_type, const void* data, int rank, const hsize_t* start,
                    const hsize_t* ldims, const std::string& name, const std::string& ctx) {
  Handle fspace(check(H5Dget_space(dset), ctx + ": dataspace " + name), H5Sclose);
  Handle mspace(check(H5Screate_simple(rank, ldims, nullptr), ctx + ": memory space " + name),
                H5Sclose);
  hsize_t elements = 1;
  for (int i = 0; i < rank; ++i)
    elements *= ldims[i];
  if (elements > 0) {
    check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, ldims, nullptr),
          ctx + ": select " + name);
  } else {
    H5Sselect_none(fspace);
    H5Sselect_none(mspace);
  }
  Handle xfer(check(H5Pcreate(H5P_DATASET_XFER), ctx), H5Pclose);
  H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
  static const double none = 0.0;
  if (H5Dwrite(dset, mem_type, mspace, fspace, xfer, elements > 0 && data ? data : &none) < 0)
    throw std::runtime_error(ctx + ": writing dataset " + name + " failed");
}

} // namespace

void writeBlock(hid_t parent, const std::string& name, hid_t mem_type, hid_t file_type,
                const void* data, int rank, const hsize_t* gdims, const hsize_t* start,
                const hsize_t* ldims, const std::string& units, const std::string& ctx) {
  Handle fspace(check(H5Screate_simple(rank, gdims, nullptr), ctx + ": dataspace " + name),
                H5Sclose);
  Handle dset(check(H5Dcreate2(parent, name.c_str(), file_type, fspace, H5P_DEFAULT, H5P_DEFAULT,
                               H5P_DEFAULT),
                    ctx + ": create dataset " + name),
              H5Dclose);
  // An empty dataset (a catalogue without groups) is created and not written: HDF5 refuses a
  // write of nothing. The global shape is the same on every rank, so they all skip together.
  hsize_t total = 1;
  for (int i = 0; i < rank; ++i)
    total *= gdims[i];
  if (total > 0)
    writeSelection(dset, mem_type, data, rank, start, ldims, name, ctx);
  attr(dset, "units", units, ctx);
}

PieceWriter::PieceWriter(hid_t parent, const std::string& name, hid_t file_type, int ncomp,
                         std::uint64_t n_total, std::uint64_t n_local, std::uint64_t offset,
                         std::uint64_t piece_rows, MPI_Comm comm, const std::string& ctx)
    : _ncomp(ncomp), _n_total(n_total), _offset(offset),
      _piece_rows(std::max<std::uint64_t>(piece_rows, 1)), _name(name), _ctx(ctx) {
  const int rank = ncomp > 1 ? 2 : 1;
  const hsize_t gdims[2] = {n_total, static_cast<hsize_t>(ncomp)};
  Handle fspace(check(H5Screate_simple(rank, gdims, nullptr), ctx + ": dataspace " + name),
                H5Sclose);
  _dset = Handle(check(H5Dcreate2(parent, name.c_str(), file_type, fspace, H5P_DEFAULT,
                                  H5P_DEFAULT, H5P_DEFAULT),
                       ctx + ": create dataset " + name),
                 H5Dclose);
  // An empty dataset is created and not written (HDF5 refuses a write of nothing); the global
  // shape is the same on every rank, so they all skip together.
  const std::uint64_t mine = (n_local + _piece_rows - 1) / _piece_rows;
  std::uint64_t most = 0;
  if (MPI_Allreduce(&mine, &most, 1, MPI_UINT64_T, MPI_MAX, comm) != MPI_SUCCESS)
    throw std::runtime_error(ctx + ": agreeing on the pieces of " + name);
  _pieces = n_total > 0 ? std::max<std::uint64_t>(most, 1) : 0;
}

void PieceWriter::write(hid_t mem_type, const void* data, std::uint64_t first,
                        std::uint64_t count) {
  const int rank = _ncomp > 1 ? 2 : 1;
  const hsize_t ldims[2] = {count, static_cast<hsize_t>(_ncomp)};
  const hsize_t start[2] = {_offset + first, 0};
  writeSelection(_dset, mem_type, data, rank, start, ldims, _name, _ctx);
}

void PieceWriter::finish(const std::string& units) { attr(_dset, "units", units, _ctx); }

double readAttr(hid_t obj, const char* name, const std::string& ctx) {
  if (H5Aexists(obj, name) <= 0)
    throw std::runtime_error(ctx + ": attribute " + name + " missing");
  Handle a(check(H5Aopen(obj, name, H5P_DEFAULT), ctx + ": open attribute " + name), H5Aclose);
  Handle sp(H5Aget_space(a), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(sp);
  std::vector<double> v(std::max<hssize_t>(n, 1));
  if (H5Aread(a, H5T_NATIVE_DOUBLE, v.data()) < 0)
    throw std::runtime_error(ctx + ": cannot read attribute " + name);
  return n > 1 ? v[1] : v[0]; // arrays of 6: particle type 1
}

std::string readStringAttr(hid_t obj, const char* name, const std::string& ctx) {
  if (H5Aexists(obj, name) <= 0)
    throw std::runtime_error(ctx + ": attribute " + name + " missing");
  h5::Handle a(h5::check(H5Aopen(obj, name, H5P_DEFAULT), ctx + ": open " + name), H5Aclose);
  h5::Handle t(H5Aget_type(a), H5Tclose);
  if (H5Tget_class(t) != H5T_STRING)
    throw std::runtime_error(ctx + ": attribute " + name + " is not a string");
  if (H5Tis_variable_str(t) > 0)
    throw std::runtime_error(ctx + ": attribute " + name + " is a variable-length string");
  const std::size_t size = H5Tget_size(t);
  std::string v(size + 1, '\0');
  h5::Handle mt(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mt, size);
  H5Tset_strpad(mt, H5T_STR_NULLPAD);
  if (H5Aread(a, mt, v.data()) < 0)
    throw std::runtime_error(ctx + ": cannot read attribute " + name);
  v.resize(std::strlen(v.c_str()));
  return v;
}

void readRows(hid_t file, const char* name, hid_t memtype, void* out, std::uint64_t start,
              std::uint64_t count, int ncomp, std::uint64_t total, const std::string& ctx) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
    throw std::runtime_error(ctx + ": dataset " + name + " missing");
  Handle d(check(H5Dopen2(file, name, H5P_DEFAULT), ctx + ": open " + name), H5Dclose);
  Handle fs(H5Dget_space(d), H5Sclose);
  hsize_t dims[2] = {0, 0};
  const int rank = H5Sget_simple_extent_ndims(fs);
  H5Sget_simple_extent_dims(fs, dims, nullptr);
  if (dims[0] != total || (ncomp > 1 && (rank != 2 || dims[1] != hsize_t(ncomp))))
    throw std::runtime_error(ctx + ": dataset " + name + " has " + std::to_string(dims[0]) +
                             " rows; the header says " + std::to_string(total));
  const hsize_t st[2] = {start, 0}, ct[2] = {count, hsize_t(ncomp)};
  Handle ms(H5Screate_simple(ncomp > 1 ? 2 : 1, ct, nullptr), H5Sclose);
  if (count > 0)
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, nullptr, ct, nullptr);
  else {
    H5Sselect_none(fs);
    H5Sselect_none(ms);
  }
  if (total == 0)
    return; // an empty dataset: nothing to read (every rank alike)
  Handle xfer(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
  static double none = 0.0;
  if (H5Dread(d, memtype, ms, fs, xfer, out ? out : &none) < 0)
    throw std::runtime_error(ctx + ": cannot read " + name + " (truncated or corrupted file?)");
}

Handle openParallelFile(const std::string& path, MPI_Comm comm, const std::string& ctx) {
  if (!std::filesystem::is_regular_file(path))
    throw std::runtime_error(ctx + ": no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0)
    throw std::runtime_error(ctx + ": not an HDF5 file (truncated or corrupted)");
  Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), ctx), H5Pclose);
  H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
  return Handle(check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl),
                      ctx + ": cannot open (truncated or corrupted file?)"),
                H5Fclose);
}

} // namespace caustic::h5
