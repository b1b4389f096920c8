#include "io/particle_attributes.hpp"

#include <vector>

namespace caustic {

namespace {
hid_t memoryType(AttributeType type) {
  switch (type) {
  case AttributeType::Float64:
    return H5T_NATIVE_DOUBLE;
  case AttributeType::Float32:
    return H5T_NATIVE_FLOAT;
  case AttributeType::Int32:
    return H5T_NATIVE_INT32;
  case AttributeType::Int64:
    return H5T_NATIVE_INT64;
  case AttributeType::UInt64:
    return H5T_NATIVE_UINT64;
  }
  return H5T_NATIVE_DOUBLE;
}

hid_t fileType(AttributeType type) {
  switch (type) {
  case AttributeType::Float64:
    return H5T_IEEE_F64LE;
  case AttributeType::Float32:
    return H5T_IEEE_F32LE;
  case AttributeType::Int32:
    return H5T_STD_I32LE;
  case AttributeType::Int64:
    return H5T_STD_I64LE;
  case AttributeType::UInt64:
    return H5T_STD_U64LE;
  }
  return H5T_IEEE_F64LE;
}

// The attribute type of a dataset's type, or false.
bool attributeTypeOf(hid_t dtype, AttributeType& out) {
  const H5T_class_t cls = H5Tget_class(dtype);
  const std::size_t size = H5Tget_size(dtype);
  if (cls == H5T_FLOAT && (size == 8 || size == 4)) {
    out = size == 8 ? AttributeType::Float64 : AttributeType::Float32;
    return true;
  }
  if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(dtype) == H5T_SGN_2;
    if (size == 4 && is_signed)
      out = AttributeType::Int32;
    else if (size == 8)
      out = is_signed ? AttributeType::Int64 : AttributeType::UInt64;
    else
      return false;
    return true;
  }
  return false;
}
} // namespace

template <class R> std::uint64_t attributeBytesPerParticle(const BasicParticles<R>& parts) {
  std::uint64_t bytes = 0;
  for (const auto& a : parts.attributes())
    bytes += a.rowBytes();
  return bytes;
}

template <class R>
void writeParticleAttributes(hid_t group, const BasicParticles<R>& parts, std::uint64_t n_total,
                             std::uint64_t offset, const std::string& ctx) {
  const std::uint64_t n_local = parts.size();
  for (const auto& a : parts.attributes()) {
    const hsize_t comps = static_cast<hsize_t>(a.components());
    const hsize_t gdims[2] = {n_total, comps}, start[2] = {offset, 0}, ldims[2] = {n_local, comps};
    h5::writeBlock(group, a.name(), memoryType(a.type()), fileType(a.type()), a.bytes(),
                   comps > 1 ? 2 : 1, gdims, start, ldims, a.units(), ctx);
  }
}

template <class R>
void readParticleAttributes(hid_t group, BasicParticles<R>& parts, std::uint64_t start,
                            std::uint64_t n_total, const std::string& ctx) {
  H5G_info_t info;
  if (H5Gget_info(group, &info) < 0)
    throw std::runtime_error(ctx + ": cannot list the particle attributes");
  for (hsize_t k = 0; k < info.nlinks; ++k) {
    const ssize_t len =
        H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, k, nullptr, 0, H5P_DEFAULT);
    if (len <= 0)
      throw std::runtime_error(ctx + ": cannot list the particle attributes");
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, k, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(static_cast<std::size_t>(len));
    const std::string where = ctx + ": particle attribute " + name;
    h5::Handle d(h5::check(H5Dopen2(group, name.c_str(), H5P_DEFAULT), where), H5Dclose);
    h5::Handle t(h5::check(H5Dget_type(d), where), H5Tclose);
    AttributeType type;
    if (!attributeTypeOf(t, type))
      throw std::runtime_error(where + ": not float64, float32, int32, int64 or uint64");
    h5::Handle s(h5::check(H5Dget_space(d), where), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(s);
    hsize_t dims[2] = {0, 1};
    if (rank < 1 || rank > 2 || H5Sget_simple_extent_dims(s, dims, nullptr) < 0 || dims[1] < 1)
      throw std::runtime_error(where + ": not a (N) or (N, components) dataset");
    const std::string units =
        H5Aexists(d, "units") > 0 ? h5::readStringAttr(d, "units", where) : std::string();
    if (parts.hasAttribute(name))
      throw std::runtime_error(where + ": already an attribute of the particles");
    ParticleAttribute& a = parts.addAttribute(name, type, static_cast<int>(dims[1]), units);
    h5::readRows(group, name.c_str(), memoryType(type), a.bytes(), start, parts.size(),
                 a.components(), n_total, ctx);
  }
}

#define CAUSTIC_ATTRIBUTE_IO(R)                                                                    \
  template std::uint64_t attributeBytesPerParticle(const BasicParticles<R>&);                      \
  template void writeParticleAttributes(hid_t, const BasicParticles<R>&, std::uint64_t,            \
                                        std::uint64_t, const std::string&);                        \
  template void readParticleAttributes(hid_t, BasicParticles<R>&, std::uint64_t, std::uint64_t,    \
                                       const std::string&);
CAUSTIC_ATTRIBUTE_IO(double)
CAUSTIC_ATTRIBUTE_IO(float)
#undef CAUSTIC_ATTRIBUTE_IO

} // namespace caustic
