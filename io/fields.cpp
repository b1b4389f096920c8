#include "io/fields.hpp"

#include "io/hdf5_util.hpp"
#include "io/snapshot.hpp"
#include "pm/core/comm.hpp"
#include "pm/core/kmath.hpp"
#include "pm/core/profiling.hpp"

#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace caustic {

namespace {
void writeHeader(hid_t file, double box, double a, const Params& params, const std::string& ctx) {
  h5::Handle hdr = h5::createGroup(file, "Header", ctx);
  h5::attr(hdr, "BoxSize", box, ctx);
  h5::attr(hdr, "Time", a, ctx);
  h5::attr(hdr, "Redshift", 1.0 / a - 1.0, ctx);
  h5::attr(hdr, "Omega0", params.cosmology.Omega_m, ctx);
  h5::attr(hdr, "OmegaLambda", 1.0 - params.cosmology.Omega_m, ctx);
  h5::attr(hdr, "HubbleParam", params.cosmology.h, ctx);
}

// /Header with the mesh's size and cell, and /Parameters: the start of every mesh file.
void writeMeshHeader(hid_t file, const SlabDecomposition& d, double a, const Params& params,
                     const std::string& ctx) {
  writeHeader(file, d.box(), a, params, ctx);
  {
    h5::Handle hdr(h5::check(H5Gopen2(file, "Header", H5P_DEFAULT), ctx + ": open /Header"),
                   H5Gclose);
    h5::attr(hdr, "MeshSize", std::int64_t(d.n()), ctx);
    h5::attr(hdr, "CellSize", d.cell(), ctx);
  }
  h5::Handle par = h5::createGroup(file, "Parameters", ctx);
  writeParameters(par, params, ctx);
}
} // namespace

template <class T>
void writeFields(const std::string& path, const std::vector<const Field<T>*>& fieldv,
                 const std::vector<std::string>& names, const std::string& units, double a,
                 const Params& params, const std::map<std::string, std::string>& attributes) {
  ScopedRegion region("caustic::writeField");
  const std::string ctx = "writeField(" + path + ")";
  if (fieldv.empty() || fieldv.size() != names.size())
    throw std::invalid_argument(ctx + ": one name per field needed");
  const auto& d = fieldv.front()->decomp();
  const int n = d.n();
  const IndexBox box = d.realBox();
  // A field with NaN or Inf is not written (checked by all ranks together, before the file).
  for (std::size_t c = 0; c < fieldv.size(); ++c) {
    auto f = fieldv[c]->real();
    double bad = 0; // a count, exact in double
    d.reduceRows(
        "caustic::writeFields::finiteCheck",
        KOKKOS_LAMBDA(const MeshRow& r, double& acc) {
          int b = 0;
          for (int z = 0; z < n; ++z)
            b += km::isfinite(double(f(r.index + z))) ? 0 : 1;
          acc += b;
        },
        bad);
    unsigned long long lb = static_cast<unsigned long long>(bad), all = 0;
    mpiCheck(MPI_Allreduce(&lb, &all, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, d.comm().get()),
             ctx.c_str());
    if (all > 0)
      throw CollectiveError(ctx + ": field " + names[c] + " has " + std::to_string(all) +
                            " NaN or Inf value(s); not written");
  }
  h5::writeParallelFile(
      path, d.comm().get(),
      [&](hid_t file) {
        writeMeshHeader(file, d, a, params, ctx);
        h5::Handle fields = h5::createGroup(file, "Fields", ctx);
        for (const auto& [k, v] : attributes)
          h5::attr(fields, k, v, ctx);
        // Unpadded float32 copy of the local planes, in (x, y, z) order.
        Kokkos::View<float*> packed("caustic::writeFields::packed", box.size());
        const hsize_t gdims[3] = {hsize_t(n), hsize_t(n), hsize_t(n)};
        const hsize_t start[3] = {hsize_t(box.lo[0]), hsize_t(box.lo[1]), hsize_t(box.lo[2])};
        const hsize_t ldims[3] = {hsize_t(box.extent(0)), hsize_t(box.extent(1)),
                                  hsize_t(box.extent(2))};
        for (std::size_t c = 0; c < fieldv.size(); ++c) {
          auto f = fieldv[c]->real();
          d.forEachRow(
              "caustic::writeFields::pack", KOKKOS_LAMBDA(const MeshRow& r) {
                for (int z = 0; z < n; ++z)
                  packed(r.compact + z) = static_cast<float>(f(r.index + z));
              });
          auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), packed);
          h5::writeBlock(fields, names[c], H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, h.data(), 3, gdims,
                         start, ldims, units, ctx);
        }
      },
      std::uint64_t(4) * n * n * n * fieldv.size());
}

