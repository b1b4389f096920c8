#include "io/hdf5_util.hpp"

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

} // namespace caustic::h5
