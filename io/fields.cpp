#include "io/fields.hpp"

#include "io/hdf5_util.hpp"
#include "io/snapshot.hpp"
#include "pm/profiling.hpp"

#include <vector>

namespace caustic {

template <class T>
void writeField(const std::string& path, const Field<T>& field, const std::string& name,
                const std::string& units, double a, const Params& params,
                const std::map<std::string, std::string>& attributes) {
  ScopedRegion region("caustic::writeField");
  const auto& d = field.decomp();
  const int n = d.n(), nx = d.localNx();
  const std::string ctx = "writeField(" + path + ")";
  // Unpadded float32 copy of the local planes.
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), field.real());
  std::vector<float> local(static_cast<std::size_t>(nx) * n * n);
  for (int lx = 0; lx < nx; ++lx)
    for (int y = 0; y < n; ++y)
      for (int z = 0; z < n; ++z)
        local[(static_cast<std::size_t>(lx) * n + y) * n + z] =
            static_cast<float>(h(Field<T>::realIndex(lx, y, z, n)));
  h5::writeParallelFile(path, d.comm().get(), [&](hid_t file) {
    {
      h5::Handle hdr = h5::createGroup(file, "Header", ctx);
      h5::attr(hdr, "BoxSize", d.box(), ctx);
      h5::attr(hdr, "Time", a, ctx);
      h5::attr(hdr, "Redshift", 1.0 / a - 1.0, ctx);
      h5::attr(hdr, "MeshSize", std::int64_t(n), ctx);
      h5::attr(hdr, "CellSize", d.cell(), ctx);
      h5::attr(hdr, "Omega0", params.cosmology.Omega_m, ctx);
      h5::attr(hdr, "OmegaLambda", 1.0 - params.cosmology.Omega_m, ctx);
      h5::attr(hdr, "HubbleParam", params.cosmology.h, ctx);
    }
    {
      h5::Handle par = h5::createGroup(file, "Parameters", ctx);
      writeParameters(par, params, ctx);
    }
    h5::Handle fields = h5::createGroup(file, "Fields", ctx);
    for (const auto& [k, v] : attributes)
      h5::attr(fields, k, v, ctx);
    const hsize_t gdims[3] = {hsize_t(n), hsize_t(n), hsize_t(n)};
    const hsize_t start[3] = {hsize_t(d.xStart()), 0, 0};
    const hsize_t ldims[3] = {hsize_t(nx), hsize_t(n), hsize_t(n)};
    h5::writeBlock(fields, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, local.data(), 3, gdims, start,
                   ldims, units, ctx);
  });
}

template void writeField<float>(const std::string&, const Field<float>&, const std::string&,
                                const std::string&, double, const Params&,
                                const std::map<std::string, std::string>&);
template void writeField<double>(const std::string&, const Field<double>&, const std::string&,
                                 const std::string&, double, const Params&,
                                 const std::map<std::string, std::string>&);

} // namespace caustic