template <class T>
void writeField(const std::string& path, const Field<T>& field, const std::string& name,
                const std::string& units, double a, const Params& params,
                const std::map<std::string, std::string>& attributes) {
  writeFields<T>(path, {&field}, {name}, units, a, params, attributes);
}

void writeParticleValues(const std::string& path, const Comm& comm, const Particles& parts,
                         const std::vector<std::vector<double>>& values,
                         const std::vector<std::string>& names, double a, const Params& params,
                         const std::map<std::string, std::string>& attributes) {
  ScopedRegion region("caustic::writeParticleValues");
  const std::string ctx = "writeParticleValues(" + path + ")";
  if (values.size() != names.size())
    throw std::invalid_argument(ctx + ": one name per value set needed");
  const std::size_t count = parts.size();
  for (const auto& v : values)
    if (v.size() != count)
      throw std::invalid_argument(ctx + ": one value per particle needed");
  unsigned long long local = count, offset = 0, total = 0;
  mpiCheck(MPI_Exscan(&local, &offset, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm.get()),
           ctx.c_str());
  if (comm.rank() == 0)
    offset = 0;
  mpiCheck(MPI_Allreduce(&local, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm.get()),
           ctx.c_str());
  auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  h5::writeParallelFile(
      path, comm.get(),
      [&](hid_t file) {
        writeHeader(file, params.simulation.box, a, params, ctx);
        {
          h5::Handle hdr(h5::check(H5Gopen2(file, "Header", H5P_DEFAULT), ctx + ": open /Header"),
                         H5Gclose);
          h5::attr(hdr, "NumPart_Total", std::vector<std::uint64_t>{0, total, 0, 0, 0, 0}, ctx);
        }
        {
          h5::Handle par = h5::createGroup(file, "Parameters", ctx);
          writeParameters(par, params, ctx);
        }
        h5::Handle grp = h5::createGroup(file, "PartType1", ctx);
        for (const auto& [k, v] : attributes)
          h5::attr(grp, k, v, ctx);
        const hsize_t gdims[1] = {hsize_t(total)}, start[1] = {hsize_t(offset)},
                      ldims[1] = {hsize_t(count)};
        h5::writeBlock(grp, "ParticleIDs", H5T_NATIVE_UINT64, H5T_STD_U64LE, id.data(), 1, gdims,
                       start, ldims, "", ctx);
        for (std::size_t c = 0; c < values.size(); ++c)
          h5::writeBlock(grp, names[c], H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, values[c].data(), 1,
                         gdims, start, ldims, "", ctx);
      },
      (8 + 8 * values.size()) * total);
}

namespace {
double headerAttr(hid_t hdr, const char* name, const std::string& ctx, double def) {
  if (H5Aexists(hdr, name) <= 0) {
    if (!std::isnan(def))
      return def;
    throw std::runtime_error(ctx + ": /Header attribute " + name + " missing");
  }
  h5::Handle a(h5::check(H5Aopen(hdr, name, H5P_DEFAULT), ctx + ": open attribute " + name),
               H5Aclose);
  double v = 0;
  h5::Handle sp(H5Aget_space(a), H5Sclose);
  if (H5Sget_simple_extent_npoints(sp) != 1 || H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0)
    throw std::runtime_error(ctx + ": cannot read /Header attribute " + name);
  return v;
}
} // namespace

