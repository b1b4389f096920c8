#include "io/hdf5_util.hpp"

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
                       const std::function<void(hid_t)>& body) {
  const std::string tmp = temporaryName(path);
  const std::string ctx = "writing " + path;
  int ok = 1;
  std::string error;
  try {
    Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), ctx), H5Pclose);
    check(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), ctx + ": MPI-IO driver");
    Handle file(check(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl),
                      ctx + ": cannot create " + tmp),
                H5Fclose);
    body(file);
  } catch (const std::exception& e) {
    ok = 0;
    error = e.what();
  }
  int all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (!all_ok) {
    if (rank == 0)
      std::remove(tmp.c_str());
    throw std::runtime_error(error.empty() ? ctx + ": failed on another rank" : error);
  }
  if (rank == 0)
    commitFile(tmp, path);
  MPI_Barrier(comm);
}

void writeBlock(hid_t parent, const std::string& name, hid_t mem_type, hid_t file_type,
                const void* data, int rank, const hsize_t* gdims, const hsize_t* start,
                const hsize_t* ldims, const std::string& units, const std::string& ctx) {
  Handle fspace(check(H5Screate_simple(rank, gdims, nullptr), ctx + ": dataspace " + name),
                H5Sclose);
  Handle dset(check(H5Dcreate2(parent, name.c_str(), file_type, fspace, H5P_DEFAULT, H5P_DEFAULT,
                               H5P_DEFAULT),
                    ctx + ": create dataset " + name),
              H5Dclose);
  Handle mspace(check(H5Screate_simple(rank, ldims, nullptr), ctx + ": memory space " + name),
                H5Sclose);
  hsize_t rows = 1;
  for (int i = 0; i < rank; ++i)
    rows *= ldims[i];
  if (rows > 0) {
    check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, ldims, nullptr),
          ctx + ": select " + name);
  } else {
    H5Sselect_none(fspace);
    H5Sselect_none(mspace);
  }
  Handle xfer(check(H5Pcreate(H5P_DATASET_XFER), ctx), H5Pclose);
  H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE);
  if (H5Dwrite(dset, mem_type, mspace, fspace, xfer, data) < 0)
    throw std::runtime_error(ctx + ": writing dataset " + name + " failed");
  attr(dset, "units", units, ctx);
}

} // namespace caustic::h5