namespace {
// An open cubic dataset and its header.
struct OpenCube {
  h5::Handle file, dataset;
  FieldData header;
};

OpenCube openCube(const std::string& path, const std::string& dataset, const std::string& ctx) {
  if (!std::filesystem::is_regular_file(path))
    throw std::runtime_error(ctx + ": no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0)
    throw std::runtime_error(ctx + ": not an HDF5 file (missing, truncated or corrupted)");
  h5::Handle file(h5::check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), ctx + ": open"),
                  H5Fclose);
  FieldData f;
  {
    if (H5Lexists(file, "Header", H5P_DEFAULT) <= 0)
      throw std::runtime_error(ctx + ": no /Header group");
    h5::Handle hdr(h5::check(H5Gopen2(file, "Header", H5P_DEFAULT), ctx + ": open /Header"),
                   H5Gclose);
    f.box = headerAttr(hdr, "BoxSize", ctx, NAN);
    f.a = headerAttr(hdr, "Time", ctx, NAN);
    f.omega_m = headerAttr(hdr, "Omega0", ctx, 0.0);
    f.fof_b = headerAttr(hdr, "LinkingLengthParameter", ctx, 0.0);
    f.fof_min_particles = static_cast<int>(headerAttr(hdr, "MinParticles", ctx, 0.0));
  }
  if (H5Lexists(file, "Parameters", H5P_DEFAULT) > 0) {
    h5::Handle par(h5::check(H5Gopen2(file, "Parameters", H5P_DEFAULT), ctx + ": open /Parameters"),
                   H5Gclose);
    if (H5Aexists(par, "toml") > 0)
      f.parameters = h5::readStringAttr(par, "toml", ctx);
  }
  const std::size_t slash = dataset.find('/', 1);
  if (H5Lexists(file, dataset.substr(0, slash).c_str(), H5P_DEFAULT) <= 0 ||
      H5Lexists(file, dataset.c_str(), H5P_DEFAULT) <= 0)
    throw std::runtime_error(ctx + ": no such dataset");
  h5::Handle d(h5::check(H5Dopen2(file, dataset.c_str(), H5P_DEFAULT), ctx + ": open dataset"),
               H5Dclose);
  h5::Handle sp(H5Dget_space(d), H5Sclose);
  hsize_t dims[3] = {0, 0, 0};
  if (H5Sget_simple_extent_ndims(sp) != 3 || H5Sget_simple_extent_dims(sp, dims, nullptr) != 3 ||
      dims[0] != dims[1] || dims[0] != dims[2] || dims[0] == 0)
    throw std::runtime_error(ctx + ": expected a cubic 3D dataset (N, N, N)");
  f.n = static_cast<int>(dims[0]);
  f.cell = f.box / f.n;
  return {std::move(file), std::move(d), f};
}

// Planes [x0, x0 + nx) of an open cube as float32, index ((x - x0) n + y) n + z; an empty string
// or what went wrong.
std::string readPlanes(const OpenCube& c, int x0, int nx, std::vector<float>& out,
                       const std::string& ctx) {
  const hsize_t n = static_cast<hsize_t>(c.header.n);
  out.resize(std::size_t(nx) * n * n);
  if (nx == 0)
    return "";
  h5::Handle file_space(H5Dget_space(c.dataset), H5Sclose);
  const hsize_t start[3] = {hsize_t(x0), 0, 0}, count[3] = {hsize_t(nx), n, n};
  h5::Handle mem_space(H5Screate_simple(3, count, nullptr), H5Sclose);
  if (H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
      H5Dread(c.dataset, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT, out.data()) < 0)
    return ctx + ": cannot read the values (truncated or corrupted file?)";
  for (float v : out)
    if (!std::isfinite(v))
      return ctx + ": contains NaN or Inf";
  return "";
}
} // namespace

FieldData readFieldHeader(const std::string& path, const std::string& dataset) {
  return openCube(path, dataset, "reading field " + path + ":" + dataset).header;
}

FieldData readFieldData(const std::string& path, const std::string& dataset) {
  const std::string ctx = "reading field " + path + ":" + dataset;
  const OpenCube c = openCube(path, dataset, ctx);
  FieldData f = c.header;
  const std::string err = readPlanes(c, 0, f.n, f.values, ctx);
  if (!err.empty())
    throw std::runtime_error(err);
  return f;
}

FieldData readFieldSlab(const std::string& path, const std::string& dataset, Field<double>& f) {
  const std::string ctx = "reading field " + path + ":" + dataset;
  const auto& d = f.decomp();
  const int n = d.n();
  const IndexBox rb = d.realBox();
  FieldData header;
  std::vector<float> slab;
  std::string err;
  try { // (a file some ranks cannot see must not leave the others waiting)
    const OpenCube c = openCube(path, dataset, ctx);
    header = c.header;
    err = header.n != n ? ctx + ": a " + std::to_string(header.n) + "^3 field; the mesh is " +
                              std::to_string(n) + "^3"
                        : readPlanes(c, rb.lo[0], rb.extent(0), slab, ctx);
  } catch (const std::exception& e) {
    err = e.what();
  }
  // The first failing rank's message, thrown on every rank.
  const auto [first, text] = firstError(d.comm(), err, "readFieldSlab");
  if (first >= 0)
    throw CollectiveError(first > 0 ? text + " (on rank " + std::to_string(first) + ")" : text);
  auto host = Kokkos::create_mirror_view(f.real());
  for (int lx = 0; lx < rb.extent(0); ++lx)
    for (int y = 0; y < n; ++y)
      for (int z = 0; z < n; ++z)
        host(Field<double>::realIndex(lx, y, z, n)) = slab[(std::size_t(lx) * n + y) * n + z];
  Kokkos::deep_copy(f.real(), host);
  return header;
}

template void writeField<float>(const std::string&, const Field<float>&, const std::string&,
                                const std::string&, double, const Params&,
                                const std::map<std::string, std::string>&);
template void writeField<double>(const std::string&, const Field<double>&, const std::string&,
                                 const std::string&, double, const Params&,
                                 const std::map<std::string, std::string>&);
void writeProjectedMap(const std::string& path, const SlabDecomposition& d,
                       const std::vector<double>& local_rows, const std::string& name,
                       const std::string& units, double a, const Params& params,
                       const std::map<std::string, std::string>& attributes) {
  const std::string ctx = "writeProjectedMap(" + path + ")";
  const int n = d.n();
  const IndexBox box = d.realBox();
  if (local_rows.size() != static_cast<std::size_t>(box.extent(0)) * n)
    throw std::invalid_argument(ctx + ": expected " + std::to_string(box.extent(0) * n) +
                                " values on this rank, got " + std::to_string(local_rows.size()));
  double bad = 0;
  for (double v : local_rows)
    bad += std::isfinite(v) ? 0 : 1;
  double all = 0;
  mpiCheck(MPI_Allreduce(&bad, &all, 1, MPI_DOUBLE, MPI_SUM, d.comm().get()), ctx.c_str());
  if (all > 0)
    throw CollectiveError(ctx + ": map " + name + " has " + std::to_string(all) +
                          " NaN or Inf value(s); not written");
  h5::writeParallelFile(path, d.comm().get(), [&](hid_t file) {
    writeMeshHeader(file, d, a, params, ctx);
    h5::Handle maps = h5::createGroup(file, "Maps", ctx);
    for (const auto& [k, v] : attributes)
      h5::attr(maps, k, v, ctx);
    const hsize_t g[2] = {hsize_t(n), hsize_t(n)}, s0[2] = {hsize_t(box.lo[0]), 0},
                  l[2] = {hsize_t(box.extent(0)), hsize_t(n)};
    h5::writeBlock(maps, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, local_rows.data(), 2, g, s0, l,
                   units, ctx);
  });
}

template void writeFields<float>(const std::string&, const std::vector<const Field<float>*>&,
                                 const std::vector<std::string>&, const std::string&, double,
                                 const Params&, const std::map<std::string, std::string>&);
template void writeFields<double>(const std::string&, const std::vector<const Field<double>*>&,
                                  const std::vector<std::string>&, const std::string&, double,
                                  const Params&, const std::map<std::string, std::string>&);

} // namespace caustic
